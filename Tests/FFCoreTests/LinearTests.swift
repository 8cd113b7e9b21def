import FFCore
import XCTest

/// Linear layer kernels against a double-precision reference and finite differences.
final class LinearTests: XCTestCase {
    /// (n, in, out): tiny, odd, and large enough for ff_sgemm to split over threads.
    static let shapes: [(Int, Int, Int)] = [(1, 1, 1), (5, 7, 3), (33, 65, 17), (128, 300, 10), (64, 256, 300), (3, 1, 9)]

    static func refForward(_ n: Int, _ inF: Int, _ outF: Int, _ x: [Double], _ w: [Double], _ b: [Double]?) -> [Double] {
        var y = [Double](repeating: 0, count: n * outF)
        for i in 0..<n {
            for o in 0..<outF {
                var acc = b?[o] ?? 0
                for k in 0..<inF { acc += x[i * inF + k] * w[o * inF + k] }
                y[i * outF + o] = acc
            }
        }
        return y
    }

    static func refBackward(_ n: Int, _ inF: Int, _ outF: Int, _ x: [Double], _ w: [Double], _ dy: [Double])
        -> (dx: [Double], dw: [Double], db: [Double]) {
        var dx = [Double](repeating: 0, count: n * inF)
        var dw = [Double](repeating: 0, count: outF * inF)
        var db = [Double](repeating: 0, count: outF)
        for i in 0..<n {
            for o in 0..<outF {
                let g = dy[i * outF + o]
                db[o] += g
                for k in 0..<inF {
                    dx[i * inF + k] += g * w[o * inF + k]
                    dw[o * inF + k] += g * x[i * inF + k]
                }
            }
        }
        return (dx, dw, db)
    }

    static func atol(_ terms: Int) -> Double { 2e-5 * Double(max(terms, 1)).squareRoot() + 1e-6 * Double(terms) }

    func testAgainstReference() {
        for (si, (n, inF, outF)) in Self.shapes.enumerated() {
            let seed = UInt64(300 + si * 10)
            let x = randomFloats(n * inF, seed: seed)
            let w = randomFloats(outF * inF, seed: seed + 1)
            let b = randomFloats(outF, seed: seed + 2)
            let dy = randomFloats(n * outF, seed: seed + 3)
            let dwInit = randomFloats(outF * inF, seed: seed + 4)
            let dbInit = randomFloats(outF, seed: seed + 5)
            let yRef = Self.refForward(n, inF, outF, x.doubles, w.doubles, b.doubles)
            let yRefNoBias = Self.refForward(n, inF, outF, x.doubles, w.doubles, nil)
            let g = Self.refBackward(n, inF, outF, x.doubles, w.doubles, dy.doubles)
            let tag0 = "n\(n) \(inF)->\(outF)"
            for threads: Int32 in [1, 3] {
                forEachSIMDLevel(threads: threads) { ctx, simd in
                    let tag = "\(tag0) t\(threads) \(simd)"
                    var y = [Float](repeating: .nan, count: n * outF)
                    ff_linear_forward(ctx, Int32(n), Int32(inF), Int32(outF), x, w, b, &y)
                    assertClose(y, yRef, atol: Self.atol(inF), "\(tag) y")
                    ff_linear_forward(ctx, Int32(n), Int32(inF), Int32(outF), x, w, nil, &y)
                    assertClose(y, yRefNoBias, atol: Self.atol(inF), "\(tag) y nobias")

                    var dx = [Float](repeating: .nan, count: n * inF)
                    var dw = dwInit, db = dbInit
                    ff_linear_backward(ctx, Int32(n), Int32(inF), Int32(outF), x, w, dy, &dx, &dw, &db, 0)
                    assertClose(dx, g.dx, atol: Self.atol(outF), "\(tag) dx")
                    assertClose(dw, g.dw, atol: Self.atol(n), "\(tag) dw")
                    assertClose(db, g.db, atol: Self.atol(n), "\(tag) db")

                    dw = dwInit
                    db = dbInit
                    ff_linear_backward(ctx, Int32(n), Int32(inF), Int32(outF), x, w, dy, nil, &dw, &db, 1)
                    assertClose(dw, zip(g.dw, dwInit).map { $0 + Double($1) }, atol: Self.atol(n), "\(tag) dw accumulate")
                    assertClose(db, zip(g.db, dbInit).map { $0 + Double($1) }, atol: Self.atol(n), "\(tag) db accumulate")
                }
            }
        }
    }

    /// Each optional output may be NULL; the others are still right and untouched ones stay put.
    func testOptionalOutputs() {
        let (n, inF, outF) = (6, 11, 5)
        let x = randomFloats(n * inF, seed: 1), w = randomFloats(outF * inF, seed: 2)
        let dy = randomFloats(n * outF, seed: 3)
        let g = Self.refBackward(n, inF, outF, x.doubles, w.doubles, dy.doubles)
        let ctx = ff_ctx_create(2)!
        defer { ff_ctx_destroy(ctx) }
        var dx = [Float](repeating: .nan, count: n * inF)
        ff_linear_backward(ctx, Int32(n), Int32(inF), Int32(outF), x, w, dy, &dx, nil, nil, 0)
        assertClose(dx, g.dx, "dx only")
        var dw = [Float](repeating: .nan, count: outF * inF)
        ff_linear_backward(ctx, Int32(n), Int32(inF), Int32(outF), x, w, dy, nil, &dw, nil, 0)
        assertClose(dw, g.dw, "dw only")
        var db = [Float](repeating: .nan, count: outF)
        ff_linear_backward(ctx, Int32(n), Int32(inF), Int32(outF), x, w, dy, nil, nil, &db, 0)
        assertClose(db, g.db, "db only")
        ff_linear_backward(ctx, Int32(n), Int32(inF), Int32(outF), x, w, dy, nil, nil, nil, 0)
    }

    func testFiniteDifferenceGradients() {
        let ctx = ff_ctx_create(3)!
        defer { ff_ctx_destroy(ctx) }
        for (si, (n, inF, outF)) in [(4, 9, 5), (7, 3, 12), (16, 20, 70)].enumerated() {
            let seed = UInt64(700 + si * 10)
            let x = randomFloats(n * inF, seed: seed)
            let w = randomFloats(outF * inF, seed: seed + 1)
            let b = randomFloats(outF, seed: seed + 2)
            let r = randomFloats(n * outF, seed: seed + 3)
            let rd = r.doubles
            func loss(_ y: [Double]) -> Double { zip(y, rd).reduce(0) { $0 + $1.0 * $1.1 } }
            var dx = [Float](repeating: 0, count: n * inF)
            var dw = [Float](repeating: 0, count: outF * inF)
            var db = [Float](repeating: 0, count: outF)
            ff_linear_backward(ctx, Int32(n), Int32(inF), Int32(outF), x, w, r, &dx, &dw, &db, 0)
            let tag = "n\(n) \(inF)->\(outF)"
            assertGradient(dx, at: x.doubles, "\(tag) dx", limit: 24) {
                loss(Self.refForward(n, inF, outF, $0, w.doubles, b.doubles))
            }
            assertGradient(dw, at: w.doubles, "\(tag) dw", limit: 24) {
                loss(Self.refForward(n, inF, outF, x.doubles, $0, b.doubles))
            }
            assertGradient(db, at: b.doubles, "\(tag) db", limit: 24) {
                loss(Self.refForward(n, inF, outF, x.doubles, w.doubles, $0))
            }
        }
    }

    func testDeterminism() {
        let (n, inF, outF) = (96, 200, 260)
        let x = randomFloats(n * inF, seed: 11), w = randomFloats(outF * inF, seed: 12)
        let b = randomFloats(outF, seed: 13), dy = randomFloats(n * outF, seed: 14)
        let ctx = ff_ctx_create(3)!
        defer { ff_ctx_destroy(ctx) }
        func run() -> [[Float]] {
            var y = [Float](repeating: 0, count: n * outF)
            var dx = [Float](repeating: 0, count: n * inF)
            var dw = [Float](repeating: 0, count: outF * inF)
            var db = [Float](repeating: 0, count: outF)
            ff_linear_forward(ctx, Int32(n), Int32(inF), Int32(outF), x, w, b, &y)
            ff_linear_backward(ctx, Int32(n), Int32(inF), Int32(outF), x, w, dy, &dx, &dw, &db, 0)
            return [y, dx, dw, db]
        }
        XCTAssertEqual(run(), run())
    }
}
