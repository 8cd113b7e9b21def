/// SFF's local objective (class goodness): an auxiliary conv maps the block output to N
/// class maps, and each class's goodness is the mean square of its map:
///   a = AuxConv(y)          (n, N, H, W), kernel k (1x1 default), padding k/2
///   g_k = mean over H, W of a_k^2      (n, N)
/// The scores are g, so softmax cross-entropy of g is SFF's loss L = log sum_k exp(g_k) - g_y.
/// The aux conv trains with the block; its input gradient is the block's gradient.
public final class ClassGoodness: LocalObjective {
    public let ctx: ComputeContext
    public let name: String
    public let aux: Conv2d
    /// Per-sample shape [C, H, W] of the map it reads.
    public let mapShape: [Int]
    private var maps: Tensor?

    public init(_ ctx: ComputeContext, name: String, mapShape: [Int], classes: Int, kernel: Int, bias: Bool, seed: UInt64) {
        precondition(kernel >= 1 && kernel % 2 == 1, "aux conv kernel must be odd")
        self.ctx = ctx
        self.name = name
        self.mapShape = mapShape
        let channels = mapShape[0]
        aux = Conv2d(ctx, name: name + ".conv", inChannels: channels, outChannels: classes, kernel: kernel,
                     padding: kernel / 2, bias: bias, seed: seed)
    }

    public var parameters: [Parameter] { aux.parameters }
    public var buffers: [Buffer] { [] }
    public var shortDescription: String { "aux \(aux.geometry.kernel)x\(aux.geometry.kernel)" }

    public var forwardMACs: Int { aux.forwardMACs([1] + mapShape) }

    public func forward(_ y: Tensor, cache: Bool) -> Tensor {
        let a = aux.forward(y, cache ? .train(cache: true) : .eval)
        if cache { maps = a }
        return Ops.goodness(ctx, a, partition: 1)
    }

    public func backward(_ dscores: Tensor) -> Tensor {
        guard let a = maps else { preconditionFailure("\(name): backward without a cached forward") }
        let da = Ops.goodnessBackward(ctx, y: a, dg: dscores, partition: 1)
        return aux.backward(da, inputGrad: true)!
    }

    public func releaseCache() {
        maps = nil
        aux.releaseCache()
    }
}
