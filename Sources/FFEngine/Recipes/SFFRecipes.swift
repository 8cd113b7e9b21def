/// SFF (Scalable Forward-Forward, seed 004): unmodified CNNs trained block by block, backprop
/// inside a block and nothing across blocks, each block scored by its class goodness (aux
/// conv to N maps, g_k = mean a_k^2, loss log-sum-exp(g) - g_y), LayerNorm on every block
/// output, AdamW, prediction by the mean of the blocks' goodness vectors. Each recipe has a
/// `bp-*` twin: the same network as one block with a GAP + linear head.
///
/// The summary gives no absolute accuracies, epochs, learning rates or block boundaries for
/// every network; those are our choices (papers/sff/README.md, "Assumptions").
extension Recipes {
    static func sff(_ name: String, dataset: String, arch: String, blocks: String, epochs: Int, augment: String,
                    inputSize: Int? = nil) -> RecipeConfig {
        var c = RecipeConfig(name: name, paper: "sff",
                             summary: "SFF \(arch) on \(dataset): class-goodness blocks (\(blocks)), LayerNorm between blocks, "
                                + "mean goodness prediction",
                             training: "block-local", dataset: dataset, arch: arch,
                             lr: 1e-3, minLr: 1e-5, weightDecay: 1e-2, epochs: epochs, batchSize: 128)
        c.blocks = blocks
        c.localLoss = "class-goodness"
        c.localLossAt = "block-output"
        c.blockNorm = "layernorm"
        c.pred = "goodness-mean"
        c.augment = augment
        c.inputSize = inputSize
        c.paperSource = "SFF (seed 004): no absolute accuracy in our sources; SFF is reported comparable to BP"
        if arch == "cnn4" {
            c.convNorm = "batch"
            c.pool = .max
            c.poolAfter = VGGSpec.cnn4.poolAfter
        }
        return c
    }

    /// The backprop twin: the same network, one block, GAP of the last unit + linear head.
    static func bpTwin(_ s: RecipeConfig) -> RecipeConfig {
        var c = s
        c.name = s.name.replacingOccurrences(of: "sff-", with: "bp-")
        c.summary = "Backprop twin of \(s.name): the same \(s.arch), end-to-end, GAP + linear head"
        c.training = "backprop"
        c.blockNorm = "none"
        c.pred = "last"
        c.headInput = "output"
        c.paperSource = "SFF (seed 004): BP baseline, no absolute accuracy in our sources"
        return c
    }

    public static var sff: [RecipeConfig] { sffLocal + sffLocal.map(bpTwin) }

    /// The block-local SFF recipes (their twins: `bpTwin`).
    static var sffLocal: [RecipeConfig] {
        [
            sff("sff-resnet18-cifar10", dataset: "cifar10", arch: "resnet18", blocks: "per-stage", epochs: 100,
                augment: "crop-flip"),
            sff("sff-resnet18-cifar100", dataset: "cifar100", arch: "resnet18", blocks: "per-stage", epochs: 100,
                augment: "crop-flip"),
            sff("sff-mobilenetv3-cifar10", dataset: "cifar10", arch: "mobilenetv3-small", blocks: "per-residual-unit",
                epochs: 100, augment: "crop-flip"),
            sff("sff-mobilenetv3-cifar100", dataset: "cifar100", arch: "mobilenetv3-small", blocks: "per-residual-unit",
                epochs: 100, augment: "crop-flip"),
            sff("sff-resnet18-imagenette", dataset: "imagenette", arch: "resnet18", blocks: "per-stage", epochs: 100,
                augment: "rrc-flip", inputSize: 160),
            sff("sff-mobilenetv3-imagenette", dataset: "imagenette", arch: "mobilenetv3-small", blocks: "per-residual-unit",
                epochs: 100, augment: "rrc-flip", inputSize: 160),
            sff("sff-cnn-cifar10", dataset: "cifar10", arch: "cnn4", blocks: "per-unit", epochs: 100, augment: "crop-flip"),
        ]
    }
}
