import FFCore

/// Bi-axis covariance goodness (BiCovG, our interpretation): for K fixed unit directions
/// u_k, the energies mean over a patch of (u_k . y)^2 = u_k' Sigma_patch u_k at several
/// pyramid levels. Shapes, output order and costs: ffcore.h, `ff_covgoodness_forward`.
extension Ops {
    /// Pyramid levels used when a recipe does not name its own.
    public static let defaultCovarianceLevels = [1, 2, 4]

    static func covarianceDesc(_ y: [Int], directions k: Int, levels: [Int],
                               bins: GoodnessBins) -> ff_covgoodness_desc {
        precondition(y.count == 4, "covariance goodness input must be NCHW, got \(y)")
        var d = ff_covgoodness_desc()
        d.n = Int32(clamping: y[0]); d.c = Int32(clamping: y[1])
        d.h = Int32(clamping: y[2]); d.w = Int32(clamping: y[3])
        d.k = Int32(clamping: k)
        d.nlev = Int32(clamping: levels.count)
        d.bins = bins.raw
        withUnsafeMutableBytes(of: &d.levels) { raw in
            let slots = raw.bindMemory(to: Int32.self)
            for (i, p) in levels.prefix(slots.count).enumerated() { slots[i] = Int32(clamping: p) }
        }
        return d
    }

    private static func checked(_ d: ff_covgoodness_desc, _ what: String) -> ff_covgoodness_desc {
        var d = d
        if let msg = ff_covgoodness_check(&d) { preconditionFailure("\(what): \(String(cString: msg))") }
        return d
    }

    /// The levels as the kernel uses them on an h x w map: each clipped to min(h, w), then
    /// repeats of an earlier level dropped, order kept ([1, 2, 4] on 3x5 -> [1, 2, 3]).
    public static func covarianceLevels(_ levels: [Int], height: Int, width: Int) -> [Int] {
        var d = checked(covarianceDesc([1, 1, height, width], directions: 1, levels: levels, bins: .adaptive),
                        "covariance levels \(levels) on \(height)x\(width)")
        var out = [Int32](repeating: 0, count: Int(FF_COVG_MAX_LEVELS))
        let m = Int(ff_covgoodness_levels(&d, &out))
        return out.prefix(m).map(Int.init)
    }

    /// Values per sample: K * sum of P^2 over the normalised levels.
    public static func covarianceGoodnessCount(directions k: Int, levels: [Int], height: Int, width: Int) -> Int {
        var d = checked(covarianceDesc([1, 1, height, width], directions: k, levels: levels, bins: .adaptive),
                        "covariance goodness K=\(k) levels \(levels) on \(height)x\(width)")
        return Int(ff_covgoodness_dim(&d))
    }

    /// K directions in R^C, (K, C): rows drawn from N(0, 1) with `rng` and scaled to unit
    /// norm. Fixed once drawn; models store them as a buffer.
    public static func covarianceDirections(count k: Int, channels c: Int, rng: inout RNG) -> Tensor {
        precondition(k >= 1 && c >= 1, "covariance directions need K >= 1 and C >= 1, got \(k) x \(c)")
        let u = Tensor(uninitialized: [k, c])
        ff_covgoodness_directions(&rng.state, Int32(k), Int32(c), u.pointer)
        return u
    }

    /// Energies (n, K * sum P^2), level-major (see ffcore.h). `projections` (n, K, h, w), when
    /// given, receives z = U y for the backward to reuse (saves one sgemm there).
    public static func covarianceGoodness(_ ctx: ComputeContext, _ y: Tensor, directions u: Tensor,
                                          levels: [Int] = defaultCovarianceLevels, bins: GoodnessBins = .adaptive,
                                          projections z: Tensor? = nil, into out: Tensor? = nil) -> Tensor {
        var d = checked(covarianceDesc(y.shape, directions: u.shape.first ?? 0, levels: levels, bins: bins),
                        "covariance goodness of \(y.shape)")
        precondition(u.shape == [Int(d.k), y.shape[1]], "directions \(u.shape) do not fit input \(y.shape)")
        let e = out ?? Tensor(uninitialized: [y.shape[0], Int(ff_covgoodness_dim(&d))])
        precondition(e.shape == [y.shape[0], Int(ff_covgoodness_dim(&d))],
                     "covariance goodness output \(e.shape) for \(y.shape), levels \(levels)")
        if let z { precondition(z.shape == [y.shape[0], Int(d.k), y.shape[2], y.shape[3]],
                                "projections \(z.shape) for \(y.shape) and \(d.k) directions") }
        ff_covgoodness_forward(ctx.raw, &d, u.pointer, y.pointer, e.pointer, z?.pointer)
        return e
    }

    /// dL/dy for dL/de = `de`. Needs `y` or the forward's `projections` (then y may be nil
    /// and `inputShape` is taken from them). With `accumulate` the gradient is added into
    /// `into` (e.g. the ASGE goodness gradient of the same map).
    public static func covarianceGoodnessBackward(_ ctx: ComputeContext, y: Tensor?, directions u: Tensor, de: Tensor,
                                                  levels: [Int] = defaultCovarianceLevels,
                                                  bins: GoodnessBins = .adaptive, projections z: Tensor? = nil,
                                                  into out: Tensor? = nil, accumulate: Bool = false) -> Tensor {
        precondition(y != nil || z != nil, "covariance goodness backward needs y or the saved projections")
        precondition(u.rank == 2, "directions must be (K, C), got \(u.shape)")
        let shape = y?.shape ?? [z!.shape[0], u.shape[1], z!.shape[2], z!.shape[3]]
        var d = checked(covarianceDesc(shape, directions: u.shape[0], levels: levels, bins: bins),
                        "covariance goodness backward of \(shape)")
        precondition(u.shape[1] == shape[1], "directions \(u.shape) do not fit input \(shape)")
        precondition(de.shape == [shape[0], Int(ff_covgoodness_dim(&d))], "de \(de.shape) for \(shape), levels \(levels)")
        if let z { precondition(z.shape == [shape[0], u.shape[0], shape[2], shape[3]], "projections \(z.shape) for \(shape)") }
        precondition(!accumulate || out != nil, "accumulate needs the tensor to add into")
        let dy = out ?? Tensor(uninitialized: shape)
        precondition(dy.shape == shape, "covariance goodness gradient \(dy.shape) != \(shape)")
        ff_covgoodness_backward(ctx.raw, &d, u.pointer, y?.pointer, z?.pointer, de.pointer, dy.pointer,
                                accumulate ? 1 : 0)
        return dy
    }
}
