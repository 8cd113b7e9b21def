import FFCore
import XCTest

/// Spatial goodness (mean of y^2 per patch, adaptive bins) forward/backward, and the
/// partition factor of ASGE eq. 3 with the check against the paper's Table 1 (papers/asge/README.md).
final class GoodnessTests: XCTestCase {
    private struct Shape: CustomStringConvertible {
        var n, c, h, w, p: Int
        /// FF_GOODNESS_FLOOR instead of adaptive bins.
        var floor = false
        var description: String { "n\(n) c\(c) \(h)x\(w) p\(p)\(floor ? " floor" : "")" }
        var bins: Int32 { Int32(floor ? FF_GOODNESS_FLOOR : FF_GOODNESS_ADAPTIVE) }
    }

    /// Equal patches, adaptive bins that overlap (7 rows into 2 or 3), p == h, p == 1,
    /// rectangular maps, batch 1, and one case split over threads.
    private let shapes = [
        Shape(n: 2, c: 3, h: 8, w: 8, p: 2), Shape(n: 1, c: 2, h: 7, w: 5, p: 2),
        Shape(n: 2, c: 2, h: 7, w: 5, p: 3), Shape(n: 1, c: 1, h: 5, w: 5, p: 5),
        Shape(n: 3, c: 4, h: 32, w: 32, p: 4), Shape(n: 1, c: 3, h: 6, w: 9, p: 1),
        Shape(n: 2, c: 2, h: 10, w: 13, p: 4), Shape(n: 8, c: 16, h: 16, w: 16, p: 3),
    ]

    private func refForward(_ s: Shape, _ y: [Double]) -> [Double] {
        var g: [Double] = []
        for m in 0..<(s.n * s.c) {
            for i in 0..<s.p {
                for j in 0..<s.p {
                    var sum = 0.0
                    let rows = goodnessBin(i, s.h, s.p, floor: s.floor), cols = goodnessBin(j, s.w, s.p, floor: s.floor)
                    for r in rows { for x in cols { sum += pow(y[(m * s.h + r) * s.w + x], 2) } }
                    g.append(sum / Double(rows.count * cols.count))
                }
            }
        }
        return g
    }

    /// dy[pixel] = sum over patches containing it of dg * 2 * y / area.
    private func refBackward(_ s: Shape, _ y: [Double], _ dg: [Double]) -> [Double] {
        var dy = [Double](repeating: 0, count: y.count)
        for m in 0..<(s.n * s.c) {
            for i in 0..<s.p {
                for j in 0..<s.p {
                    let rows = goodnessBin(i, s.h, s.p, floor: s.floor), cols = goodnessBin(j, s.w, s.p, floor: s.floor)
                    let area = Double(rows.count * cols.count)
                    for r in rows {
                        for x in cols {
                            let k = (m * s.h + r) * s.w + x
                            dy[k] += dg[(m * s.p + i) * s.p + j] * 2 * y[k] / area
                        }
                    }
                }
            }
        }
        return dy
    }

    private func forward(_ ctx: OpaquePointer, _ s: Shape, _ y: [Float]) -> [Float] {
        var g = [Float](repeating: .nan, count: s.n * s.c * s.p * s.p)
        ff_goodness_forward_bins(ctx, Int32(s.n), Int32(s.c), Int32(s.h), Int32(s.w), Int32(s.p), s.bins, y, &g)
        return g
    }

    private func backward(_ ctx: OpaquePointer, _ s: Shape, _ y: [Float], _ dg: [Float]) -> [Float] {
        var dy = [Float](repeating: .nan, count: y.count)
        ff_goodness_backward_bins(ctx, Int32(s.n), Int32(s.c), Int32(s.h), Int32(s.w), Int32(s.p), s.bins, y, dg, &dy)
        return dy
    }

    /// A hand-computed case: a 3x2 map in 2x2 patches shares the middle row.
    /// Rows [0,2) and [1,3), columns [0,1) and [1,2).
    func testAdaptiveBinsByHand() {
        let s = Shape(n: 1, c: 1, h: 3, w: 2, p: 2)
        let y: [Float] = [1, 2, 3, 4, 5, 6]
        let g = everyPath("by hand") { forward($0, s, y) }
        XCTAssertEqual(g, [5, 10, 17, 26]) // (1+9)/2, (4+16)/2, (9+25)/2, (16+36)/2
        let dy = everyPath("by hand backward") { backward($0, s, y, [1, 1, 1, 1]) }
        // Each patch has area 2, so each containing patch adds y; the middle row is in two.
        XCTAssertEqual(dy, [1, 2, 6, 8, 5, 6])
    }

    func testForwardMatchesReference() {
        for s in shapes {
            let y = randomFloats(s.n * s.c * s.h * s.w, seed: UInt64(s.h * 100 + s.p), lo: 0, hi: 2)
            let g = everyPath("goodness \(s)") { forward($0, s, y) }
            assertClose(g, refForward(s, y.doubles), rtol: 1e-5, atol: 1e-7, "goodness \(s)")
        }
    }

    /// With p = 1 goodness is the mean square of the whole map.
    func testSinglePatchIsMeanSquare() {
        let s = Shape(n: 2, c: 3, h: 7, w: 9, p: 1)
        let y = randomFloats(s.n * s.c * s.h * s.w, seed: 3)
        let g = everyPath("p1") { forward($0, s, y) }
        let ref = (0..<6).map { m in y[m * 63..<(m + 1) * 63].reduce(0.0) { $0 + Double($1) * Double($1) } / 63 }
        assertClose(g, ref, rtol: 1e-5, atol: 1e-7, "p = 1")
    }

    func testBackwardMatchesReference() {
        for s in shapes {
            let y = randomFloats(s.n * s.c * s.h * s.w, seed: UInt64(s.h * 100 + s.p) + 1, lo: 0, hi: 2)
            let dg = randomFloats(s.n * s.c * s.p * s.p, seed: UInt64(s.w + s.p))
            let dy = everyPath("goodness backward \(s)") { backward($0, s, y, dg) }
            assertClose(dy, refBackward(s, y.doubles, dg.doubles), rtol: 1e-5, atol: 1e-7, "goodness backward \(s)")
        }
    }

    func testGradients() {
        for s in [Shape(n: 1, c: 2, h: 7, w: 5, p: 2), Shape(n: 2, c: 1, h: 6, w: 6, p: 3),
                  Shape(n: 1, c: 1, h: 5, w: 7, p: 3)] {
            let y = randomFloats(s.n * s.c * s.h * s.w, seed: 60, lo: -1, hi: 2)
            let r = randomFloats(s.n * s.c * s.p * s.p, seed: 61)
            let ctx = ff_ctx_create(3)!
            defer { ff_ctx_destroy(ctx) }
            let dy = backward(ctx, s, y, r)
            assertGradient(dy, at: y.doubles, "goodness \(s)") { ys in
                zip(refForward(s, ys), r).reduce(0) { $0 + $1.0 * Double($1.1) }
            }
        }
    }

    /// Floor bins: equal floor(h/p) patches; rows and columns past them get no goodness and
    /// a zero gradient. When p divides the map they equal the adaptive bins.
    func testFloorBins() {
        for var s in [Shape(n: 2, c: 3, h: 7, w: 5, p: 2), Shape(n: 1, c: 2, h: 10, w: 13, p: 4),
                      Shape(n: 2, c: 2, h: 7, w: 7, p: 3)] {
            s.floor = true
            let y = randomFloats(s.n * s.c * s.h * s.w, seed: UInt64(s.h + s.p), lo: 0, hi: 2)
            let dg = randomFloats(s.n * s.c * s.p * s.p, seed: UInt64(s.w))
            let g = everyPath("floor goodness \(s)") { forward($0, s, y) }
            assertClose(g, refForward(s, y.doubles), rtol: 1e-5, atol: 1e-7, "floor goodness \(s)")
            let dy = everyPath("floor goodness backward \(s)") { backward($0, s, y, dg) }
            assertClose(dy, refBackward(s, y.doubles, dg.doubles), rtol: 1e-5, atol: 1e-7, "floor backward \(s)")
            let ctx = ff_ctx_create(2)!
            defer { ff_ctx_destroy(ctx) }
            assertGradient(dy, at: y.doubles, "floor goodness \(s)") { ys in
                zip(refForward(s, ys), dg).reduce(0) { $0 + $1.0 * Double($1.1) }
            }
        }
        var a = Shape(n: 2, c: 2, h: 8, w: 12, p: 4)
        let y = randomFloats(a.n * a.c * a.h * a.w, seed: 5)
        let adaptive = everyPath("divisible adaptive") { forward($0, a, y) }
        a.floor = true
        XCTAssertEqual(everyPath("divisible floor") { forward($0, a, y) }, adaptive)
    }

    // MARK: partition factor

    /// The paper's Table 1 check: VGG8 channels with C_L = 512 at a spatial size that does
    /// not clip.
    func testPartitionTable1() {
        let expected: [(Double, [Int: Int])] = [
            (0.5, [128: 2, 256: 1, 512: 1]),
            (1.0, [128: 4, 256: 2, 512: 1]),
            (1.5, [128: 6, 256: 3, 512: 1]),
            (2.0, [128: 8, 256: 4, 512: 2]),
        ]
        for (alpha, table) in expected {
            for c in [128, 256, 256, 512, 512, 512, 512] {
                XCTAssertEqual(Int(ff_goodness_partition(alpha, 512, Int32(c), 32, 32)), table[c]!,
                               "alpha \(alpha), C \(c)")
            }
        }
    }

    func testPartitionClipping() {
        XCTAssertEqual(ff_goodness_partition(2, 512, 128, 4, 8), 4)   // clipped to h
        XCTAssertEqual(ff_goodness_partition(2, 512, 128, 16, 2), 2)  // clipped to w
        XCTAssertEqual(ff_goodness_partition(2, 512, 128, 1, 1), 1)
        XCTAssertEqual(ff_goodness_partition(0.1, 512, 512, 32, 32), 1) // floor gives 0 -> 1
        XCTAssertEqual(ff_goodness_partition(0, 512, 64, 32, 32), 1)
        XCTAssertEqual(ff_goodness_partition(1, 512, 96, 32, 32), 5)    // floor(5.33)
        XCTAssertEqual(ff_goodness_partition(1e12, 512, 1, 224, 200), 200) // no integer overflow
    }
}
