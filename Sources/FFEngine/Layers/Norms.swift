import FFCore

/// Per-sample LayerNorm over all non-batch dimensions (C, H, W), like
/// `nn.LayerNorm([C, H, W])`; the affine parameters (when present) are elementwise.
public final class LayerNorm: Layer {
    public let ctx: ComputeContext
    public let eps: Float
    public let gamma: Parameter?
    public let beta: Parameter?
    private var input: Tensor?
    private var mean: Tensor?
    private var rstd: Tensor?

    /// `featureShape`: the normalised shape without the batch, e.g. [C, H, W].
    public init(_ ctx: ComputeContext, name: String, featureShape: [Int], eps: Float = 1e-5, affine: Bool) {
        self.ctx = ctx
        self.eps = eps
        if affine {
            gamma = Parameter(name: name + ".weight", value: Tensor(filled: 1, shape: featureShape))
            beta = Parameter(name: name + ".bias", value: Tensor(zeros: featureShape))
        } else {
            gamma = nil
            beta = nil
        }
    }

    public var parameters: [Parameter] { [gamma, beta].compactMap { $0 } }
    public func outputShape(_ input: [Int]) -> [Int] { input }

    public func forward(_ x: Tensor, _ mode: ForwardMode) -> Tensor {
        let n = x.shape[0], d = x.count / max(n, 1)
        if let g = gamma { precondition(g.value.count == d, "LayerNorm \(g.name): \(g.shape) vs input \(x.shape)") }
        let y = Tensor(uninitialized: x.shape)
        let m = Tensor(uninitialized: [n]), r = Tensor(uninitialized: [n])
        ff_layernorm_forward(ctx.raw, Int32(n), Int32(d), eps, x.pointer, gamma?.value.pointer, beta?.value.pointer,
                             y.pointer, m.pointer, r.pointer)
        if mode.caches {
            input = x
            mean = m
            rstd = r
        }
        return y
    }

    public func backward(_ dy: Tensor, inputGrad: Bool) -> Tensor? {
        guard let x = input, let m = mean, let r = rstd else { preconditionFailure("LayerNorm: backward without a cached forward") }
        let n = x.shape[0], d = x.count / max(n, 1)
        let dx = inputGrad ? Tensor(uninitialized: x.shape) : nil
        ff_layernorm_backward(ctx.raw, Int32(n), Int32(d), x.pointer, gamma?.value.pointer, m.pointer, r.pointer,
                              dy.pointer, dx?.pointer, gamma?.grad.pointer, beta?.grad.pointer, 1)
        return dx
    }

    public func releaseCache() {
        input = nil
        mean = nil
        rstd = nil
    }
}

/// BatchNorm over channels of (n, c) or (n, c, h, w) inputs, PyTorch semantics
/// (momentum 0.1, running variance unbiased, eval mode uses the running statistics).
public final class BatchNorm: Layer {
    public let ctx: ComputeContext
    public let eps: Float
    public let momentum: Float
    public let gamma: Parameter
    public let beta: Parameter
    public let runningMean: Tensor
    public let runningVar: Tensor
    private let name: String
    private var input: Tensor?
    private var saveMean: Tensor?
    private var saveRstd: Tensor?

    public init(_ ctx: ComputeContext, name: String, channels: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        self.ctx = ctx
        self.name = name
        self.eps = eps
        self.momentum = momentum
        gamma = Parameter(name: name + ".weight", value: Tensor(filled: 1, shape: [channels]))
        beta = Parameter(name: name + ".bias", value: Tensor(zeros: [channels]))
        runningMean = Tensor(zeros: [channels])
        runningVar = Tensor(filled: 1, shape: [channels])
    }

    public var parameters: [Parameter] { [gamma, beta] }
    public var buffers: [Buffer] {
        [Buffer(name: name + ".running_mean", value: runningMean), Buffer(name: name + ".running_var", value: runningVar)]
    }
    public func outputShape(_ input: [Int]) -> [Int] { input }

    public func forward(_ x: Tensor, _ mode: ForwardMode) -> Tensor {
        let n = x.shape[0], c = x.shape[1], hw = x.count / max(n * c, 1)
        precondition(c == gamma.value.count, "\(name): \(c) channels, expected \(gamma.value.count)")
        let y = Tensor(uninitialized: x.shape)
        if mode.isTraining {
            let m = Tensor(uninitialized: [c]), r = Tensor(uninitialized: [c])
            ff_batchnorm_forward_train(ctx.raw, Int32(n), Int32(c), Int32(hw), eps, momentum, x.pointer,
                                       gamma.value.pointer, beta.value.pointer, y.pointer, m.pointer, r.pointer,
                                       runningMean.pointer, runningVar.pointer)
            if mode.caches {
                input = x
                saveMean = m
                saveRstd = r
            }
        } else {
            ff_batchnorm_forward_eval(ctx.raw, Int32(n), Int32(c), Int32(hw), eps, x.pointer, gamma.value.pointer,
                                      beta.value.pointer, runningMean.pointer, runningVar.pointer, y.pointer)
        }
        return y
    }

    public func backward(_ dy: Tensor, inputGrad: Bool) -> Tensor? {
        guard let x = input, let m = saveMean, let r = saveRstd else { preconditionFailure("\(name): backward without a cached forward") }
        let n = x.shape[0], c = x.shape[1], hw = x.count / max(n * c, 1)
        let dx = inputGrad ? Tensor(uninitialized: x.shape) : nil
        ff_batchnorm_backward(ctx.raw, Int32(n), Int32(c), Int32(hw), x.pointer, gamma.value.pointer, m.pointer,
                              r.pointer, dy.pointer, dx?.pointer, gamma.grad.pointer, beta.grad.pointer, 1)
        return dx
    }

    public func releaseCache() {
        input = nil
        saveMean = nil
        saveRstd = nil
    }
}

/// Layers applied in order.
public final class Sequential: Layer {
    public var layers: [Layer]

    public init(_ layers: [Layer]) { self.layers = layers }

    public var parameters: [Parameter] { layers.flatMap(\.parameters) }
    public var buffers: [Buffer] { layers.flatMap(\.buffers) }

    public func outputShape(_ input: [Int]) -> [Int] {
        layers.reduce(input) { $1.outputShape($0) }
    }

    public func forwardMACs(_ input: [Int]) -> Int {
        var shape = input, total = 0
        for l in layers {
            total += l.forwardMACs(shape)
            shape = l.outputShape(shape)
        }
        return total
    }

    /// Only the first layer reads the input (a normalisation or activation in front of a
    /// conv needs the conv's input gradient, so it does not count).
    public func inputMACs(_ input: [Int]) -> Int { layers.first?.inputMACs(input) ?? 0 }
    public var keepsOutput: Bool { layers.last?.keepsOutput ?? true }

    public func forward(_ x: Tensor, _ mode: ForwardMode) -> Tensor {
        layers.reduce(x) { $1.forward($0, mode) }
    }

    public func backward(_ dy: Tensor, inputGrad: Bool) -> Tensor? {
        var g: Tensor? = dy
        for (i, layer) in layers.enumerated().reversed() {
            guard let cur = g else { break }
            g = layer.backward(cur, inputGrad: i > 0 || inputGrad)
        }
        return inputGrad ? g : nil
    }

    public func releaseCache() { layers.forEach { $0.releaseCache() } }
}

/// Per-sample RMS scaling over all non-batch dimensions: y = x / (sqrt(mean(x^2)) + eps),
/// no centring, no parameters (the ASGE authors' inter-layer normalisation).
public final class RMSScale: Layer {
    public let ctx: ComputeContext
    public let eps: Float
    private var input: Tensor?
    private var rms: Tensor?

    public init(_ ctx: ComputeContext, eps: Float) {
        self.ctx = ctx
        self.eps = eps
    }

    public func outputShape(_ input: [Int]) -> [Int] { input }

    public func forward(_ x: Tensor, _ mode: ForwardMode) -> Tensor {
        let n = x.shape[0], d = x.count / max(n, 1)
        let y = Tensor(uninitialized: x.shape), r = Tensor(uninitialized: [n])
        ff_rmsscale_forward(ctx.raw, Int32(n), Int32(d), eps, x.pointer, y.pointer, r.pointer)
        if mode.caches {
            input = x
            rms = r
        }
        return y
    }

    public func backward(_ dy: Tensor, inputGrad: Bool) -> Tensor? {
        guard inputGrad else { return nil }
        guard let x = input, let r = rms else { preconditionFailure("RMSScale: backward without a cached forward") }
        let n = x.shape[0], d = x.count / max(n, 1)
        let dx = Tensor(uninitialized: x.shape)
        ff_rmsscale_backward(ctx.raw, Int32(n), Int32(d), eps, x.pointer, r.pointer, dy.pointer, dx.pointer)
        return dx
    }

    public func releaseCache() {
        input = nil
        rms = nil
    }
}
