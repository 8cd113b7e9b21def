/// A classifier on global-average-pooled features of some units (ASGE Fusion/Last Pred,
/// DTG-FF's fused classifier, the BP heads): concat(GAP(features)) -> [BatchNorm1d] -> Linear.
public final class FeatureHead {
    public enum Point: String, Codable { case tap, output }
    /// Indices of the units it reads, in feature order.
    public let taps: [Int]
    public let point: Point
    public let norm: BatchNorm?
    public let linear: Linear
    public let featureSize: Int

    init(_ ctx: ComputeContext, taps: [Int], point: Point, units: [Unit], classes: Int, batchNorm: Bool, seed: UInt64) {
        self.taps = taps
        self.point = point
        featureSize = taps.reduce(0) { $0 + (point == .tap ? units[$1].tapShape[0] : units[$1].outputShape[0]) }
        norm = batchNorm ? BatchNorm(ctx, name: "head.bn", channels: featureSize) : nil
        linear = Linear(ctx, name: "head.linear", inFeatures: featureSize, outFeatures: classes, seed: seed)
    }

    public var parameters: [Parameter] { (norm?.parameters ?? []) + linear.parameters }
    public var buffers: [Buffer] { norm?.buffers ?? [] }

    public func reads(_ unit: Int, at point: Point) -> Bool { point == self.point && taps.contains(unit) }

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

/// Collects GAP features of the units a head reads, and concatenates them in tap order.
struct HeadFeatures {
    let head: FeatureHead?
    var parts: [Int: Tensor] = [:]
    let batch: Int

    init(head: FeatureHead?, batch: Int) {
        self.head = head
        self.batch = batch
    }

    mutating func collect(_ ctx: ComputeContext, unit: Int, point: FeatureHead.Point, _ t: Tensor) {
        guard let head, head.reads(unit, at: point) else { return }
        parts[unit] = Ops.gap(ctx, t)
    }

    /// Inverse of `assemble` for gradients: (n, F) -> per-unit (n, C_unit) copies.
    func split(_ d: Tensor) -> [Int: Tensor] {
        var out: [Int: Tensor] = [:]
        var col = 0
        let total = d.shape[1]
        for t in head?.taps ?? [] {
            let w = parts[t]!.shape[1]
            let part = Tensor(uninitialized: [batch, w])
            for i in 0..<batch { (part.pointer + i * w).update(from: d.pointer + i * total + col, count: w) }
            out[t] = part
            col += w
        }
        return out
    }

    func assemble() -> Tensor {
        let taps = head?.taps ?? []
        let widths = taps.map { parts[$0]!.shape[1] }
        if taps.count == 1 { return parts[taps[0]]! }
        let total = widths.reduce(0, +)
        let out = Tensor(uninitialized: [batch, total])
        var col = 0
        for (t, w) in zip(taps, widths) {
            let src = parts[t]!.pointer
            for i in 0..<batch { (out.pointer + i * total + col).update(from: src + i * w, count: w) }
            col += w
        }
        return out
    }
}
