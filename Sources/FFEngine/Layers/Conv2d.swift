/// 2-D convolution with optional bias and an optionally fused ReLU.
public final class Conv2d: Layer {
    public let ctx: ComputeContext
    public let weight: Parameter
    public let bias: Parameter?
    public let geometry: Ops.ConvGeometry
    public let fusedReLU: Bool
    private var input: Tensor?
    private var output: Tensor?

    public init(_ ctx: ComputeContext, name: String, inChannels: Int, outChannels: Int, kernel: Int,
                stride: Int = 1, padding: Int = 0, groups: Int = 1, bias: Bool = true, relu: Bool = false,
                initScheme: Init.Scheme = .fanInUniform, seed: UInt64) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0, "\(name): channels not divisible by groups")
        self.ctx = ctx
        geometry = Ops.ConvGeometry(kernel: kernel, stride: stride, padding: padding, groups: groups)
        fusedReLU = relu
        (weight, self.bias) = Init.weightAndBias(name: name, shape: [outChannels, inChannels / groups, kernel, kernel],
                                                 fanIn: inChannels / groups * kernel * kernel, bias: bias,
                                                 scheme: initScheme, seed: seed)
    }

    public var outChannels: Int { weight.shape[0] }
    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    public func outputShape(_ input: [Int]) -> [Int] {
        Ops.convOutputShape(input, cOut: outChannels, geometry)
    }

    public func forwardMACs(_ input: [Int]) -> Int {
        let out = outputShape(input)
        return weight.value.count * out[0] * out[2] * out[3]
    }

    public func inputMACs(_ input: [Int]) -> Int { forwardMACs(input) }
    public var keepsOutput: Bool { fusedReLU }

    public func forward(_ x: Tensor, _ mode: ForwardMode) -> Tensor {
        let y = Ops.conv2d(ctx, x, weight: weight.value, bias: bias?.value, geometry, relu: fusedReLU)
        if mode.caches {
            input = x
            output = fusedReLU ? y : nil
        }
        return y
    }

    /// `dy` is consumed: with the fused ReLU its inactive entries are zeroed in place.
    public func backward(_ dy: Tensor, inputGrad: Bool) -> Tensor? {
        guard let x = input else { preconditionFailure("\(weight.name): backward without a cached forward") }
        var g = dy
        if fusedReLU, let y = output {
            g = Ops.activationBackward(ctx, .relu, x: y, dy: dy, inPlace: true)
        }
        Ops.conv2dBackwardWeight(ctx, x, dy: g, geometry, dWeight: weight.grad, dBias: bias?.grad, accumulate: true)
        return inputGrad ? Ops.conv2dBackwardInput(ctx, inputShape: x.shape, weight: weight.value, dy: g, geometry) : nil
    }

    public func releaseCache() {
        input = nil
        output = nil
    }
}

/// Fully connected layer, PyTorch layout: weight (out, in).
public final class Linear: Layer {
    public let ctx: ComputeContext
    public let weight: Parameter
    public let bias: Parameter?
    private var input: Tensor?
    private var inputShape: [Int] = []

    public init(_ ctx: ComputeContext, name: String, inFeatures: Int, outFeatures: Int, bias: Bool = true,
                initScheme: Init.Scheme = .fanInUniform, seed: UInt64) {
        self.ctx = ctx
        (weight, self.bias) = Init.weightAndBias(name: name, shape: [outFeatures, inFeatures], fanIn: inFeatures,
                                                 bias: bias, scheme: initScheme, seed: seed)
    }

    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }
    public func outputShape(_ input: [Int]) -> [Int] { [input[0], weight.shape[0]] }
    public func forwardMACs(_ input: [Int]) -> Int { input[0] * weight.value.count }
    public func inputMACs(_ input: [Int]) -> Int { forwardMACs(input) }

    public func forward(_ x: Tensor, _ mode: ForwardMode) -> Tensor {
        let flat = x.reshaped([x.shape[0], -1])
        if mode.caches { input = flat; inputShape = x.shape }
        return Ops.linear(ctx, flat, weight: weight.value, bias: bias?.value)
    }

    public func backward(_ dy: Tensor, inputGrad: Bool) -> Tensor? {
        guard let x = input else { preconditionFailure("\(weight.name): backward without a cached forward") }
        let dx = Ops.linearBackward(ctx, x, weight: weight.value, dy: dy, dWeight: weight.grad, dBias: bias?.grad,
                                    inputGrad: inputGrad, accumulate: true)
        return dx?.reshaped(inputShape)
    }

    public func releaseCache() { input = nil }
}
