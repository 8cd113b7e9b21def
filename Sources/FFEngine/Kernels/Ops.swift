import FFCore

/// Thin Swift wrappers over the FFCore kernels: they read shapes from tensors, check
/// them, and call C. No copies; outputs are allocated only by the `-> Tensor` forms.
public enum Ops {
    // MARK: Convolution

    public struct ConvGeometry: Equatable, Codable {
        public var kernel: Int
        public var stride: Int
        public var padding: Int
        public var groups: Int
        public init(kernel: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1) {
            self.kernel = kernel; self.stride = stride; self.padding = padding; self.groups = groups
        }
    }

    static func convDesc(_ x: [Int], cOut: Int, _ g: ConvGeometry) -> ff_conv2d_desc {
        precondition(x.count == 4, "conv input must be NCHW, got \(x)")
        return ff_conv2d_desc(n: Int32(x[0]), c_in: Int32(x[1]), h_in: Int32(x[2]), w_in: Int32(x[3]),
                              c_out: Int32(cOut), k_h: Int32(g.kernel), k_w: Int32(g.kernel),
                              stride_h: Int32(g.stride), stride_w: Int32(g.stride),
                              pad_h: Int32(g.padding), pad_w: Int32(g.padding), groups: Int32(g.groups))
    }

    public static func convOutputShape(_ x: [Int], cOut: Int, _ g: ConvGeometry) -> [Int] {
        var d = convDesc(x, cOut: cOut, g)
        return [x[0], cOut, Int(ff_conv2d_out_h(&d)), Int(ff_conv2d_out_w(&d))]
    }

    public static func conv2d(_ ctx: ComputeContext, _ x: Tensor, weight: Tensor, bias: Tensor?,
                              _ g: ConvGeometry, relu: Bool = false, into out: Tensor? = nil) -> Tensor {
        var d = convDesc(x.shape, cOut: weight.shape[0], g)
        if let msg = ff_conv2d_check(&d) { preconditionFailure("conv2d \(x.shape): \(String(cString: msg))") }
        precondition(weight.shape == [weight.shape[0], x.shape[1] / g.groups, g.kernel, g.kernel],
                     "conv2d weight \(weight.shape) does not fit input \(x.shape) with \(g)")
        let shape = [x.shape[0], weight.shape[0], Int(ff_conv2d_out_h(&d)), Int(ff_conv2d_out_w(&d))]
        let y = out ?? Tensor(uninitialized: shape)
        precondition(y.shape == shape, "conv2d output \(y.shape) != \(shape)")
        ff_conv2d_forward(ctx.raw, &d, x.pointer, weight.pointer, bias?.pointer, y.pointer,
                          relu ? FF_CONV_RELU : 0)
        return y
    }

    public static func conv2dBackwardWeight(_ ctx: ComputeContext, _ x: Tensor, dy: Tensor, _ g: ConvGeometry,
                                            dWeight: Tensor, dBias: Tensor?, accumulate: Bool) {
        var d = convDesc(x.shape, cOut: dy.shape[1], g)
        ff_conv2d_backward_weight(ctx.raw, &d, x.pointer, dy.pointer, dWeight.pointer, dBias?.pointer,
                                  accumulate ? 1 : 0)
    }

    public static func conv2dBackwardInput(_ ctx: ComputeContext, inputShape: [Int], weight: Tensor,
                                           dy: Tensor, _ g: ConvGeometry) -> Tensor {
        var d = convDesc(inputShape, cOut: dy.shape[1], g)
        let dx = Tensor(uninitialized: inputShape)
        ff_conv2d_backward_input(ctx.raw, &d, weight.pointer, dy.pointer, dx.pointer)
        return dx
    }

    // MARK: Linear  (x (n, in), w (out, in))

    public static func linear(_ ctx: ComputeContext, _ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        let n = x.shape[0], inF = x.count / max(n, 1), outF = weight.shape[0]
        precondition(weight.shape == [outF, inF], "linear weight \(weight.shape) vs input \(x.shape)")
        let y = Tensor(uninitialized: [n, outF])
        ff_linear_forward(ctx.raw, Int32(n), Int32(inF), Int32(outF), x.pointer, weight.pointer, bias?.pointer, y.pointer)
        return y
    }

    /// Returns dx when `inputGrad`; accumulates dW/db when given.
    @discardableResult
    public static func linearBackward(_ ctx: ComputeContext, _ x: Tensor, weight: Tensor, dy: Tensor,
                                      dWeight: Tensor?, dBias: Tensor?, inputGrad: Bool, accumulate: Bool) -> Tensor? {
        let n = x.shape[0], inF = x.count / max(n, 1), outF = weight.shape[0]
        let dx = inputGrad ? Tensor(uninitialized: x.shape) : nil
        ff_linear_backward(ctx.raw, Int32(n), Int32(inF), Int32(outF), x.pointer, weight.pointer, dy.pointer,
                           dx?.pointer, dWeight?.pointer, dBias?.pointer, accumulate ? 1 : 0)
        return dx
    }

    /// C = op(A) * op(B) (+ beta*C), row-major matrices given as 2-D tensors.
    public static func matmul(_ ctx: ComputeContext, _ a: Tensor, transA: Bool = false, _ b: Tensor,
                              transB: Bool = false, into c: Tensor? = nil, beta: Float = 0, alpha: Float = 1) -> Tensor {
        precondition(a.rank == 2 && b.rank == 2, "matmul needs 2-D tensors, got \(a.shape) and \(b.shape)")
        let m = transA ? a.shape[1] : a.shape[0]
        let k = transA ? a.shape[0] : a.shape[1]
        let kb = transB ? b.shape[1] : b.shape[0]
        let n = transB ? b.shape[0] : b.shape[1]
        precondition(k == kb, "matmul inner dimensions \(a.shape)\(transA ? "ᵀ" : "") x \(b.shape)\(transB ? "ᵀ" : "")")
        let out = c ?? Tensor(uninitialized: [m, n])
        precondition(out.shape == [m, n], "matmul output \(out.shape) != [\(m), \(n)]")
        ff_sgemm(ctx.raw, transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha,
                 a.pointer, Int32(a.shape[1]), b.pointer, Int32(b.shape[1]), beta, out.pointer, Int32(n))
        return out
    }

    // MARK: Pooling

    public enum PoolKind: String, Codable, CaseIterable { case max, avg, rms }

    static func poolDesc(_ x: [Int], kernel: Int, stride: Int, padding: Int) -> ff_pool2d_desc {
        ff_pool2d_desc(n: Int32(x[0]), c: Int32(x[1]), h_in: Int32(x[2]), w_in: Int32(x[3]),
                       k_h: Int32(kernel), k_w: Int32(kernel), stride_h: Int32(stride), stride_w: Int32(stride),
                       pad_h: Int32(padding), pad_w: Int32(padding))
    }

    public static func poolOutputShape(_ x: [Int], kernel: Int, stride: Int, padding: Int) -> [Int] {
        var d = poolDesc(x, kernel: kernel, stride: stride, padding: padding)
        return [x[0], x[1], Int(ff_pool2d_out_h(&d)), Int(ff_pool2d_out_w(&d))]
    }

    /// Forward pooling; for max pooling `argmax` receives the winning indices when given.
    public static func pool(_ ctx: ComputeContext, _ kind: PoolKind, _ x: Tensor, kernel: Int, stride: Int,
                            padding: Int = 0, argmax: UnsafeMutablePointer<Int32>? = nil) -> Tensor {
        var d = poolDesc(x.shape, kernel: kernel, stride: stride, padding: padding)
        let y = Tensor(uninitialized: [x.shape[0], x.shape[1], Int(ff_pool2d_out_h(&d)), Int(ff_pool2d_out_w(&d))])
        switch kind {
        case .max: ff_maxpool2d_forward(ctx.raw, &d, x.pointer, y.pointer, argmax)
        case .avg: ff_avgpool2d_forward(ctx.raw, &d, x.pointer, y.pointer)
        case .rms: ff_rmspool2d_forward(ctx.raw, &d, x.pointer, y.pointer)
        }
        return y
    }

    public static func poolBackward(_ ctx: ComputeContext, _ kind: PoolKind, x: Tensor, y: Tensor, dy: Tensor,
                                    kernel: Int, stride: Int, padding: Int = 0,
                                    argmax: UnsafePointer<Int32>? = nil) -> Tensor {
        var d = poolDesc(x.shape, kernel: kernel, stride: stride, padding: padding)
        let dx = Tensor(uninitialized: x.shape)
        switch kind {
        case .max:
            precondition(argmax != nil, "max pooling backward needs the forward argmax")
            ff_maxpool2d_backward(ctx.raw, &d, dy.pointer, argmax, dx.pointer)
        case .avg: ff_avgpool2d_backward(ctx.raw, &d, dy.pointer, dx.pointer)
        case .rms: ff_rmspool2d_backward(ctx.raw, &d, x.pointer, y.pointer, dy.pointer, dx.pointer)
        }
        return dx
    }

    /// Global average pool (n, c, h, w) -> (n, c).
    public static func gap(_ ctx: ComputeContext, _ x: Tensor, into out: Tensor? = nil) -> Tensor {
        let n = x.shape[0], c = x.shape[1], hw = x.count / max(n * c, 1)
        let y = out ?? Tensor(uninitialized: [n, c])
        precondition(y.count == n * c, "gap output \(y.shape) for \(x.shape)")
        ff_gap_forward(ctx.raw, Int32(n), Int32(c), Int32(hw), x.pointer, y.pointer)
        return y
    }

    public static func gapBackward(_ ctx: ComputeContext, inputShape: [Int], dy: Tensor) -> Tensor {
        let n = inputShape[0], c = inputShape[1], hw = inputShape.dropFirst(2).reduce(1, *)
        let dx = Tensor(uninitialized: inputShape)
        ff_gap_backward(ctx.raw, Int32(n), Int32(c), Int32(hw), dy.pointer, dx.pointer)
        return dx
    }

    /// Per-channel gating x (n, c, h, w) * s (n, c) (squeeze-and-excitation).
    public static func channelScale(_ ctx: ComputeContext, _ x: Tensor, _ s: Tensor) -> Tensor {
        let n = x.shape[0], c = x.shape[1], hw = x.count / max(n * c, 1)
        precondition(s.count == n * c, "channel scale \(s.shape) for \(x.shape)")
        let y = Tensor(uninitialized: x.shape)
        ff_channel_scale_forward(ctx.raw, Int32(n), Int32(c), Int32(hw), x.pointer, s.pointer, y.pointer)
        return y
    }

    /// Backward of `channelScale`: (dx or nil, ds (n, c)).
    public static func channelScaleBackward(_ ctx: ComputeContext, x: Tensor, s: Tensor, dy: Tensor,
                                            inputGrad: Bool) -> (dx: Tensor?, ds: Tensor) {
        let n = x.shape[0], c = x.shape[1], hw = x.count / max(n * c, 1)
        let dx = inputGrad ? Tensor(uninitialized: x.shape) : nil
        let ds = Tensor(uninitialized: [n, c])
        ff_channel_scale_backward(ctx.raw, Int32(n), Int32(c), Int32(hw), x.pointer, s.pointer, dy.pointer,
                                  dx?.pointer, ds.pointer)
        return (dx, ds)
    }

    // MARK: Activations

    public enum Activation: String, Codable { case relu, hardswish, hardsigmoid }

    public static func activation(_ ctx: ComputeContext, _ kind: Activation, _ x: Tensor, inPlace: Bool = false) -> Tensor {
        let y = inPlace ? x : Tensor(uninitialized: x.shape)
        let n = x.count
        switch kind {
        case .relu: ff_relu_forward(ctx.raw, n, x.pointer, y.pointer)
        case .hardswish: ff_hardswish_forward(ctx.raw, n, x.pointer, y.pointer)
        case .hardsigmoid: ff_hardsigmoid_forward(ctx.raw, n, x.pointer, y.pointer)
        }
        return y
    }

    /// `x` is the forward input (for ReLU the output works as well).
    public static func activationBackward(_ ctx: ComputeContext, _ kind: Activation, x: Tensor, dy: Tensor,
                                          inPlace: Bool = false) -> Tensor {
        let dx = inPlace ? dy : Tensor(uninitialized: x.shape)
        let n = x.count
        switch kind {
        case .relu: ff_relu_backward(ctx.raw, n, x.pointer, dy.pointer, dx.pointer)
        case .hardswish: ff_hardswish_backward(ctx.raw, n, x.pointer, dy.pointer, dx.pointer)
        case .hardsigmoid: ff_hardsigmoid_backward(ctx.raw, n, x.pointer, dy.pointer, dx.pointer)
        }
        return dx
    }

    // MARK: Goodness

    /// Patch layout when P does not divide the map (see ffcore.h).
    public enum GoodnessBins: String, Codable {
        case adaptive, floor
        var raw: Int32 { Int32(self == .floor ? FF_GOODNESS_FLOOR : FF_GOODNESS_ADAPTIVE) }
    }

    public static func goodness(_ ctx: ComputeContext, _ y: Tensor, partition p: Int, bins: GoodnessBins = .adaptive) -> Tensor {
        let (n, c, h, w) = (y.shape[0], y.shape[1], y.shape[2], y.shape[3])
        let g = Tensor(uninitialized: [n, c * p * p])
        ff_goodness_forward_bins(ctx.raw, Int32(n), Int32(c), Int32(h), Int32(w), Int32(p), bins.raw, y.pointer, g.pointer)
        return g
    }

    public static func goodnessBackward(_ ctx: ComputeContext, y: Tensor, dg: Tensor, partition p: Int,
                                        bins: GoodnessBins = .adaptive, into out: Tensor? = nil) -> Tensor {
        let (n, c, h, w) = (y.shape[0], y.shape[1], y.shape[2], y.shape[3])
        let dy = out ?? Tensor(uninitialized: y.shape)
        ff_goodness_backward_bins(ctx.raw, Int32(n), Int32(c), Int32(h), Int32(w), Int32(p), bins.raw, y.pointer,
                                  dg.pointer, dy.pointer)
        return dy
    }

    public static func partition(alpha: Double, lastChannels: Int, channels: Int, height: Int, width: Int) -> Int {
        Int(ff_goodness_partition(alpha, Int32(lastChannels), Int32(channels), Int32(height), Int32(width)))
    }

    // MARK: Loss

    public struct LossResult {
        public var loss: Double
        public var correct: Int
    }

    /// Mean softmax cross-entropy; writes (softmax - onehot)/n into `dlogits` when given.
    public static func softmaxCrossEntropy(_ ctx: ComputeContext, logits: Tensor, labels: [Int32],
                                           dlogits: Tensor? = nil, gradScale: Float? = nil) -> LossResult {
        let n = logits.shape[0], k = logits.shape[1]
        precondition(labels.count == n, "labels \(labels.count) vs logits \(logits.shape)")
        var correct: Int32 = 0
        let scale = gradScale ?? 1 / Float(max(n, 1))
        let loss = labels.withUnsafeBufferPointer { lp in
            ff_softmax_xent(ctx.raw, Int32(n), Int32(k), logits.pointer, lp.baseAddress, scale, dlogits?.pointer, &correct)
        }
        return LossResult(loss: loss, correct: Int(correct))
    }

    public static func topkCorrect(logits: Tensor, labels: [Int32], k: Int) -> Int {
        labels.withUnsafeBufferPointer { lp in
            Int(ff_topk_correct(Int32(logits.shape[0]), Int32(logits.shape[1]), logits.pointer, lp.baseAddress, Int32(k)))
        }
    }

    public static func argmaxRows(_ x: Tensor) -> [Int32] {
        var out = [Int32](repeating: 0, count: x.shape[0])
        out.withUnsafeMutableBufferPointer { ff_argmax_rows(Int32(x.shape[0]), Int32(x.shape[1]), x.pointer, $0.baseAddress) }
        return out
    }

    // MARK: Vectors

    public static func firstNonFinite(_ ctx: ComputeContext, _ x: Tensor) -> Int? {
        let i = ff_vec_find_nonfinite(ctx.raw, x.count, x.pointer)
        return i < 0 ? nil : i
    }

    public static func axpy(_ ctx: ComputeContext, _ alpha: Float, _ x: Tensor, _ y: Tensor) {
        precondition(x.count == y.count, "axpy \(x.shape) into \(y.shape)")
        ff_vec_axpy(ctx.raw, x.count, alpha, x.pointer, y.pointer)
    }

    public static func scale(_ ctx: ComputeContext, _ alpha: Float, _ x: Tensor) {
        ff_vec_scale(ctx.raw, x.count, alpha, x.pointer)
    }

    public static func zero(_ ctx: ComputeContext, _ x: Tensor) {
        ff_vec_fill(ctx.raw, x.count, x.pointer, 0)
    }
}
