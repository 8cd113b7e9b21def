/// Squeeze-and-excitation (MobileNetV3, torchvision's SqueezeExcitation):
///   s = hardsigmoid(fc2(relu(fc1(GAP(x)))))   fc1, fc2: 1x1 convs with bias
///   y = x * s  (per channel)
/// Parameter names and shapes follow torchvision: <name>.fc1.weight (S, C, 1, 1), ...
public final class SqueezeExcite: Layer {
    public let ctx: ComputeContext
    public let fc1: Conv2d
    public let fc2: Conv2d
    private var input: Tensor?
    private var hidden: Tensor?   // fc1 output before ReLU
    private var gateIn: Tensor?   // fc2 output before hardsigmoid
    private var gate: Tensor?     // s (n, C)

    public init(_ ctx: ComputeContext, name: String, channels: Int, squeeze: Int, initScheme: Init.Scheme, seed: UInt64) {
        self.ctx = ctx
        fc1 = Conv2d(ctx, name: name + ".fc1", inChannels: channels, outChannels: squeeze, kernel: 1,
                     initScheme: initScheme, seed: seed)
        fc2 = Conv2d(ctx, name: name + ".fc2", inChannels: squeeze, outChannels: channels, kernel: 1,
                     initScheme: initScheme, seed: seed)
    }

    public var parameters: [Parameter] { fc1.parameters + fc2.parameters }
    public func outputShape(_ input: [Int]) -> [Int] { input }

    public func forwardMACs(_ input: [Int]) -> Int {
        let p = [input[0], input[1], 1, 1]
        return fc1.forwardMACs(p) + fc2.forwardMACs(fc1.outputShape(p))
    }

    public func forward(_ x: Tensor, _ mode: ForwardMode) -> Tensor {
        let n = x.shape[0], c = x.shape[1]
        let p = Ops.gap(ctx, x).reshaped([n, c, 1, 1])
        let h = fc1.forward(p, mode)
        let a = Ops.activation(ctx, .relu, h)
        let gIn = fc2.forward(a, mode)
        let s = Ops.activation(ctx, .hardsigmoid, gIn)
        if mode.caches {
            input = x
            hidden = h
            gateIn = gIn
            gate = s
        }
        return Ops.channelScale(ctx, x, s)
    }

    public func backward(_ dy: Tensor, inputGrad: Bool) -> Tensor? {
        guard let x = input, let h = hidden, let gIn = gateIn, let s = gate else {
            preconditionFailure("\(fc1.weight.name): backward without a cached forward")
        }
        let n = x.shape[0], c = x.shape[1]
        // The gate's gradient always flows (fc1/fc2 train); x's direct path only when asked.
        let (dxDirect, ds) = Ops.channelScaleBackward(ctx, x: x, s: s, dy: dy, inputGrad: inputGrad)
        let dgIn = Ops.activationBackward(ctx, .hardsigmoid, x: gIn, dy: ds.reshaped(gIn.shape))
        let da = fc2.backward(dgIn, inputGrad: true)!
        let dh = Ops.activationBackward(ctx, .relu, x: h, dy: da)
        let dp = fc1.backward(dh, inputGrad: inputGrad)
        guard inputGrad, let dx = dxDirect, let dp else { return nil }
        Ops.axpy(ctx, 1, Ops.gapBackward(ctx, inputShape: x.shape, dy: dp.reshaped([n, c])), dx)
        return dx
    }

    public func releaseCache() {
        input = nil
        hidden = nil
        gateIn = nil
        gate = nil
        fc1.releaseCache()
        fc2.releaseCache()
    }
}
