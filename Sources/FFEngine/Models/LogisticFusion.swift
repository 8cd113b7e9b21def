import Foundation

/// BiCovG's Logistic Fusion (pred = goodness-logistic): the prediction from the readouts'
/// class scores a_l (detached), weighted by learnable gates,
///   logits = sum_l sigmoid(w_l) a_l,
/// trained by its own cross-entropy with the detached head's optimizer. The gate logits
/// start linear in depth (fusion_init_first ... fusion_init_last), so deeper readouts
/// count more from the start.
public final class LogisticFusion {
    public let ctx: ComputeContext
    /// Gate logits w_l, one per readout, "fusion.weight".
    public let weight: Parameter
    private var scores: [Tensor]?

    init(_ ctx: ComputeContext, readouts: Int, first: Double, last: Double, decay: Bool) {
        precondition(readouts >= 1, "logistic fusion needs at least one readout")
        self.ctx = ctx
        let w = (0..<readouts).map { l in
            Float(readouts == 1 ? last : first + (last - first) * Double(l) / Double(readouts - 1))
        }
        weight = Parameter(name: "fusion.weight", value: Tensor(shape: [readouts], values: w), decay: decay)
    }

    public var parameters: [Parameter] { [weight] }

    /// sigmoid(w_l), in double then rounded once.
    public var gates: [Float] { weight.value.array.map { Float(1 / (1 + exp(-Double($0)))) } }

    public func forward(_ scores: [Tensor], cache: Bool) -> Tensor {
        precondition(scores.count == weight.value.count,
                     "logistic fusion of \(scores.count) readouts, built for \(weight.value.count)")
        let gates = self.gates
        let out = Tensor(zeros: scores[0].shape)
        for (a, s) in zip(scores, gates) { Ops.axpy(ctx, s, a, out) }
        if cache { self.scores = scores }
        return out
    }

    /// Adds dL/dw_l = sigmoid'(w_l) * sum(dL/dlogits * a_l) into the gate gradients.
    public func backward(_ dlogits: Tensor) {
        guard let scores else { preconditionFailure("logistic fusion: backward without a cached forward") }
        let gates = self.gates
        let d = dlogits.pointer
        for (l, a) in scores.enumerated() {
            var dot = 0.0
            let p = a.pointer
            for i in 0..<a.count { dot += Double(d[i]) * Double(p[i]) }
            let s = Double(gates[l])
            weight.grad[l] += Float(dot * s * (1 - s))
        }
    }

    public func releaseCache() { scores = nil }
}
