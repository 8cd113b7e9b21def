import FFCore
import XCTest

/// Bi-axis covariance goodness: energies against u' Sigma_patch u from explicit per-patch
/// channel second-moment matrices in double, the backward against its closed form and
/// finite differences, accumulate mode, saved projections, level normalisation, the
/// explicit-covariance baseline and the workspace bound.
final class CovGoodnessTests: XCTestCase {
    private struct Shape: CustomStringConvertible {
        var n, c, h, w, k: Int
        var levels: [Int]
        var floor = false
        var description: String { "n\(n) c\(c) \(h)x\(w) k\(k) levels \(levels)\(floor ? " floor" : "")" }

        /// The rule of ffcore.h, written out independently: clip to min(h, w), drop repeats.
        var normalised: [Int] {
            var out: [Int] = []
            for p in levels where !out.contains(min(p, min(h, w))) { out.append(min(p, min(h, w))) }
            return out
        }
        var dim: Int { k * normalised.reduce(0) { $0 + $1 * $1 } }
        var hw: Int { h * w }

        var desc: ff_covgoodness_desc {
            var d = ff_covgoodness_desc()
            (d.n, d.c, d.h, d.w, d.k) = (Int32(n), Int32(c), Int32(h), Int32(w), Int32(k))
            d.nlev = Int32(levels.count)
            d.bins = Int32(floor ? FF_GOODNESS_FLOOR : FF_GOODNESS_ADAPTIVE)
            withUnsafeMutableBytes(of: &d.levels) { raw in
                let slots = raw.bindMemory(to: Int32.self)
                for (i, p) in levels.prefix(slots.count).enumerated() { slots[i] = Int32(p) }
            }
            return d
        }
    }

    /// H != W, sizes not divisible by P, C and K not multiples of 16, batch 1, levels
    /// clipped (8 -> 6, 4 -> 3) or clipped onto an earlier one (4 -> 2 on 2x2), an
    /// unsorted list, floor bins, and maps of >= 2048 positions that the kernel cuts into
    /// row bands (47 rows: the bands split adaptive row bins).
    private let shapes = [
        Shape(n: 1, c: 5, h: 7, w: 5, k: 3, levels: [1, 2, 4]),
        Shape(n: 2, c: 17, h: 6, w: 9, k: 19, levels: [1, 2, 4, 8]),
        Shape(n: 3, c: 3, h: 3, w: 5, k: 2, levels: [1, 2, 4]),
        Shape(n: 1, c: 20, h: 2, w: 2, k: 5, levels: [1, 2, 4]),
        Shape(n: 4, c: 33, h: 9, w: 11, k: 17, levels: [4, 1, 2]),
        Shape(n: 2, c: 6, h: 7, w: 10, k: 5, levels: [1, 3], floor: true),
        Shape(n: 2, c: 7, h: 47, w: 59, k: 5, levels: [1, 2, 3, 4]),
        Shape(n: 1, c: 4, h: 64, w: 33, k: 3, levels: [1, 5], floor: true),
    ]

    // MARK: references (double)

    private func patches(_ s: Shape, _ p: Int) -> [(rows: Range<Int>, cols: Range<Int>)] {
        var out: [(Range<Int>, Range<Int>)] = []
        for i in 0..<p {
            for j in 0..<p { out.append((goodnessBin(i, s.h, p, floor: s.floor), goodnessBin(j, s.w, p, floor: s.floor))) }
        }
        return out
    }

    /// e = u_k' Sigma u_k, Sigma the patch's c x c second-moment matrix, level-major.
    private func refForward(_ s: Shape, _ y: [Double], _ u: [Double]) -> [Double] {
        var e: [Double] = []
        for smp in 0..<s.n {
            let img = smp * s.c * s.hw
            for p in s.normalised {
                var q = [Double](repeating: 0, count: s.k * p * p)
                for (pi, patch) in patches(s, p).enumerated() {
                    var sigma = [Double](repeating: 0, count: s.c * s.c)
                    for r in patch.rows {
                        for x in patch.cols {
                            let pos = r * s.w + x
                            for a in 0..<s.c {
                                let ya = y[img + a * s.hw + pos]
                                for b in 0..<s.c { sigma[a * s.c + b] += ya * y[img + b * s.hw + pos] }
                            }
                        }
                    }
                    let area = Double(patch.rows.count * patch.cols.count)
                    for kk in 0..<s.k {
                        var v = 0.0
                        for a in 0..<s.c {
                            for b in 0..<s.c { v += u[kk * s.c + a] * sigma[a * s.c + b] * u[kk * s.c + b] }
                        }
                        q[kk * p * p + pi] = v / area
                    }
                }
                e += q
            }
        }
        return e
    }

    private func refProjections(_ s: Shape, _ y: [Double], _ u: [Double]) -> [Double] {
        var z = [Double](repeating: 0, count: s.n * s.k * s.hw)
        for smp in 0..<s.n {
            for kk in 0..<s.k {
                for a in 0..<s.c {
                    for pos in 0..<s.hw { z[(smp * s.k + kk) * s.hw + pos] += u[kk * s.c + a] * y[(smp * s.c + a) * s.hw + pos] }
                }
            }
        }
        return z
    }

    /// dy = U' (2 z * sum over the patches containing the position of de / area).
    private func refBackward(_ s: Shape, _ y: [Double], _ u: [Double], _ de: [Double]) -> [Double] {
        let z = refProjections(s, y, u)
        var dz = [Double](repeating: 0, count: z.count)
        for smp in 0..<s.n {
            var off = smp * s.dim
            for p in s.normalised {
                for kk in 0..<s.k {
                    for (pi, patch) in patches(s, p).enumerated() {
                        let g = de[off + kk * p * p + pi] / Double(patch.rows.count * patch.cols.count)
                        for r in patch.rows {
                            for x in patch.cols {
                                let i = (smp * s.k + kk) * s.hw + r * s.w + x
                                dz[i] += 2 * z[i] * g
                            }
                        }
                    }
                }
                off += s.k * p * p
            }
        }
        var dy = [Double](repeating: 0, count: y.count)
        for smp in 0..<s.n {
            for kk in 0..<s.k {
                for a in 0..<s.c {
                    for pos in 0..<s.hw { dy[(smp * s.c + a) * s.hw + pos] += u[kk * s.c + a] * dz[(smp * s.k + kk) * s.hw + pos] }
                }
            }
        }
        return dy
    }

    // MARK: kernel calls

    private func directions(_ s: Shape, seed: UInt64) -> [Float] {
        var r = ff_rng()
        ff_rng_seed(&r, seed)
        var u = [Float](repeating: .nan, count: s.k * s.c)
        ff_covgoodness_directions(&r, Int32(s.k), Int32(s.c), &u)
        return u
    }

    /// [energies, projections] (projections only when `keepZ`).
    private func forward(_ ctx: OpaquePointer, _ s: Shape, _ u: [Float], _ y: [Float], keepZ: Bool) -> [[Float]] {
        var d = s.desc
        var e = [Float](repeating: .nan, count: s.n * s.dim)
        guard keepZ else {
            ff_covgoodness_forward(ctx, &d, u, y, &e, nil)
            return [e, []]
        }
        var z = [Float](repeating: .nan, count: s.n * s.k * s.hw)
        ff_covgoodness_forward(ctx, &d, u, y, &e, &z)
        return [e, z]
    }

    private func backward(_ ctx: OpaquePointer, _ s: Shape, _ u: [Float], y: [Float]?, z: [Float]?, _ de: [Float],
                          into start: [Float]? = nil) -> [Float] {
        var d = s.desc
        var dy = start ?? [Float](repeating: .nan, count: s.n * s.c * s.hw)
        switch (y, z) {
        case let (y?, z?): ff_covgoodness_backward(ctx, &d, u, y, z, de, &dy, start == nil ? 0 : 1)
        case let (y?, nil): ff_covgoodness_backward(ctx, &d, u, y, nil, de, &dy, start == nil ? 0 : 1)
        case let (nil, z?): ff_covgoodness_backward(ctx, &d, u, nil, z, de, &dy, start == nil ? 0 : 1)
        default: XCTFail("backward needs y or z")
        }
        return dy
    }

    private func inputs(_ s: Shape, seed: UInt64) -> (u: [Float], y: [Float]) {
        (directions(s, seed: seed), randomFloats(s.n * s.c * s.hw, seed: seed + 1, lo: 0, hi: 2))
    }

    // MARK: tests

    func testLevelNormalisation() {
        for s in shapes {
            var d = s.desc
            var out = [Int32](repeating: -1, count: Int(FF_COVG_MAX_LEVELS))
            let m = Int(ff_covgoodness_levels(&d, &out))
            XCTAssertEqual(out.prefix(m).map(Int.init), s.normalised, "\(s)")
            XCTAssertEqual(Int(ff_covgoodness_dim(&d)), s.dim, "\(s)")
            XCTAssertNil(ff_covgoodness_check(&d), "\(s)")
        }
        // Written out by hand: 3x5 clips 4 to 3; 2x2 clips 4 onto 2; 1xN leaves only 1.
        let byHand: [(Shape, [Int])] = [
            (Shape(n: 1, c: 1, h: 3, w: 5, k: 1, levels: [1, 2, 4]), [1, 2, 3]),
            (Shape(n: 1, c: 1, h: 2, w: 2, k: 1, levels: [1, 2, 4]), [1, 2]),
            (Shape(n: 1, c: 1, h: 1, w: 9, k: 1, levels: [4, 2, 1]), [1]),
            (Shape(n: 1, c: 1, h: 8, w: 8, k: 1, levels: [4, 4, 2]), [4, 2]),
        ]
        for (s, expected) in byHand { XCTAssertEqual(s.normalised, expected, "\(s)") }
        for bad in [Shape(n: 1, c: 2, h: 4, w: 4, k: 1, levels: [1, 0]), Shape(n: 1, c: 2, h: 4, w: 4, k: 1, levels: []),
                    Shape(n: 1, c: 2, h: 4, w: 4, k: 0, levels: [1]),
                    Shape(n: 1, c: 2, h: 4, w: 4, k: 1, levels: Array(repeating: 1, count: 17))] {
            var d = bad.desc
            XCTAssertNotNil(ff_covgoodness_check(&d), "\(bad) must be rejected")
            XCTAssertEqual(ff_covgoodness_dim(&d), 0, "\(bad)")
        }
    }

    func testDirectionsAreUnitAndSeeded() {
        let s = Shape(n: 1, c: 37, h: 1, w: 1, k: 9, levels: [1])
        let u = directions(s, seed: 42)
        for kk in 0..<s.k {
            let norm = u[kk * s.c..<(kk + 1) * s.c].reduce(0.0) { $0 + Double($1) * Double($1) }
            XCTAssertEqual(norm, 1, accuracy: 1e-6, "row \(kk)")
        }
        XCTAssertEqual(u, directions(s, seed: 42))
        XCTAssertNotEqual(u, directions(s, seed: 43))
        // The rows are the normalised stream of N(0, 1) draws, row after row.
        var r = ff_rng()
        ff_rng_seed(&r, 42)
        var raw = [Float](repeating: 0, count: s.c)
        ff_rng_fill_normal(&r, s.c, &raw, 0, 1)
        let n0 = raw.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        assertClose(Array(u[0..<s.c]), raw.map { Double($0) / n0 }, rtol: 1e-6, atol: 1e-7, "first row")
    }

    func testForwardMatchesExplicitCovariance() {
        for (si, s) in shapes.enumerated() {
            let (u, y) = inputs(s, seed: UInt64(10 * si + 1))
            let out = everyPath("covgoodness \(s)") { forward($0, s, u, y, keepZ: false) }
            assertClose(out[0], refForward(s, y.doubles, u.doubles), rtol: 1e-4, atol: 1e-6, "energies \(s)")
            // Saving the projections changes only where Z lives, not a single bit of e.
            let kept = everyPath("covgoodness with z \(s)") { forward($0, s, u, y, keepZ: true) }
            XCTAssertEqual(kept[0].map(\.bitPattern), out[0].map(\.bitPattern), "energies with z kept \(s)")
            assertClose(kept[1], refProjections(s, y.doubles, u.doubles), rtol: 1e-4, atol: 1e-5, "projections \(s)")
        }
    }

    /// One direction, one channel: z = u * y with u = +-1, so e is ASGE's goodness of y.
    func testSingleChannelIsSpatialGoodness() {
        let s = Shape(n: 2, c: 1, h: 7, w: 5, k: 1, levels: [2, 3])
        let (u, y) = inputs(s, seed: 5)
        XCTAssertEqual(abs(u[0]), 1)
        let e = everyPath("c1") { forward($0, s, u, y, keepZ: false) }[0]
        let ctx = ff_ctx_create(1)!
        defer { ff_ctx_destroy(ctx) }
        var expected: [Float] = []
        for smp in 0..<s.n {
            for p in s.normalised {
                var g = [Float](repeating: 0, count: p * p)
                Array(y[smp * s.hw..<(smp + 1) * s.hw]).withUnsafeBufferPointer {
                    ff_goodness_forward(ctx, 1, 1, Int32(s.h), Int32(s.w), Int32(p), $0.baseAddress, &g)
                }
                expected += g
            }
        }
        assertClose(e, expected, rtol: 2e-6, atol: 1e-7, "single channel")
    }

    func testBackwardMatchesReference() {
        for (si, s) in shapes.enumerated() {
            let (u, y) = inputs(s, seed: UInt64(10 * si + 3))
            let de = randomFloats(s.n * s.dim, seed: UInt64(si + 100))
            let z = everyPath("covgoodness z \(s)") { forward($0, s, u, y, keepZ: true) }[1]
            let dy = everyPath("covgoodness backward \(s)") { backward($0, s, u, y: y, z: nil, de) }
            let ref = refBackward(s, y.doubles, u.doubles, de.doubles)
            let scale = ref.reduce(0) { max($0, abs($1)) }
            assertClose(dy, ref, rtol: 1e-4, atol: 1e-5 * scale, "backward \(s)")
            // Saved projections (with or without y) give the same gradient.
            let dyz = everyPath("covgoodness backward with z \(s)") { backward($0, s, u, y: nil, z: z, de) }
            assertClose(dyz, dy, rtol: 1e-5, atol: 1e-6 * scale, "backward from saved z \(s)")
            let dyzy = everyPath("covgoodness backward with y and z \(s)") { backward($0, s, u, y: y, z: z, de) }
            XCTAssertEqual(dyzy.map(\.bitPattern), dyz.map(\.bitPattern), "z given: y is not read \(s)")
        }
    }

    func testGradients() {
        for s in [Shape(n: 1, c: 5, h: 7, w: 5, k: 3, levels: [1, 2, 4]),
                  Shape(n: 2, c: 3, h: 5, w: 6, k: 4, levels: [3, 1], floor: true),
                  Shape(n: 1, c: 2, h: 3, w: 4, k: 2, levels: [1, 2, 4])] {
            let (u, y0) = inputs(s, seed: 77)
            let y = y0.map { $0 - 0.5 } // signs of both kinds
            let r = randomFloats(s.n * s.dim, seed: 78)
            let ctx = ff_ctx_create(3)!
            defer { ff_ctx_destroy(ctx) }
            let dy = backward(ctx, s, u, y: y, z: nil, r)
            let ud = u.doubles
            assertGradient(dy, at: y.doubles, "covgoodness \(s)") { ys in
                zip(refForward(s, ys, ud), r).reduce(0) { $0 + $1.0 * Double($1.1) }
            }
        }
    }

    /// accumulate = 1 adds onto what is there, e.g. the ASGE goodness gradient of the same
    /// map, without a second buffer; accumulate = 0 overwrites every element (NaNs included).
    func testAccumulate() {
        let s = Shape(n: 3, c: 6, h: 7, w: 9, k: 5, levels: [1, 2, 4])
        let (u, y) = inputs(s, seed: 9)
        let de = randomFloats(s.n * s.dim, seed: 10)
        let p = 2
        let dg = randomFloats(s.n * s.c * p * p, seed: 11)
        let alone = everyPath("overwrite") { backward($0, s, u, y: y, z: nil, de) }
        XCTAssertFalse(alone.contains { $0.isNaN }, "overwrite must write every element")
        let both = everyPath("accumulate onto goodness") { ctx -> [Float] in
            var g = [Float](repeating: .nan, count: y.count)
            ff_goodness_backward(ctx, Int32(s.n), Int32(s.c), Int32(s.h), Int32(s.w), Int32(p), y, dg, &g)
            return backward(ctx, s, u, y: y, z: nil, de, into: g)
        }
        let ctx = ff_ctx_create(2)!
        defer { ff_ctx_destroy(ctx) }
        var g = [Float](repeating: 0, count: y.count)
        ff_goodness_backward(ctx, Int32(s.n), Int32(s.c), Int32(s.h), Int32(s.w), Int32(p), y, dg, &g)
        let sum = zip(g, alone).map { Double($0) + Double($1) }
        let scale = sum.reduce(0) { max($0, abs($1)) }
        assertClose(both, sum, rtol: 1e-5, atol: 1e-6 * scale, "goodness + covariance gradient")
        XCTAssertNotEqual(both, alone)
    }

    func testExplicitBaselineMatches() {
        for s in [Shape(n: 3, c: 17, h: 6, w: 7, k: 5, levels: [1]), Shape(n: 1, c: 40, h: 3, w: 3, k: 19, levels: [1])] {
            let (u, y) = inputs(s, seed: 31)
            let e = everyPath("explicit \(s)") { ctx -> [Float] in
                var e = [Float](repeating: .nan, count: s.n * s.k)
                ff_covgoodness_explicit(ctx, Int32(s.n), Int32(s.c), s.hw, Int32(s.k), u, y, &e)
                return e
            }
            assertClose(e, refForward(s, y.doubles, u.doubles), rtol: 1e-4, atol: 1e-6, "explicit \(s)")
        }
    }

    func testWorkspaceBound() {
        for s in shapes + [Shape(n: 5, c: 9, h: 70, w: 61, k: 7, levels: [1, 2, 4])] {
            let (u, y) = inputs(s, seed: 3)
            let de = randomFloats(s.n * s.dim, seed: 4)
            for threads: Int32 in [1, 3] {
                let ctx = ff_ctx_create(threads)!
                defer { ff_ctx_destroy(ctx) }
                var d = s.desc
                let bound = ff_covgoodness_workspace_bytes(ctx, &d)
                _ = forward(ctx, s, u, y, keepZ: false)
                _ = backward(ctx, s, u, y: y, z: nil, de)
                XCTAssertLessThanOrEqual(ff_ctx_scratch_bytes(ctx), bound, "\(s) t\(threads)")
                XCTAssertGreaterThan(bound, 0)
            }
        }
    }
}
