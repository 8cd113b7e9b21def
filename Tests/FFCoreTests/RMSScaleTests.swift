import FFCore
import XCTest

/// RMS scaling (the ASGE authors' normalisation) and inverted dropout against double
/// references and finite differences.
final class RMSScaleTests: XCTestCase {
    private func reference(_ x: [Double], n: Int, d: Int, eps: Double) -> [Double] {
        var y: [Double] = []
        for i in 0..<n {
            let row = x[i * d..<(i + 1) * d]
            let r = (row.reduce(0) { $0 + $1 * $1 } / Double(d)).squareRoot() + eps
            y += row.map { $0 / r }
        }
        return y
    }

    func testForwardMatchesReferenceOnEveryPath() {
        for (n, d) in [(1, 1), (3, 37), (2, 1024), (5, 4096)] {
            for eps: Float in [1e-5, 1.9287498e-22] {
                let x = randomFloats(n * d, seed: UInt64(n + d), lo: -2, hi: 3)
                let y = everyPath("rmsscale \(n)x\(d)") { ctx -> [Float] in
                    var y = [Float](repeating: .nan, count: n * d), r = [Float](repeating: .nan, count: n)
                    ff_rmsscale_forward(ctx, Int32(n), Int32(d), eps, x, &y, &r)
                    return y + r
                }
                assertClose(Array(y.prefix(n * d)), reference(x.doubles, n: n, d: d, eps: Double(eps)), rtol: 1e-5, atol: 1e-6,
                            "rmsscale \(n)x\(d) eps \(eps)")
            }
        }
    }

    func testAllZeroRowStaysZero() {
        let ctx = ff_ctx_create(1)!
        defer { ff_ctx_destroy(ctx) }
        let x = [Float](repeating: 0, count: 6)
        var y = [Float](repeating: .nan, count: 6), r: [Float] = [.nan], dx = y
        ff_rmsscale_forward(ctx, 1, 6, 1.9287498e-22, x, &y, &r)
        XCTAssertEqual(y, [Float](repeating: 0, count: 6))
        ff_rmsscale_backward(ctx, 1, 6, 1.9287498e-22, x, r, [1, 2, 3, 4, 5, 6], &dx)
        XCTAssert(dx.allSatisfy(\.isFinite), "\(dx)")
    }

    func testBackwardFiniteDifferences() {
        for (n, d, eps) in [(2, 5, 1e-5), (3, 64, 1e-3), (1, 300, 1.9287498e-22)] as [(Int, Int, Double)] {
            let x = randomFloats(n * d, seed: UInt64(d), lo: -1.5, hi: 2)
            let dy = randomFloats(n * d, seed: UInt64(d + 1))
            let dx = everyPath("rmsscale backward \(n)x\(d)") { ctx -> [Float] in
                var y = [Float](repeating: 0, count: n * d), r = [Float](repeating: 0, count: n)
                ff_rmsscale_forward(ctx, Int32(n), Int32(d), Float(eps), x, &y, &r)
                var dx = [Float](repeating: .nan, count: n * d)
                ff_rmsscale_backward(ctx, Int32(n), Int32(d), Float(eps), x, r, dy, &dx)
                return dx
            }
            assertGradient(dx, at: x.doubles, "rmsscale \(n)x\(d)") { xx in
                zip(self.reference(xx, n: n, d: d, eps: eps), dy).reduce(0) { $0 + $1.0 * Double($1.1) }
            }
        }
    }

    func testDropoutKeepsAndScales() {
        let n = 10_000, p: Float = 0.1
        let u = randomFloats(n, seed: 3, lo: 0, hi: 1), x = randomFloats(n, seed: 4)
        var y = [Float](repeating: .nan, count: n)
        ff_dropout_apply(n, p, u, x, &y)
        var kept = 0
        for i in 0..<n {
            if u[i] >= p {
                kept += 1
                XCTAssertEqual(y[i], x[i] / (1 - p), accuracy: 1e-6 * max(1, abs(x[i])))
            } else {
                XCTAssertEqual(y[i], 0)
            }
        }
        XCTAssertEqual(Double(kept) / Double(n), 0.9, accuracy: 0.02)
        // The backward pass is the same map: its gradient equals the forward's Jacobian.
        var same = x
        ff_dropout_apply(n, p, u, same, &same)
        XCTAssertEqual(same, y)
        var id = [Float](repeating: .nan, count: n)
        ff_dropout_apply(n, 0, u, x, &id)
        XCTAssertEqual(id, x)
    }
}
