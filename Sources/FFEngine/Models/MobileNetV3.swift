/// MobileNetV3-Small and -Large (Howard et al. 2019; torchvision's tables, layout and
/// parameter names, width 1.0). Units: "features.0" (stem: conv 3x3 stride 2 + BN +
/// hard-swish), "features.<i>" (inverted residuals), and the last 1x1 conv + BN +
/// hard-swish to 6x the last width. An inverted residual is
///   [1x1 expand + BN + act] -> depthwise kxk (stride) + BN + act -> [SE] -> 1x1 project + BN
/// with an identity shortcut when the stride is 1 and the width is kept. BatchNorm uses
/// eps 0.001 and momentum 0.01; SE squeezes to make_divisible(expanded / 4, 8) channels
/// with ReLU and a hard-sigmoid gate.
/// The CIFAR stem [choice] runs the stem and the first downsampling block at stride 1
/// (total stride 8: 32x32 inputs end at 4x4); shapes, and so pretrained weights, are unchanged.
enum MobileNetV3 {
    struct Row {
        var kernel: Int, expanded: Int, out: Int, se: Bool, hardswish: Bool, stride: Int
    }

    static func row(_ k: Int, _ e: Int, _ o: Int, _ se: Bool, _ act: String, _ s: Int) -> Row {
        Row(kernel: k, expanded: e, out: o, se: se, hardswish: act == "HS", stride: s)
    }

    /// (kernel, expanded, out, SE, activation, stride); the input width is the previous row's out.
    static let small: [Row] = [
        row(3, 16, 16, true, "RE", 2), row(3, 72, 24, false, "RE", 2), row(3, 88, 24, false, "RE", 1),
        row(5, 96, 40, true, "HS", 2), row(5, 240, 40, true, "HS", 1), row(5, 240, 40, true, "HS", 1),
        row(5, 120, 48, true, "HS", 1), row(5, 144, 48, true, "HS", 1), row(5, 288, 96, true, "HS", 2),
        row(5, 576, 96, true, "HS", 1), row(5, 576, 96, true, "HS", 1),
    ]
    static let large: [Row] = [
        row(3, 16, 16, false, "RE", 1), row(3, 64, 24, false, "RE", 2), row(3, 72, 24, false, "RE", 1),
        row(5, 72, 40, true, "RE", 2), row(5, 120, 40, true, "RE", 1), row(5, 120, 40, true, "RE", 1),
        row(3, 240, 80, false, "HS", 2), row(3, 200, 80, false, "HS", 1), row(3, 184, 80, false, "HS", 1),
        row(3, 184, 80, false, "HS", 1), row(3, 480, 112, true, "HS", 1), row(3, 672, 112, true, "HS", 1),
        row(5, 672, 160, true, "HS", 2), row(5, 960, 160, true, "HS", 1), row(5, 960, 160, true, "HS", 1),
    ]

    /// torchvision's _make_divisible(v, 8).
    static func makeDivisible(_ v: Double, _ divisor: Int = 8) -> Int {
        var n = max(divisor, Int(v + Double(divisor) / 2) / divisor * divisor)
        if Double(n) < 0.9 * v { n += divisor }
        return n
    }

    static func units(_ ctx: ComputeContext, _ c: RecipeConfig, inputShape: [Int]) throws -> [Unit] {
        let rows = c.arch == "mobilenetv3-large" ? large : small
        let seed = c.seed
        let scheme = Architectures.initScheme(c)
        let imagenet = Architectures.imagenetStem(c, inputShape: inputShape)
        func convBN(_ name: String, _ cin: Int, _ cout: Int, _ k: Int, stride: Int = 1, groups: Int = 1,
                    act: Ops.Activation?) -> [Layer] {
            var l: [Layer] = [Conv2d(ctx, name: name + ".0", inChannels: cin, outChannels: cout, kernel: k, stride: stride,
                                     padding: (k - 1) / 2, groups: groups, bias: false, initScheme: scheme, seed: seed),
                              BatchNorm(ctx, name: name + ".1", channels: cout, eps: 1e-3, momentum: 0.01)]
            if let act { l.append(Activation(ctx, act, inPlace: act == .relu)) }
            return l
        }

        var units: [Unit] = []
        func add(_ body: [Layer], stage: Int, stem: Bool = false) throws {
            let name = "features.\(units.count)"
            let u = Unit(index: units.count, name: name, label: name, body: Sequential(body), stage: stage, isStem: stem,
                         inputShape: units.last?.outputShape ?? inputShape)
            try ResNet.checkSize(u, arch: c.arch)
            units.append(u)
        }
        try add(convBN("features.0", inputShape[0], 16, 3, stride: imagenet ? 2 : 1, act: .hardswish), stage: 0, stem: true)
        // Stages start at each downsampling after the first block (which follows the stem).
        var width = 16, stage = 1, firstDownsample = true
        for r in rows {
            var stride = r.stride
            if stride == 2 && firstDownsample && !imagenet { stride = 1 }
            if r.stride == 2 { firstDownsample = false }
            if stride == 2 && units.count > 1 { stage += 1 }
            let name = "features.\(units.count).block"
            let act: Ops.Activation = r.hardswish ? .hardswish : .relu
            var layers: [Layer] = []
            if r.expanded != width { layers += convBN("\(name).0", width, r.expanded, 1, act: act) }
            var j = layers.isEmpty ? 0 : 1
            layers += convBN("\(name).\(j)", r.expanded, r.expanded, r.kernel, stride: stride, groups: r.expanded, act: act)
            j += 1
            if r.se {
                layers.append(SqueezeExcite(ctx, name: "\(name).\(j)", channels: r.expanded,
                                            squeeze: makeDivisible(Double(r.expanded / 4)), initScheme: scheme, seed: seed))
                j += 1
            }
            layers += convBN("\(name).\(j)", r.expanded, r.out, 1, act: nil)
            // torchvision's rule uses the published stride, so the CIFAR stem keeps the graph.
            let residual = r.stride == 1 && width == r.out
            try add(residual ? [Residual(ctx, main: Sequential(layers), shortcut: nil, activation: nil)] : layers,
                    stage: stage)
            width = r.out
        }
        try add(convBN("features.\(units.count)", width, 6 * width, 1, act: .hardswish), stage: stage)
        return units
    }
}
