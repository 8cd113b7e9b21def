/// One conv layer of a VGG stack in "unit" form:
///   x -> pre (conv + ReLU, or conv + BN + ReLU) -> Y  ["tap": where local losses and
///   classifier features are taken] -> post (pooling, LayerNorm) -> output.
/// Layer-local training detaches each unit's input; backprop chains them.
public final class ConvUnit {
    public let index: Int
    public let pre: Sequential
    public let local: GoodnessReadout?
    public let post: Sequential
    /// Per-sample shapes [C, H, W].
    public let inputShape: [Int]
    public let tapShape: [Int]
    public let outputShape: [Int]

    init(index: Int, pre: Sequential, local: GoodnessReadout?, post: Sequential, inputShape: [Int]) {
        self.index = index
        self.pre = pre
        self.local = local
        self.post = post
        self.inputShape = inputShape
        tapShape = Array(pre.outputShape([1] + inputShape).dropFirst())
        outputShape = Array(post.outputShape([1] + tapShape).dropFirst())
    }

    public var parameters: [Parameter] { pre.parameters + (local?.parameters ?? []) + post.parameters }
    public var buffers: [Buffer] { pre.buffers + (local?.buffers ?? []) + post.buffers }

    /// Multiply-accumulates of the forward pass per sample (conv layers only).
    public var forwardMACs: Int {
        pre.layers.compactMap { $0 as? Conv2d }.reduce(0) { acc, conv in
            acc + conv.weight.value.count * tapShape[1] * tapShape[2]
        }
    }

    public func releaseCache() {
        pre.releaseCache()
        local?.releaseCache()
        post.releaseCache()
    }
}

/// A classifier on global-average-pooled features of some units (ASGE Fusion/Last Pred,
/// DTG-FF's fused classifier, the BP heads): concat(GAP(features)) -> [BatchNorm1d] -> Linear.
public final class FeatureHead {
    public enum Point: String, Codable { case tap, output }
    public let taps: [Int]
    public let point: Point
    public let norm: BatchNorm?
    public let linear: Linear
    public let featureSize: Int

    init(_ ctx: ComputeContext, taps: [Int], point: Point, units: [ConvUnit], classes: Int, batchNorm: Bool, seed: UInt64) {
        self.taps = taps
        self.point = point
        featureSize = taps.reduce(0) { $0 + (point == .tap ? units[$1].tapShape[0] : units[$1].outputShape[0]) }
        norm = batchNorm ? BatchNorm(ctx, name: "head.bn", channels: featureSize) : nil
        linear = Linear(ctx, name: "head.linear", inFeatures: featureSize, outFeatures: classes, seed: seed)
    }

    public var parameters: [Parameter] { (norm?.parameters ?? []) + linear.parameters }
    public var buffers: [Buffer] { norm?.buffers ?? [] }

    public func forward(_ features: Tensor, _ mode: ForwardMode) -> Tensor {
        let z = norm?.forward(features, mode) ?? features
        return linear.forward(z, mode)
    }

    public func backward(_ dlogits: Tensor, inputGrad: Bool) -> Tensor? {
        let dz = linear.backward(dlogits, inputGrad: inputGrad || norm != nil)
        guard let norm else { return dz }
        return norm.backward(dz!, inputGrad: inputGrad)
    }

    public func releaseCache() {
        norm?.releaseCache()
        linear.releaseCache()
    }
}

/// The model of a recipe: VGG units, their local heads, and the classifier head.
public final class Network {
    public let config: RecipeConfig
    public let spec: VGGSpec
    public let inputShape: [Int]
    public let classes: Int
    public let units: [ConvUnit]
    public let head: FeatureHead?

    public init(_ ctx: ComputeContext, config: RecipeConfig, inputShape: [Int], classes: Int) throws {
        try config.validate()
        self.config = config
        self.inputShape = inputShape
        self.classes = classes
        let spec = try VGGSpec.resolve(config)
        try spec.validate(inputSize: min(inputShape[1], inputShape[2]), poolSize: config.poolSize)
        self.spec = spec

        let seed = config.seed
        let local = config.training != "backprop"
        let lastChannels = spec.channels.last!
        let readoutStd = Float(config.readoutStdScale / Double(classes).squareRoot())
        var shape = inputShape
        var units: [ConvUnit] = []
        for (i, c) in spec.channels.enumerated() {
            let name = "units.\(i)"
            var pre: [Layer] = []
            let usesBN = !local && config.bpNorm == "batch"
            pre.append(Conv2d(ctx, name: name + ".conv", inChannels: shape[0], outChannels: c, kernel: 3, padding: 1,
                              relu: !usesBN, seed: seed))
            if usesBN {
                pre.append(BatchNorm(ctx, name: name + ".bn", channels: c))
                pre.append(Activation(ctx, .relu))
            }
            let tap = [c, shape[1], shape[2]]
            let lnAffine = config.training == "layer-local" ? config.lnAffine : true
            let coupledNorm = !usesBN && !config.decoupledNorm
            if coupledNorm {
                pre.append(LayerNorm(ctx, name: name + ".norm", featureShape: tap, eps: Float(config.lnEps), affine: lnAffine))
            }
            var readout: GoodnessReadout?
            if local {
                let p = Ops.partition(alpha: config.alpha, lastChannels: lastChannels, channels: c,
                                      height: tap[1], width: tap[2])
                readout = GoodnessReadout(ctx, name: name + ".local", channels: c, partition: p,
                                          bins: config.goodnessBins, classes: classes,
                                          readoutStd: readoutStd, learnTemperature: config.learnTemperature,
                                          temperatureInit: Float(config.temperatureInit), seed: seed)
            }
            var post: [Layer] = []
            var out = tap
            if spec.poolAfter.contains(i + 1) {
                let pool = Pool2d(ctx, config.pool, kernel: config.poolSize)
                out = Array(pool.outputShape([1] + tap).dropFirst())
                post.append(pool)
            }
            if !usesBN && !coupledNorm {
                post.append(LayerNorm(ctx, name: name + ".norm", featureShape: out, eps: Float(config.lnEps), affine: lnAffine))
            }
            let unit = ConvUnit(index: i, pre: Sequential(pre), local: readout, post: Sequential(post), inputShape: shape)
            units.append(unit)
            shape = unit.outputShape
        }
        self.units = units

        let last = units.count - 1
        let point = FeatureHead.Point(rawValue: config.headInput) ?? .tap
        switch config.pred {
        case "fusion":
            guard last >= 1 else { throw FFError("pred = fusion needs at least two conv layers.") }
            head = FeatureHead(ctx, taps: Array(1...last), point: point, units: units, classes: classes,
                               batchNorm: config.fusionBatchNorm, seed: seed)
        case "last":
            head = FeatureHead(ctx, taps: [last], point: point, units: units, classes: classes,
                               batchNorm: config.fusionBatchNorm, seed: seed)
        default:
            head = nil
        }
    }

    public var parameters: [Parameter] { units.flatMap(\.parameters) + (head?.parameters ?? []) }
    public var buffers: [Buffer] { units.flatMap(\.buffers) + (head?.buffers ?? []) }

    /// Forward multiply-accumulates per sample through all conv layers.
    public var forwardMACs: Int { units.reduce(0) { $0 + $1.forwardMACs } }

    /// Partition factors P_l of the local heads (empty for plain backprop).
    public var partitions: [Int] { units.compactMap { $0.local?.partition } }

    public func releaseCaches() {
        units.forEach { $0.releaseCache() }
        head?.releaseCache()
    }

    /// A one-paragraph description for logs.
    public var summary: String {
        let layers = units.map { u -> String in
            let p = u.local.map { "P\($0.partition)" } ?? ""
            return "\(u.tapShape[0])\(p)" + (u.outputShape[1] < u.tapShape[1] ? "↓" : "")
        }.joined(separator: " ")
        let nParams = parameters.reduce(0) { $0 + $1.value.count }
        let headText = head.map { "head on \($0.point) of units \($0.taps.map { $0 + 1 }) (\($0.featureSize) features)" } ?? "no classifier (Best Pred)"
        return "\(config.arch) [\(layers)] input \(inputShape), \(classes) classes, \(nParams) trainable parameters, \(headText)"
    }
}
