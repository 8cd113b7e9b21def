/// BiCovG (seed 000; the formulation is not public, papers/bicovg/README.md has our reading):
/// VGG-16 trained layer by layer (no backprop between layers), each layer scored by
/// bi-axis covariance goodness (ASGE's patch energies + covariance energies along K = 64
/// fixed directions at pyramid levels {1, 2, 4}) through a fixed random readout, a Feature
/// Alignment Layer on every block input, and Logistic Fusion of the layers' scores as the
/// prediction. `bicovg-hgb-*` are the Hybrid Goodness Blocks (backprop inside blocks of m
/// consecutive layers, `blocks = groups-of-m`); `bp-vgg16-*` the end-to-end twins.
///
/// Pooling: the standard VGG-16 stack at every input size, pooling after layers 2, 4, 7, 10
/// and 13. On 64x64 (Tiny-ImageNet) the goodness taps see 64, 32, 16, 8 and 4 pixels, so
/// the finest pyramid level (4) still fits the last stage; on 224x224 (ImageNet-100) 224 ...
/// 14; on 32x32 (CIFAR-100) 32 ... 2, where level 4 is clipped to 2.
extension Recipes {
    static func bicovg(_ name: String, dataset: String, epochs: Int, augment: String, inputSize: Int? = nil,
                       top1: Double?, source: String) -> RecipeConfig {
        var c = RecipeConfig(name: name, paper: "bicovg",
                             summary: "BiCovG VGG-16 on \(dataset): covariance goodness (K 64, levels 1,2,4) per layer, "
                                + "feature alignment layers, Logistic Fusion",
                             training: "layer-local", dataset: dataset, arch: "vgg16",
                             lr: 2e-4, minLr: 1e-5, weightDecay: 1e-3, epochs: epochs, batchSize: 128)
        c.localLoss = "covariance-goodness"
        c.cov = true
        c.covDirections = 64
        c.covLevels = Ops.defaultCovarianceLevels
        c.fal = true
        c.pred = "goodness-logistic"
        c.poolAfter = VGGSpec.vgg16.poolAfter
        c.augment = augment
        c.inputSize = inputSize
        c.paperTop1 = top1
        c.paperSource = source
        return c
    }

    /// Hybrid Goodness Blocks: the same network with backprop inside blocks of m layers. [choice: m = 2]
    static func hybrid(_ b: RecipeConfig, m: Int = 2, source: String) -> RecipeConfig {
        var c = b
        c.name = b.name.replacingOccurrences(of: "bicovg-", with: "bicovg-hgb-")
        c.summary = "BiCovG Hybrid Goodness Blocks of \(b.name): backprop inside blocks of m = \(m) layers "
            + "(blocks = groups-of-m), covariance goodness at each block output"
        c.blocks = "groups-of-\(m)"
        c.paperTop1 = nil
        c.paperSource = source
        return c
    }

    /// The architecture-matched backprop twin: the same VGG-16 (conv + BatchNorm + ReLU,
    /// max pooling), GAP of the last layer + linear head, end-to-end cross-entropy, the
    /// same optimiser, schedule, batch and augmentation.
    static func bpVGG16(_ b: RecipeConfig) -> RecipeConfig {
        var c = b
        c.name = b.name.replacingOccurrences(of: "bicovg-", with: "bp-vgg16-")
        c.summary = "Backprop twin of \(b.name): VGG-16 + BatchNorm, max pooling, GAP + linear, end-to-end CE"
        c.training = "backprop"
        c.fal = false
        c.pred = "last"
        c.headInput = "output"
        c.pool = .max
        c.paperTop1 = nil
        c.paperSource = "BiCovG (seed 000): BP VGG-16 number not in our sources"
        return c
    }

    /// (BiCovG recipe, hybrid-block recipe, backprop twin) per dataset.
    static var bicovgFamilies: [(RecipeConfig, RecipeConfig, RecipeConfig)] {
        var imagenet = bicovg("bicovg-imagenet100", dataset: "imagenet100", epochs: 100, augment: "rrc-flip",
                              inputSize: 224, top1: 73.01, source: "BiCovG abstract (VGG-16, ImageNet-100)")
        imagenet.optimizer = "sgd"
        imagenet.lr = 0.05
        imagenet.minLr = 5e-4
        imagenet.weightDecay = 1e-4
        var tiny = bicovg("bicovg-tinyimagenet", dataset: "tiny-imagenet", epochs: 200, augment: "crop-flip",
                          top1: 50.30, source: "BiCovG abstract (VGG-16, Tiny-ImageNet)")
        tiny.cropPadding = 8
        let cifar = bicovg("bicovg-cifar100", dataset: "cifar100", epochs: 400, augment: "crop-flip",
                           top1: nil, source: "BiCovG (seed 000): no CIFAR-100 number in our sources")
        return [
            (tiny, hybrid(tiny, source: "BiCovG abstract: hybrid blocks match BP on Tiny-ImageNet (absolute number not in our sources)"),
             bpVGG16(tiny)),
            (imagenet, hybrid(imagenet, source: "BiCovG abstract: hybrid blocks within 3.6 pp of BP on ImageNet-100 "
                + "(absolute number not in our sources)"), bpVGG16(imagenet)),
            (cifar, hybrid(cifar, source: "BiCovG (seed 000): no CIFAR-100 number in our sources"), bpVGG16(cifar)),
        ]
    }

    public static var bicovg: [RecipeConfig] {
        let f = bicovgFamilies
        return f.map(\.0) + f.map(\.1) + f.map(\.2)
    }

    /// `repro bench audit` rows of a BiCovG recipe: hybrid blocks of m = 2 and 4 layers.
    static var bicovgAuditVariants: [String: [AuditEntry]] {
        Dictionary(uniqueKeysWithValues: bicovgFamilies.map { b, h, _ in
            (b.name, [2, 4].map { AuditEntry(recipe: h.name, settings: ["blocks=groups-of-\($0)"]) })
        })
    }
}
