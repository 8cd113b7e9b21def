/// A classifier on global-average-pooled features of some units (ASGE Fusion/Last Pred,
/// DTG-FF's fused classifier, the BP heads): concat(GAP(features)) -> [BatchNorm1d] ->
/// Linear, or (per-layer-sum, the ASGE authors' code) one Linear per unit read, logits
/// summed. The two span the same functions but train differently: each per-layer Linear
/// has its own bias, initialisation fan-in and optimizer state.
public final class FeatureHead {
    public enum Point: String, Codable { case tap, output }
    /// Indices of the units it reads, in feature order.
    public let taps: [Int]
    public let point: Point
    public let norm: BatchNorm?
    /// One Linear on all features, or one per tapped unit (logits summed).
    public let linears: [Linear]
    /// Feature columns of each tapped unit, in tap order.
    public let widths: [Int]
    public let featureSize: Int
    let ctx: ComputeContext

    init(_ ctx: ComputeContext, taps: [Int], point: Point, units: [Unit], classes: Int, batchNorm: Bool,
         perLayerSum: Bool = false, initScheme: Init.Scheme = .fanInUniform, seed: UInt64) {
        self.ctx = ctx
        self.taps = taps
        self.point = point
        widths = taps.map { point == .tap ? units[$0].tapShape[0] : units[$0].outputShape[0] }
        featureSize = widths.reduce(0, +)
        norm = batchNorm ? BatchNorm(ctx, name: "head.bn", channels: featureSize) : nil
        if perLayerSum && taps.count > 1 {
            linears = widths.enumerated().map { i, w in
                Linear(ctx, name: "head.fc.\(i)", inFeatures: w, outFeatures: classes, initScheme: initScheme, seed: seed)
            }
        } else {
            linears = [Linear(ctx, name: "head.linear", inFeatures: featureSize, outFeatures: classes,
                              initScheme: initScheme, seed: seed)]
        }
    }

    public var parameters: [Parameter] { (norm?.parameters ?? []) + linears.flatMap(\.parameters) }
    public var buffers: [Buffer] { norm?.buffers ?? [] }

    public func reads(_ unit: Int, at point: Point) -> Bool { point == self.point && taps.contains(unit) }

    /// Column ranges of the per-layer parts of a (n, featureSize) tensor.
    private var offsets: [Int] { widths.reduce(into: [0]) { $0.append($0.last! + $1) } }

    private func columns(_ t: Tensor, _ lo: Int, _ w: Int) -> Tensor {
        let n = t.shape[0], total = t.shape[1]
        let part = Tensor(uninitialized: [n, w])
        for i in 0..<n { (part.pointer + i * w).update(from: t.pointer + i * total + lo, count: w) }
        return part
    }

    public func forward(_ features: Tensor, _ mode: ForwardMode) -> Tensor {
        let z = norm?.forward(features, mode) ?? features
        if linears.count == 1 { return linears[0].forward(z, mode) }
        let off = offsets
        var logits: Tensor?
        for (i, lin) in linears.enumerated() {
            let y = lin.forward(columns(z, off[i], widths[i]), mode)
            if let acc = logits { Ops.axpy(ctx, 1, y, acc) } else { logits = y }
        }
        return logits!
    }

    public func backward(_ dlogits: Tensor, inputGrad: Bool) -> Tensor? {
        let wantInput = inputGrad || norm != nil
        let dz: Tensor?
        if linears.count == 1 {
            dz = linears[0].backward(dlogits, inputGrad: wantInput)
        } else {
            let parts = linears.map { $0.backward(dlogits, inputGrad: wantInput) }
            if wantInput {
                let n = dlogits.shape[0], off = offsets
                let out = Tensor(uninitialized: [n, featureSize])
                for (k, part) in parts.enumerated() {
                    for i in 0..<n {
                        (out.pointer + i * featureSize + off[k]).update(from: part!.pointer + i * widths[k], count: widths[k])
                    }
                }
                dz = out
            } else {
                dz = nil
            }
        }
        guard let norm else { return dz }
        return norm.backward(dz!, inputGrad: inputGrad)
    }

    public func releaseCache() {
        norm?.releaseCache()
        linears.forEach { $0.releaseCache() }
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
