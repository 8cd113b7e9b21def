/// Activation layers (ReLU, hard-swish, hard-sigmoid). An in-place ReLU overwrites its input
/// and keeps its output for the backward (the mask is the same), saving one activation-sized
/// tensor; only valid after a layer that does not keep its own output (BatchNorm, an add).
public final class Activation: Layer {
    public let ctx: ComputeContext
    public let kind: Ops.Activation
    public let inPlace: Bool
    private var saved: Tensor?

    public init(_ ctx: ComputeContext, _ kind: Ops.Activation, inPlace: Bool = false) {
        precondition(!inPlace || kind == .relu, "only ReLU can run in place (its backward needs only the output)")
        self.ctx = ctx
        self.kind = kind
        self.inPlace = inPlace
    }

    public func outputShape(_ input: [Int]) -> [Int] { input }
    public var keepsOutput: Bool { inPlace }

    public func forward(_ x: Tensor, _ mode: ForwardMode) -> Tensor {
        let y = Ops.activation(ctx, kind, x, inPlace: inPlace)
        if mode.caches { saved = inPlace ? y : x }
        return y
    }

    public func backward(_ dy: Tensor, inputGrad: Bool) -> Tensor? {
        guard inputGrad else { return nil }
        guard let x = saved else { preconditionFailure("\(kind): backward without a cached forward") }
        return Ops.activationBackward(ctx, kind, x: x, dy: dy)
    }

    public func releaseCache() { saved = nil }
}

/// 2-D pooling (max, average, RMS) with square windows.
public final class Pool2d: Layer {
    public let ctx: ComputeContext
    public let kind: Ops.PoolKind
    public let kernel: Int, stride: Int, padding: Int
    private var input: Tensor?
    private var output: Tensor?
    private var argmax: [Int32] = []

    public init(_ ctx: ComputeContext, _ kind: Ops.PoolKind, kernel: Int, stride: Int? = nil, padding: Int = 0) {
        self.ctx = ctx
        self.kind = kind
        self.kernel = kernel
        self.stride = stride ?? kernel
        self.padding = padding
    }

    public func outputShape(_ input: [Int]) -> [Int] {
        Ops.poolOutputShape(input, kernel: kernel, stride: stride, padding: padding)
    }

    public var keepsOutput: Bool { true }

    public func forward(_ x: Tensor, _ mode: ForwardMode) -> Tensor {
        let y: Tensor
        if kind == .max && mode.caches {
            argmax = [Int32](repeating: 0, count: outputShape(x.shape).reduce(1, *))
            y = argmax.withUnsafeMutableBufferPointer {
                Ops.pool(ctx, kind, x, kernel: kernel, stride: stride, padding: padding, argmax: $0.baseAddress)
            }
        } else {
            y = Ops.pool(ctx, kind, x, kernel: kernel, stride: stride, padding: padding)
        }
        if mode.caches {
            input = x
            output = y
        }
        return y
    }

    public func backward(_ dy: Tensor, inputGrad: Bool) -> Tensor? {
        guard inputGrad else { return nil }
        guard let x = input, let y = output else { preconditionFailure("pool: backward without a cached forward") }
        return argmax.withUnsafeBufferPointer {
            Ops.poolBackward(ctx, kind, x: x, y: y, dy: dy, kernel: kernel, stride: stride, padding: padding,
                             argmax: kind == .max ? $0.baseAddress : nil)
        }
    }

    public func releaseCache() {
        input = nil
        output = nil
        argmax = []
    }
}

/// Global average pooling (n, c, h, w) -> (n, c).
public final class GlobalAvgPool: Layer {
    public let ctx: ComputeContext
    private var inputShape: [Int] = []

    public init(_ ctx: ComputeContext) { self.ctx = ctx }

    public func outputShape(_ input: [Int]) -> [Int] { [input[0], input[1]] }

    public func forward(_ x: Tensor, _ mode: ForwardMode) -> Tensor {
        if mode.caches { inputShape = x.shape }
        return Ops.gap(ctx, x)
    }

    public func backward(_ dy: Tensor, inputGrad: Bool) -> Tensor? {
        inputGrad ? Ops.gapBackward(ctx, inputShape: inputShape, dy: dy) : nil
    }

    public func releaseCache() {}
}
