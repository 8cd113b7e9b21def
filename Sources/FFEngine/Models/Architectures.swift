/// The architectures a config can name, and the checks that need no input shape.
public enum Architectures {
    public static let known = VGGSpec.names + ["custom", "resnet18", "mobilenetv3-small", "mobilenetv3-large"]

    public static func isVGGStack(_ arch: String) -> Bool { VGGSpec.names.contains(arch) || arch == "custom" }

    public static func validate(_ c: RecipeConfig) throws {
        guard known.contains(c.arch) else {
            throw FFError("unknown architecture '\(c.arch)'. Known: \(known.joined(separator: ", ")).")
        }
        if isVGGStack(c.arch) {
            _ = try VGGSpec.resolve(c)
        } else {
            if c.pred == "best" { throw FFError("pred = best (with its copied last layer) is defined for VGG stacks only.") }
            if c.channels != nil || c.poolAfter != nil {
                throw FFError("channels and pool_after describe VGG stacks; \(c.arch) has its published layout.")
            }
        }
    }

    /// The units of the architecture a config names, for inputs of `inputShape` [C, H, W].
    static func units(_ ctx: ComputeContext, _ c: RecipeConfig, inputShape: [Int], clock: StepClock) throws -> [Unit] {
        switch c.arch {
        case "resnet18": return try ResNet.units(ctx, c, inputShape: inputShape)
        case "mobilenetv3-small", "mobilenetv3-large": return try MobileNetV3.units(ctx, c, inputShape: inputShape)
        default: return try VGGStack.units(ctx, c, inputShape: inputShape, clock: clock)
        }
    }

    /// ResNet/MobileNetV3 stem choice: the published (ImageNet) stem for inputs of 128
    /// pixels or more, else the CIFAR one.
    static func imagenetStem(_ c: RecipeConfig, inputShape: [Int]) -> Bool {
        c.stem == "imagenet" || (c.stem == "auto" && min(inputShape[1], inputShape[2]) >= 128)
    }

    static func initScheme(_ c: RecipeConfig) -> Init.Scheme {
        switch c.initScheme {
        case "torchvision": return .kaimingFanOut
        case "kaiming-normal": return .kaimingFanIn
        default: return .fanInUniform
        }
    }

    /// VGG stacks and the classifier heads: PyTorch's layer default unless kaiming-normal.
    static func vggInitScheme(_ c: RecipeConfig) -> Init.Scheme {
        c.initScheme == "kaiming-normal" ? .kaimingFanIn : .fanInUniform
    }
}

/// Declarative VGG-style stacks: conv3x3 (pad 1) layers with pooling after some of them.
public struct VGGSpec: Codable, Equatable {
    /// Output channels of each conv layer, in order.
    public var channels: [Int]
    /// 1-based indices of the conv layers followed by a pooling layer.
    public var poolAfter: [Int]

    public init(channels: [Int], poolAfter: [Int]) {
        self.channels = channels
        self.poolAfter = poolAfter
    }

    /// ASGE/DTG-FF VGG8: 7 conv layers; layers 2..7 hold 2560 channels (papers/asge/README.md).
    public static let vgg8 = VGGSpec(channels: [128, 256, 256, 512, 512, 512, 512], poolAfter: [1, 3, 5, 7])
    /// Standard VGG11 stack [64,M,128,M,256,256,M,512,512,M,512,512,M].
    public static let vgg11 = VGGSpec(channels: [64, 128, 256, 256, 512, 512, 512, 512], poolAfter: [1, 2, 4, 6, 8])
    /// The ASGE authors' "VGG11" (their VGG11.py): ten 3x3 convs 128, 256, 256, 512 x 7,
    /// pooling after convs 2, 4, 6, 8 (32 -> 2 for 32x32 inputs).
    public static let vgg11ASGE = VGGSpec(channels: [128, 256, 256] + Array(repeating: 512, count: 7), poolAfter: [2, 4, 6, 8])
    /// The ASGE authors' VGG8 layout (their VGG8.py): pooling after convs 2, 4, 5, 6.
    public static let vgg8PoolAfterASGE = [2, 4, 5, 6]
    /// Standard VGG16 (13 conv layers).
    public static let vgg16 = VGGSpec(channels: [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512],
                                      poolAfter: [2, 4, 7, 10, 13])
    /// The simple CNN of the SFF recipes: four 3x3 convs, pooling after the last three
    /// (32 -> 16 -> 8 -> 4). [choice: the paper does not give its simple CNN]
    public static let cnn4 = VGGSpec(channels: [64, 128, 256, 512], poolAfter: [2, 3, 4])

    public static let names = ["vgg8", "vgg11", "vgg11-asge", "vgg16", "cnn4"]

    public static func named(_ name: String) throws -> VGGSpec {
        switch name {
        case "vgg8": return .vgg8
        case "vgg11": return .vgg11
        case "vgg11-asge": return .vgg11ASGE
        case "vgg16": return .vgg16
        case "cnn4": return .cnn4
        default:
            throw FFError("unknown architecture '\(name)'. Known: \(Architectures.known.joined(separator: ", ")).")
        }
    }

    /// The stack a config asks for: a named VGG, or a custom one, with its pool_after
    /// override and (Best Pred) the copied last layer.
    public static func resolve(_ c: RecipeConfig) throws -> VGGSpec {
        var spec: VGGSpec
        if c.arch == "custom" {
            guard let ch = c.channels, !ch.isEmpty, ch.allSatisfy({ $0 > 0 }) else {
                throw FFError("arch = custom needs a non-empty `channels` list of positive numbers.")
            }
            spec = VGGSpec(channels: ch, poolAfter: c.poolAfter ?? [])
        } else {
            spec = try named(c.arch)
            if let p = c.poolAfter { spec.poolAfter = p }
        }
        if let bad = spec.poolAfter.first(where: { $0 < 1 || $0 > spec.channels.count }) {
            throw FFError("pool_after names layer \(bad), but the stack has layers 1...\(spec.channels.count).")
        }
        if c.pred == "best" { spec = spec.withCopiedLastLayer() }
        return spec
    }

    /// Best Pred drops the classifier and appends a copy of the last conv layer (ASGE,
    /// Table 3); the copy has no pooling after it.
    public func withCopiedLastLayer() -> VGGSpec {
        VGGSpec(channels: channels + [channels.last!], poolAfter: poolAfter)
    }

    /// Checks that every pooling step leaves a spatial size of at least 1.
    public func validate(inputSize: Int, poolSize: Int) throws {
        var s = inputSize
        for i in 1...channels.count where poolAfter.contains(i) {
            s /= poolSize
            if s < 1 {
                throw FFError("the architecture pools \(poolAfter.count) times; an input of \(inputSize)x\(inputSize) "
                              + "shrinks to nothing at layer \(i). Use a larger input or fewer pooling layers.")
            }
        }
    }
}
