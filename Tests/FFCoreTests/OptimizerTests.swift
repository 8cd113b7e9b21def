import FFCore
import XCTest

/// AdamW and SGD against double-precision transcriptions of torch.optim.AdamW / SGD over
/// several steps, and the cosine schedule with warmup.
final class OptimizerTests: XCTestCase {
    private let lengths = [1, 13, 1003, 50_001]

    func testAdamWMatchesPyTorchFormula() {
        let lr: Float = 2e-3, b1: Float = 0.9, b2: Float = 0.999, eps: Float = 1e-8, wd: Float = 0.1
        let steps = 6
        for len in lengths {
            // Small parameters keep float rounding of p far below the size of the updates,
            // so the updates can be compared tightly.
            let p0 = randomFloats(len, seed: 1, lo: -0.05, hi: 0.05)
            let grads = (0..<steps).map { randomFloats(len, seed: 10 + UInt64($0), lo: -0.5, hi: 0.5) }
            let out = everyPath("adamw \(len)") { ctx in
                var p = p0
                var m = [Float](repeating: 0, count: len), v = m
                for t in 0..<steps {
                    ff_adamw_step(ctx, len, &p, grads[t], &m, &v, lr, b1, b2, eps, wd, t + 1)
                }
                return [p, m, v]
            }
            // Reference in double, in the order torch.optim.AdamW applies it.
            var p = p0.doubles
            var m = [Double](repeating: 0, count: len), v = m
            let (dlr, db1, db2, deps, dwd) = (Double(lr), Double(b1), Double(b2), Double(eps), Double(wd))
            for t in 1...steps {
                let g = grads[t - 1]
                let bc1 = 1 - pow(db1, Double(t)), bc2 = 1 - pow(db2, Double(t))
                for i in 0..<len {
                    let gi = Double(g[i])
                    p[i] *= 1 - dlr * dwd
                    m[i] = db1 * m[i] + (1 - db1) * gi
                    v[i] = db2 * v[i] + (1 - db2) * gi * gi
                    p[i] -= (dlr / bc1) * m[i] / (sqrt(v[i]) / sqrt(bc2) + deps)
                }
            }
            assertClose(out[0], p, rtol: 1e-5, atol: 1e-6, "adamw p \(len)")
            // The updates themselves, far smaller than p, must match to float precision too.
            assertClose(zip(out[0], p0).map { $0 - $1 }, zip(p, p0).map { $0 - Double($1) }, rtol: 1e-4, atol: 5e-8,
                        "adamw update \(len)")
            assertClose(out[1], m, rtol: 1e-5, atol: 1e-7, "adamw m \(len)")
            assertClose(out[2], v, rtol: 1e-5, atol: 1e-9, "adamw v \(len)")
        }
    }

    /// The first step of Adam moves every parameter by about lr (bias correction at work).
    func testAdamWFirstStepSize() {
        let ctx = ff_ctx_create(1)!
        defer { ff_ctx_destroy(ctx) }
        var p: [Float] = [0, 0, 0], m: [Float] = [0, 0, 0], v: [Float] = [0, 0, 0]
        ff_adamw_step(ctx, 3, &p, [0.3, -2, 1e-3], &m, &v, 0.01, 0.9, 0.999, 1e-8, 0, 1)
        assertClose(p, [-0.01, 0.01, -0.01 * 1e-3 / (1e-3 + 1e-8)], rtol: 1e-5, atol: 1e-9, "first step")
    }

    private struct SGDCase {
        let momentum: Float, dampening: Float, wd: Float, nesterov: Bool
    }

    func testSGDMatchesPyTorchFormula() {
        let cases = [
            SGDCase(momentum: 0, dampening: 0, wd: 0, nesterov: false),
            SGDCase(momentum: 0, dampening: 0, wd: 0.5, nesterov: false),
            SGDCase(momentum: 0.9, dampening: 0, wd: 0, nesterov: false),
            SGDCase(momentum: 0.9, dampening: 0.3, wd: 0.1, nesterov: false),
            SGDCase(momentum: 0.9, dampening: 0, wd: 0.1, nesterov: true),
        ]
        let lr: Float = 0.05, steps = 5
        for c in cases {
            for len in lengths {
                let p0 = randomFloats(len, seed: 2, lo: -0.05, hi: 0.05)
                let grads = (0..<steps).map { randomFloats(len, seed: 20 + UInt64($0)) }
                let what = "sgd mom \(c.momentum) damp \(c.dampening) wd \(c.wd) nesterov \(c.nesterov) len \(len)"
                let out = everyPath(what) { ctx in
                    var p = p0
                    var buf = [Float](repeating: .nan, count: len) // must be ignored on the first step
                    for t in 0..<steps {
                        if c.momentum == 0 {
                            ff_sgd_step(ctx, len, &p, grads[t], nil, lr, 0, c.dampening, c.wd, 0, t == 0 ? 1 : 0)
                        } else {
                            ff_sgd_step(ctx, len, &p, grads[t], &buf, lr, c.momentum, c.dampening, c.wd,
                                        c.nesterov ? 1 : 0, t == 0 ? 1 : 0)
                        }
                    }
                    return c.momentum == 0 ? [p] : [p, buf]
                }
                var p = p0.doubles
                var buf = [Double](repeating: 0, count: len)
                let (mom, damp, wd) = (Double(c.momentum), Double(c.dampening), Double(c.wd))
                for t in 0..<steps {
                    for i in 0..<len {
                        var d = Double(grads[t][i])
                        if wd != 0 { d += wd * p[i] }
                        if mom != 0 {
                            buf[i] = t == 0 ? d : mom * buf[i] + (1 - damp) * d
                            d = c.nesterov ? d + mom * buf[i] : buf[i]
                        }
                        p[i] -= Double(lr) * d
                    }
                }
                assertClose(out[0], p, rtol: 1e-5, atol: 1e-6, "\(what): p")
                assertClose(zip(out[0], p0).map { $0 - $1 }, zip(p, p0).map { $0 - Double($1) }, rtol: 1e-4,
                            atol: 5e-8, "\(what): update")
                if c.momentum != 0 { assertClose(out[1], buf, rtol: 1e-5, atol: 1e-6, "\(what): buf") }
            }
        }
    }

    func testCosineSchedule() {
        let base = 1e-3, low = 1e-5
        // No warmup: base at 0, halfway at the middle, min at the end.
        XCTAssertEqual(ff_cosine_lr(base, low, 0, 100, 0), base, accuracy: 1e-15)
        XCTAssertEqual(ff_cosine_lr(base, low, 50, 100, 0), (base + low) / 2, accuracy: 1e-15)
        XCTAssertEqual(ff_cosine_lr(base, low, 100, 100, 0), low, accuracy: 1e-15)
        XCTAssertEqual(ff_cosine_lr(base, low, 25, 100, 0),
                       low + (base - low) * (1 + cos(Double.pi / 4)) / 2, accuracy: 1e-15)
        // Linear warmup over 10 steps, then cosine over the remaining 90.
        XCTAssertEqual(ff_cosine_lr(base, low, 0, 100, 10), base / 10, accuracy: 1e-15)
        XCTAssertEqual(ff_cosine_lr(base, low, 4, 100, 10), base / 2, accuracy: 1e-15)
        XCTAssertEqual(ff_cosine_lr(base, low, 9, 100, 10), base, accuracy: 1e-15)
        XCTAssertEqual(ff_cosine_lr(base, low, 10, 100, 10), base, accuracy: 1e-15)
        XCTAssertEqual(ff_cosine_lr(base, low, 55, 100, 10), (base + low) / 2, accuracy: 1e-15)
        XCTAssertEqual(ff_cosine_lr(base, low, 100, 100, 10), low, accuracy: 1e-15)
        // The schedule decreases monotonically after warmup and never leaves [min, base].
        var prev = Double.infinity
        for s in 10..<100 {
            let lr = ff_cosine_lr(base, low, s, 100, 10)
            XCTAssertLessThanOrEqual(lr, prev)
            XCTAssert(lr >= low && lr <= base)
            prev = lr
        }
    }
}
