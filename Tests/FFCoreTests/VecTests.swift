import FFCore
import XCTest

/// Vector helpers: fill, axpy, scale, sum of squares, first non-finite index.
final class VecTests: XCTestCase {
    /// Lengths: empty, shorter than a vector, a vector plus a tail, and long enough to be
    /// split over three threads.
    private let lengths = [0, 1, 7, 16, 37, 1003, 100_003]

    private func bits(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }

    func testFill() {
        for len in lengths {
            let out = everyPath("fill \(len)") { ctx -> [UInt32] in
                var x = randomFloats(len, seed: 1)
                ff_vec_fill(ctx, len, &x, -2.5)
                return bits(x)
            }
            XCTAssertEqual(out, [UInt32](repeating: Float(-2.5).bitPattern, count: len))
        }
    }

    func testAxpy() {
        for len in lengths {
            let x = randomFloats(len, seed: 2), y0 = randomFloats(len, seed: 3)
            let alpha: Float = -0.37
            let out = everyPath("axpy \(len)") { ctx -> [UInt32] in
                var y = y0
                ff_vec_axpy(ctx, len, alpha, x, &y)
                return bits(y)
            }
            let expected = (0..<len).map { Double(y0[$0]) + Double(alpha) * Double(x[$0]) }
            assertClose(out.map(Float.init(bitPattern:)), expected, rtol: 1e-6, atol: 1e-7, "axpy \(len)")
        }
    }

    func testScale() {
        for len in lengths {
            let x0 = randomFloats(len, seed: 4)
            let out = everyPath("scale \(len)") { ctx -> [UInt32] in
                var x = x0
                ff_vec_scale(ctx, len, 1.75, &x)
                return bits(x)
            }
            // One correctly rounded multiply per element, so Swift's Float product must match exactly.
            XCTAssertEqual(out.map(Float.init(bitPattern:)), x0.map { $0 * 1.75 }, "scale \(len)")
        }
    }

    func testSumOfSquares() {
        for len in lengths + [1 << 20 | 5] {
            let x = randomFloats(len, seed: 5, lo: -3, hi: 3)
            let s = everyPath("sumsq \(len)") { ctx in ff_vec_sumsq(ctx, len, x).bitPattern }
            let expected = x.reduce(0.0) { $0 + Double($1) * Double($1) }
            XCTAssertEqual(Double(bitPattern: s), expected, accuracy: 1e-12 * max(expected, 1), "sumsq \(len)")
        }
    }

    func testFindNonFinite() {
        let len = 100_003
        let base = randomFloats(len, seed: 6, lo: -1e30, hi: 1e30)
        let cases: [([Int], Float, Int)] = [
            ([], 0, -1),
            ([0], .nan, 0),
            ([len - 1], .infinity, len - 1),       // in the scalar tail
            ([90_000, 40_000], -.infinity, 40_000), // in different chunks: the first one wins
            ([17, 16], .nan, 16),                   // two in one vector
            ([70_001], .signalingNaN, 70_001),
        ]
        for (positions, value, expected) in cases {
            var x = base
            for p in positions { x[p] = value }
            let got = everyPath("nonfinite \(positions)") { ctx in ff_vec_find_nonfinite(ctx, len, x) }
            XCTAssertEqual(got, expected, "positions \(positions)")
        }
        // Extremes that are still finite are not reported.
        var x = base
        x[5] = .greatestFiniteMagnitude
        x[6] = -.greatestFiniteMagnitude
        x[7] = .leastNonzeroMagnitude
        XCTAssertEqual(everyPath("finite extremes") { ctx in ff_vec_find_nonfinite(ctx, len, x) }, -1)
        XCTAssertEqual(everyPath("empty") { ctx in ff_vec_find_nonfinite(ctx, 0, x) }, -1)
    }
}
