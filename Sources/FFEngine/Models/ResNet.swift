/// ResNet18 (He et al.; torchvision's layout and parameter names): a stem, then four stages
/// of two basic blocks (64, 128, 256, 512 channels; stages 2-4 start with stride 2 and a
/// 1x1-conv + BatchNorm projection shortcut). Units: "stem" (conv1, bn1, ReLU[, max-pool])
/// and "layer<s>.<b>" (one basic block each).
///   basic block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), convs 3x3 without bias
///   stem, CIFAR: conv 3x3 stride 1, no max-pool; ImageNet: conv 7x7 stride 2 + max-pool 3/2.
enum ResNet {
    static let stages: [(channels: Int, blocks: Int)] = [(64, 2), (128, 2), (256, 2), (512, 2)]

    static func units(_ ctx: ComputeContext, _ c: RecipeConfig, inputShape: [Int]) throws -> [Unit] {
        let seed = c.seed
        let scheme = Architectures.initScheme(c)
        let imagenet = Architectures.imagenetStem(c, inputShape: inputShape)
        func conv(_ name: String, _ cin: Int, _ cout: Int, _ k: Int, stride: Int = 1) -> Conv2d {
            Conv2d(ctx, name: name, inChannels: cin, outChannels: cout, kernel: k, stride: stride, padding: k / 2,
                   bias: false, initScheme: scheme, seed: seed)
        }
        func bn(_ name: String, _ ch: Int) -> BatchNorm { BatchNorm(ctx, name: name, channels: ch) }

        let stem: [Layer] = imagenet
            ? [conv("conv1", inputShape[0], 64, 7, stride: 2), bn("bn1", 64), Activation(ctx, .relu, inPlace: true),
               Pool2d(ctx, .max, kernel: 3, stride: 2, padding: 1)]
            : [conv("conv1", inputShape[0], 64, 3), bn("bn1", 64), Activation(ctx, .relu, inPlace: true)]
        var units = [Unit(index: 0, name: "stem", label: "stem", body: Sequential(stem), stage: 0, isStem: true,
                          inputShape: inputShape)]
        try checkSize(units[0], arch: "resnet18")
        var inChannels = 64
        for (s, stage) in stages.enumerated() {
            for b in 0..<stage.blocks {
                let name = "layer\(s + 1).\(b)"
                let stride = (s > 0 && b == 0) ? 2 : 1
                let out = stage.channels
                let main = Sequential([conv(name + ".conv1", inChannels, out, 3, stride: stride), bn(name + ".bn1", out),
                                       Activation(ctx, .relu, inPlace: true), conv(name + ".conv2", out, out, 3), bn(name + ".bn2", out)])
                let shortcut = (stride != 1 || inChannels != out)
                    ? Sequential([conv(name + ".downsample.0", inChannels, out, 1, stride: stride),
                                  bn(name + ".downsample.1", out)])
                    : nil
                let unit = Unit(index: units.count, name: name, label: name,
                                body: Sequential([Residual(ctx, main: main, shortcut: shortcut, activation: .relu)]),
                                stage: s + 1, inputShape: units.last!.outputShape)
                try checkSize(unit, arch: "resnet18")
                units.append(unit)
                inChannels = out
            }
        }
        return units
    }

    /// A map that shrinks to nothing is an input too small for the architecture.
    static func checkSize(_ u: Unit, arch: String) throws {
        if u.tapShape[1] < 1 || u.tapShape[2] < 1 {
            throw FFError("\(arch): the input is too small; \(u.label) receives \(u.inputShape) and its output would be "
                + "empty. Use a larger input_size or the CIFAR stem (stem = cifar).")
        }
    }
}
