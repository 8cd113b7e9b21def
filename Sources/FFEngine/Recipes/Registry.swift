/// The named recipes: complete configs reproducing a paper's setting. `repro list` prints
/// them, `repro show NAME` prints one as JSON, `repro run NAME` trains it.
public enum Recipes {
    public static var all: [RecipeConfig] { asge + baselines }

    public static func named(_ name: String) throws -> RecipeConfig {
        if let r = all.first(where: { $0.name == name }) { return r }
        let close = all.map(\.name).filter { $0.contains(name) || name.contains($0) }
        let hint = close.isEmpty ? "" : " Did you mean \(close.joined(separator: " or "))?"
        throw FFError("unknown recipe '\(name)'.\(hint) `repro list` shows the available recipes.")
    }

    // MARK: ASGE (seed 001/003; METHODS.md)

    static func asgeBase(_ name: String, dataset: String, arch: String, epochs: Int, augment: String,
                         top1: Double, source: String) -> RecipeConfig {
        var c = RecipeConfig(name: name, paper: "asge",
                             summary: "ASGE \(arch.uppercased()) on \(dataset), Fusion Pred, alpha 1, RMS pooling",
                             training: "layer-local", dataset: dataset, arch: arch,
                             lr: 2e-4, minLr: 1e-5, weightDecay: 1e-3, epochs: epochs, batchSize: 128)
        c.augment = augment
        c.paperTop1 = top1
        c.paperSource = source
        return c
    }

    public static var asge: [RecipeConfig] {
        var imagenet = asgeBase("asge-imagenet", dataset: "imagenet", arch: "vgg11", epochs: 45, augment: "rrc-flip",
                                top1: 51.58, source: "ASGE (later version) ImageNet VGG11; earlier version 26.21 / 47.49")
        imagenet.summary = "ASGE VGG11 on ImageNet-1k (224x224), SGD recipe, Fusion Pred"
        imagenet.optimizer = "sgd"
        imagenet.momentum = 0.9
        imagenet.weightDecay = 1e-4
        imagenet.batchSize = 512
        imagenet.lr = 0.05
        imagenet.minLr = 5e-4
        imagenet.inputSize = 224
        imagenet.paperTop5 = 75.23
        return [
            asgeBase("asge-mnist", dataset: "mnist", arch: "vgg8", epochs: 100, augment: "none",
                     top1: 99.65, source: "ASGE Table 4 (VGG8)"),
            asgeBase("asge-fmnist", dataset: "fashion-mnist", arch: "vgg8", epochs: 100, augment: "none",
                     top1: 93.41, source: "ASGE Table 4 (VGG8)"),
            asgeBase("asge-cifar10", dataset: "cifar10", arch: "vgg8", epochs: 400, augment: "crop-flip",
                     top1: 90.50, source: "ASGE Table 4 (VGG8)"),
            asgeBase("asge-cifar100", dataset: "cifar100", arch: "vgg8", epochs: 400, augment: "crop-flip",
                     top1: 65.34, source: "ASGE Table 4 (VGG8)"),
            asgeBase("asge-vgg11-cifar10", dataset: "cifar10", arch: "vgg11", epochs: 400, augment: "crop-flip",
                     top1: 90.62, source: "ASGE Table 4 (VGG11)"),
            asgeBase("asge-vgg11-cifar100", dataset: "cifar100", arch: "vgg11", epochs: 400, augment: "crop-flip",
                     top1: 65.42, source: "ASGE Table 4 (VGG11)"),
            imagenet,
        ]
    }

    // MARK: Backprop baselines

    public static var baselines: [RecipeConfig] {
        var bp = RecipeConfig(name: "bp-vgg8-cifar100", paper: "asge",
                              summary: "Backprop baseline of ASGE Table 3: VGG8 + BatchNorm, max pooling, GAP + linear, end-to-end CE",
                              training: "backprop", dataset: "cifar100", arch: "vgg8",
                              lr: 2e-4, minLr: 1e-5, weightDecay: 1e-3, epochs: 400, batchSize: 128)
        bp.augment = "crop-flip"
        bp.pool = .max
        bp.bpNorm = "batch"
        bp.paperTop1 = 69.11
        bp.paperSource = "ASGE Table 3 (BP repr., VGG8)"
        return [bp]
    }
}
