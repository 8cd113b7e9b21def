/// BiCovG's local objective (bi-axis covariance goodness, our interpretation; see
/// papers/bicovg/README.md): ASGE's patch energies of the post-ReLU map, then for K fixed
/// unit directions u_k the covariance energies e = mean over a patch of (u_k . y)^2 =
/// u_k' Sigma_patch u_k at pyramid levels P in `levels` (clipped to the map), both read by
/// one fixed random readout:
///   g = goodness(Y, P_l)                      (n, C*P_l^2)      when patchEnergies
///   e = covarianceGoodness(Y, U, levels)      (n, K*sum P^2)    when covariance
///   a = [g | e] R + b                         (n, N), R (D, N) and b drawn once, never trained
/// The readout rows of g are drawn first from the same stream as SpatialGoodness's, so with
/// the covariance energies off this objective is plain ASGE goodness, bit for bit.
public final class CovarianceGoodness: LocalObjective {
    /// Maps with at most this many channels keep z = U y from the forward for the backward
    /// (the kernel's note: the recompute sgemm is least efficient there, and z is no larger
    /// than y once C >= K); wider maps recompute z, saving n*K*H*W floats.
    public static let saveProjectionsUpToChannels = 128

    public let ctx: ComputeContext
    public let name: String
    public let partition: Int
    public let bins: Ops.GoodnessBins
    /// The fixed directions (K, C), unit rows; nil with the covariance energies off.
    public let directions: Tensor?
    /// The requested pyramid levels, and the ones the kernel uses on this map.
    public let levels: [Int]
    public let mapLevels: [Int]
    public let patchEnergies: Bool
    public let readout: Tensor       // (D, N): patch rows, then covariance rows
    public let readoutBias: Tensor   // (N)
    /// Features per sample of each part.
    public let patchSize: Int
    public let covarianceSize: Int
    public let mapShape: [Int]
    private var input: Tensor?
    private var projections: Tensor?

    public init(_ ctx: ComputeContext, name: String, mapShape: [Int], partition: Int, bins: Ops.GoodnessBins = .adaptive,
                covariance: Bool, directions k: Int, levels: [Int], patchEnergies: Bool, classes: Int,
                readoutStd: Float, seed: UInt64) {
        precondition(covariance || patchEnergies, "\(name): covariance goodness without any energies")
        let (c, h, w) = (mapShape[0], mapShape[1], mapShape[2])
        self.ctx = ctx
        self.name = name
        self.mapShape = mapShape
        self.partition = partition
        self.bins = bins
        self.levels = levels
        self.patchEnergies = patchEnergies
        patchSize = patchEnergies ? c * partition * partition : 0
        if covariance {
            var rng = RNG(seed: seed, stream: Init.stream(for: name + ".directions"))
            directions = Ops.covarianceDirections(count: k, channels: c, rng: &rng)
            mapLevels = Ops.covarianceLevels(levels, height: h, width: w)
            covarianceSize = Ops.covarianceGoodnessCount(directions: k, levels: levels, height: h, width: w)
        } else {
            directions = nil
            mapLevels = []
            covarianceSize = 0
        }
        readout = Tensor(uninitialized: [patchSize + covarianceSize, classes])
        readoutBias = Tensor(uninitialized: [classes])
        Init.normal(readout, std: readoutStd, seed: seed, name: name + ".readout.weight")
        Init.normal(readoutBias, std: readoutStd, seed: seed, name: name + ".readout.bias")
    }

    public var featureSize: Int { patchSize + covarianceSize }
    public var parameters: [Parameter] { [] }
    public var buffers: [Buffer] {
        [Buffer(name: name + ".readout.weight", value: readout), Buffer(name: name + ".readout.bias", value: readoutBias)]
            + (directions.map { [Buffer(name: name + ".directions", value: $0)] } ?? [])
    }

    public var shortDescription: String {
        let p = patchEnergies ? "P\(partition)" : ""
        guard let u = directions else { return p }
        return p + (p.isEmpty ? "" : "+") + "cov\(u.shape[0])@" + mapLevels.map(String.init).joined(separator: ",")
    }

    /// The projection sgemm z = U y (the kernel's only multiply-accumulates per position).
    public var forwardMACs: Int { (directions?.shape[0] ?? 0) * mapShape.reduce(1, *) }

    private var savesProjections: Bool { mapShape[0] <= CovarianceGoodness.saveProjectionsUpToChannels }

    private var patchRows: Tensor { readout.slice(0, patchSize) }
    private var covarianceRows: Tensor { readout.slice(patchSize, covarianceSize) }

    public func forward(_ y: Tensor, cache: Bool) -> Tensor {
        let n = y.shape[0]
        var logits: Tensor?
        if patchEnergies {
            let g = Ops.goodness(ctx, y, partition: partition, bins: bins)
            logits = Ops.matmul(ctx, g, patchRows)
        }
        var z: Tensor?
        if let u = directions {
            if cache && savesProjections { z = Tensor(uninitialized: [n, u.shape[0], y.shape[2], y.shape[3]]) }
            let e = Ops.covarianceGoodness(ctx, y, directions: u, levels: levels, bins: bins, projections: z)
            logits = Ops.matmul(ctx, e, covarianceRows, into: logits, beta: logits == nil ? 0 : 1)
        }
        let out = logits!
        let classes = readoutBias.count
        let l = out.pointer, b = readoutBias.pointer
        for i in 0..<n {
            for j in 0..<classes { l[i * classes + j] = l[i * classes + j] + b[j] }
        }
        if cache {
            input = y
            projections = z
        }
        return out
    }

    /// dL/dy for dL/dlogits: the patch-energy gradient first, the covariance gradient added
    /// into it. Zero where y == 0, so it is also the pre-ReLU gradient.
    public func backward(_ dlogits: Tensor) -> Tensor {
        guard let y = input else { preconditionFailure("\(name): backward without a cached forward") }
        var dy: Tensor?
        if patchEnergies {
            let dg = Ops.matmul(ctx, dlogits, patchRows, transB: true)
            dy = Ops.goodnessBackward(ctx, y: y, dg: dg, partition: partition, bins: bins)
        }
        if let u = directions {
            let de = Ops.matmul(ctx, dlogits, covarianceRows, transB: true)
            dy = Ops.covarianceGoodnessBackward(ctx, y: y, directions: u, de: de, levels: levels, bins: bins,
                                                projections: projections, into: dy, accumulate: dy != nil)
        }
        return dy!
    }

    public func releaseCache() {
        input = nil
        projections = nil
    }
}
