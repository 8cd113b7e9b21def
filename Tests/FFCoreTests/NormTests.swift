import FFCore
import XCTest

/// LayerNorm and BatchNorm (training, running statistics, eval, backward) against double
/// references and finite differences.
final class NormTests: XCTestCase {
    private let eps: Float = 1e-5

    // MARK: LayerNorm reference

    private struct LNRef {
        var y: [Double], mean: [Double], rstd: [Double]
    }

    private func lnForward(_ x: [Double], n: Int, d: Int, gamma: [Double]?, beta: [Double]?) -> LNRef {
        var r = LNRef(y: [], mean: [], rstd: [])
        for i in 0..<n {
            let row = x[i * d..<(i + 1) * d]
            let m = row.reduce(0, +) / Double(d)
            let v = row.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(d)
            let rs = 1 / sqrt(v + Double(eps))
            r.mean.append(m)
            r.rstd.append(rs)
            for (j, xv) in row.enumerated() { r.y.append((xv - m) * rs * (gamma?[j] ?? 1) + (beta?[j] ?? 0)) }
        }
        return r
    }

    /// Analytic LayerNorm backward in double (the textbook formula).
    private func lnBackward(_ x: [Double], _ dy: [Double], n: Int, d: Int, gamma: [Double]?)
        -> (dx: [Double], dgamma: [Double], dbeta: [Double]) {
        let f = lnForward(x, n: n, d: d, gamma: nil, beta: nil) // y = xhat
        var dx = [Double](repeating: 0, count: n * d)
        var dg = [Double](repeating: 0, count: d), db = dg
        for i in 0..<n {
            let g = (0..<d).map { dy[i * d + $0] * (gamma?[$0] ?? 1) }
            let xh = Array(f.y[i * d..<(i + 1) * d])
            let mg = g.reduce(0, +) / Double(d)
            let mgx = zip(g, xh).reduce(0) { $0 + $1.0 * $1.1 } / Double(d)
            for j in 0..<d {
                dx[i * d + j] = f.rstd[i] * (g[j] - mg - xh[j] * mgx)
                dg[j] += dy[i * d + j] * xh[j]
                db[j] += dy[i * d + j]
            }
        }
        return (dx, dg, db)
    }

    private let lnShapes = [(1, 1), (1, 7), (3, 37), (5, 300), (2, 1024), (64, 1000)]

    func testLayerNormForward() {
        for (n, d) in lnShapes {
            for affine in [true, false] {
                let x = randomFloats(n * d, seed: UInt64(n * d), lo: -2, hi: 3)
                let gamma = affine ? randomFloats(d, seed: 1, lo: 0.5, hi: 1.5) : nil
                let beta = affine ? randomFloats(d, seed: 2) : nil
                let what = "layernorm \(n)x\(d) affine \(affine)"
                let out = everyPath(what) { ctx in
                    var y = [Float](repeating: .nan, count: n * d)
                    var mean = [Float](repeating: .nan, count: n), rstd = mean
                    ff_layernorm_forward(ctx, Int32(n), Int32(d), eps, x, gamma, beta, &y, &mean, &rstd)
                    return [y, mean, rstd]
                }
                let ref = lnForward(x.doubles, n: n, d: d, gamma: gamma?.doubles, beta: beta?.doubles)
                // d == 1 normalises to exactly zero; otherwise y is O(1).
                assertClose(out[0], ref.y, rtol: 1e-5, atol: 2e-5, "\(what): y")
                assertClose(out[1], ref.mean, rtol: 1e-6, atol: 1e-7, "\(what): mean")
                assertClose(out[2], ref.rstd, rtol: 1e-5, atol: 0, "\(what): rstd")
            }
        }
    }

    func testLayerNormBackward() {
        for (n, d) in lnShapes {
            for affine in [true, false] {
                let x = randomFloats(n * d, seed: UInt64(n * d) + 3, lo: -2, hi: 3)
                let dy = randomFloats(n * d, seed: UInt64(n * d) + 4)
                let gamma = affine ? randomFloats(d, seed: 5, lo: 0.5, hi: 1.5) : nil
                let prior = randomFloats(d, seed: 6) // existing contents for accumulate
                let what = "layernorm backward \(n)x\(d) affine \(affine)"
                let out = everyPath(what) { ctx in
                    var y = [Float](repeating: 0, count: n * d)
                    var mean = [Float](repeating: 0, count: n), rstd = mean
                    ff_layernorm_forward(ctx, Int32(n), Int32(d), eps, x, gamma, nil, &y, &mean, &rstd)
                    var dx = [Float](repeating: .nan, count: n * d)
                    var dg = [Float](repeating: .nan, count: d), db = dg
                    ff_layernorm_backward(ctx, Int32(n), Int32(d), x, gamma, mean, rstd, dy, &dx, &dg, &db, 0)
                    var dgAcc = prior, dbAcc = prior
                    ff_layernorm_backward(ctx, Int32(n), Int32(d), x, gamma, mean, rstd, dy, nil, &dgAcc, &dbAcc, 1)
                    var dxOnly = [Float](repeating: .nan, count: n * d)
                    ff_layernorm_backward(ctx, Int32(n), Int32(d), x, gamma, mean, rstd, dy, &dxOnly, nil, nil, 0)
                    return [dx, dg, db, dgAcc, dbAcc, dxOnly]
                }
                let ref = lnBackward(x.doubles, dy.doubles, n: n, d: d, gamma: gamma?.doubles)
                let scale = Double(n).squareRoot() // sums over n rows grow like sqrt(n)
                assertClose(out[0], ref.dx, rtol: 1e-4, atol: 1e-5, "\(what): dx")
                assertClose(out[1], ref.dgamma, rtol: 1e-4, atol: 1e-5 * scale, "\(what): dgamma")
                assertClose(out[2], ref.dbeta, rtol: 1e-5, atol: 1e-6 * scale, "\(what): dbeta")
                assertClose(out[3], zip(prior, ref.dgamma).map { Double($0) + $1 }, rtol: 1e-4, atol: 1e-5 * scale,
                            "\(what): dgamma accumulate")
                assertClose(out[4], zip(prior, ref.dbeta).map { Double($0) + $1 }, rtol: 1e-5, atol: 1e-6 * scale,
                            "\(what): dbeta accumulate")
                XCTAssertEqual(out[5], out[0], "\(what): dx alone")
            }
        }
    }

    func testLayerNormGradients() {
        let n = 3, d = 11
        let x = randomFloats(n * d, seed: 7, lo: -2, hi: 2)
        let gamma = randomFloats(d, seed: 8, lo: 0.5, hi: 1.5), beta = randomFloats(d, seed: 9)
        let r = randomFloats(n * d, seed: 10)
        let ctx = ff_ctx_create(3)!
        defer { ff_ctx_destroy(ctx) }
        var y = [Float](repeating: 0, count: n * d), mean = [Float](repeating: 0, count: n), rstd = mean
        ff_layernorm_forward(ctx, Int32(n), Int32(d), eps, x, gamma, beta, &y, &mean, &rstd)
        var dx = [Float](repeating: 0, count: n * d), dg = [Float](repeating: 0, count: d), db = dg
        ff_layernorm_backward(ctx, Int32(n), Int32(d), x, gamma, mean, rstd, r, &dx, &dg, &db, 0)
        func loss(_ x: [Double], _ g: [Double], _ b: [Double]) -> Double {
            zip(lnForward(x, n: n, d: d, gamma: g, beta: b).y, r).reduce(0) { $0 + $1.0 * Double($1.1) }
        }
        assertGradient(dx, at: x.doubles, "layernorm dx") { loss($0, gamma.doubles, beta.doubles) }
        assertGradient(dg, at: gamma.doubles, "layernorm dgamma") { loss(x.doubles, $0, beta.doubles) }
        assertGradient(db, at: beta.doubles, "layernorm dbeta") { loss(x.doubles, gamma.doubles, $0) }
    }

    // MARK: BatchNorm reference

    private func bnStats(_ x: [Double], n: Int, c: Int, hw: Int) -> (mean: [Double], varB: [Double]) {
        var mean = [Double](repeating: 0, count: c), v = mean
        let m = Double(n * hw)
        for ch in 0..<c {
            var vals: [Double] = []
            for i in 0..<n { vals += x[(i * c + ch) * hw..<(i * c + ch + 1) * hw] }
            mean[ch] = vals.reduce(0, +) / m
            v[ch] = vals.reduce(0) { $0 + ($1 - mean[ch]) * ($1 - mean[ch]) } / m
        }
        return (mean, v)
    }

    private func bnApply(_ x: [Double], n: Int, c: Int, hw: Int, mean: [Double], variance: [Double],
                         gamma: [Double]?, beta: [Double]?) -> [Double] {
        (0..<x.count).map { i in
            let ch = (i / hw) % c
            return (x[i] - mean[ch]) / sqrt(variance[ch] + Double(eps)) * (gamma?[ch] ?? 1) + (beta?[ch] ?? 0)
        }
    }

    private func bnTrain(_ x: [Double], n: Int, c: Int, hw: Int, gamma: [Double]?, beta: [Double]?) -> [Double] {
        let s = bnStats(x, n: n, c: c, hw: hw)
        return bnApply(x, n: n, c: c, hw: hw, mean: s.mean, variance: s.varB, gamma: gamma, beta: beta)
    }

    /// BatchNorm2d shapes, batch 1, BatchNorm1d (hw = 1), and two cases split over threads.
    private let bnShapes = [(4, 3, 35), (1, 5, 7), (16, 6, 1), (2, 3, 49), (32, 8, 256), (1024, 64, 1)]

    func testBatchNormTrainForwardAndRunningStats() {
        let momentum: Float = 0.1
        for (n, c, hw) in bnShapes {
            for affine in [true, false] {
                let x = randomFloats(n * c * hw, seed: UInt64(n * c * hw), lo: -1, hi: 4)
                let gamma = affine ? randomFloats(c, seed: 11, lo: 0.5, hi: 1.5) : nil
                let beta = affine ? randomFloats(c, seed: 12) : nil
                let rm0 = randomFloats(c, seed: 13), rv0 = randomFloats(c, seed: 14, lo: 0.5, hi: 2)
                let what = "batchnorm \(n)x\(c)x\(hw) affine \(affine)"
                let out = everyPath(what) { ctx in
                    var y = [Float](repeating: .nan, count: n * c * hw)
                    var sm = [Float](repeating: .nan, count: c), sr = sm
                    var rm = rm0, rv = rv0
                    ff_batchnorm_forward_train(ctx, Int32(n), Int32(c), Int32(hw), eps, momentum, x, gamma, beta,
                                               &y, &sm, &sr, &rm, &rv)
                    // Without save / running buffers the output must not change.
                    var y2 = [Float](repeating: .nan, count: n * c * hw)
                    ff_batchnorm_forward_train(ctx, Int32(n), Int32(c), Int32(hw), eps, momentum, x, gamma, beta,
                                               &y2, nil, nil, nil, nil)
                    XCTAssertEqual(y2, y, "\(what): without optional buffers")
                    return [y, sm, sr, rm, rv]
                }
                let s = bnStats(x.doubles, n: n, c: c, hw: hw)
                let m = Double(n * hw), mom = Double(momentum)
                let unbiased = s.varB.map { m > 1 ? $0 * m / (m - 1) : $0 }
                assertClose(out[0], bnApply(x.doubles, n: n, c: c, hw: hw, mean: s.mean, variance: s.varB,
                                            gamma: gamma?.doubles, beta: beta?.doubles),
                            rtol: 1e-5, atol: 2e-5, "\(what): y")
                assertClose(out[1], s.mean, rtol: 1e-6, atol: 1e-7, "\(what): save_mean")
                assertClose(out[2], s.varB.map { 1 / sqrt($0 + Double(eps)) }, rtol: 1e-5, atol: 0, "\(what): save_rstd")
                assertClose(out[3], zip(rm0, s.mean).map { (1 - mom) * Double($0) + mom * $1 }, rtol: 1e-6, atol: 1e-7,
                            "\(what): running_mean")
                assertClose(out[4], zip(rv0, unbiased).map { (1 - mom) * Double($0) + mom * $1 }, rtol: 1e-6, atol: 1e-7,
                            "\(what): running_var (unbiased)")
            }
        }
    }

    /// Hand-checkable running-variance update: values 1, 2, 3, 4 in one channel have biased
    /// variance 1.25 and unbiased variance 5/3.
    func testRunningVarianceIsUnbiased() {
        let ctx = ff_ctx_create(1)!
        defer { ff_ctx_destroy(ctx) }
        var y = [Float](repeating: 0, count: 4), sm: [Float] = [0], sr: [Float] = [0]
        var rm: [Float] = [0], rv: [Float] = [1]
        ff_batchnorm_forward_train(ctx, 2, 1, 2, 0, 0.5, [1, 2, 3, 4], nil, nil, &y, &sm, &sr, &rm, &rv)
        XCTAssertEqual(sm[0], 2.5)
        XCTAssertEqual(sr[0], Float(1 / 1.25.squareRoot()), accuracy: 1e-7)
        XCTAssertEqual(rm[0], 1.25)
        XCTAssertEqual(rv[0], Float(0.5 + 0.5 * 5.0 / 3), accuracy: 1e-7)
    }

    func testBatchNormEval() {
        for (n, c, hw) in bnShapes {
            let x = randomFloats(n * c * hw, seed: UInt64(n * c * hw) + 20, lo: -1, hi: 4)
            let gamma = randomFloats(c, seed: 21, lo: 0.5, hi: 1.5), beta = randomFloats(c, seed: 22)
            let rm = randomFloats(c, seed: 23), rv = randomFloats(c, seed: 24, lo: 0.5, hi: 2)
            for affine in [true, false] {
                let what = "batchnorm eval \(n)x\(c)x\(hw) affine \(affine)"
                let out = everyPath(what) { ctx in
                    var y = [Float](repeating: .nan, count: n * c * hw)
                    ff_batchnorm_forward_eval(ctx, Int32(n), Int32(c), Int32(hw), eps, x, affine ? gamma : nil,
                                              affine ? beta : nil, rm, rv, &y)
                    return [y]
                }
                assertClose(out[0], bnApply(x.doubles, n: n, c: c, hw: hw, mean: rm.doubles, variance: rv.doubles,
                                            gamma: affine ? gamma.doubles : nil, beta: affine ? beta.doubles : nil),
                            rtol: 1e-5, atol: 2e-5, what)
            }
        }
    }

    func testBatchNormBackward() {
        for (n, c, hw) in bnShapes {
            let x = randomFloats(n * c * hw, seed: UInt64(n * c * hw) + 30, lo: -1, hi: 4)
            let dy = randomFloats(n * c * hw, seed: UInt64(n * c * hw) + 31)
            let gamma = randomFloats(c, seed: 32, lo: 0.5, hi: 1.5), beta = randomFloats(c, seed: 33)
            let prior = randomFloats(c, seed: 34)
            let what = "batchnorm backward \(n)x\(c)x\(hw)"
            let out = everyPath(what) { ctx in
                var y = [Float](repeating: 0, count: n * c * hw)
                var sm = [Float](repeating: 0, count: c), sr = sm
                ff_batchnorm_forward_train(ctx, Int32(n), Int32(c), Int32(hw), eps, 0.1, x, gamma, beta,
                                           &y, &sm, &sr, nil, nil)
                var dx = [Float](repeating: .nan, count: n * c * hw)
                var dg = [Float](repeating: .nan, count: c), db = dg
                ff_batchnorm_backward(ctx, Int32(n), Int32(c), Int32(hw), x, gamma, sm, sr, dy, &dx, &dg, &db, 0)
                var dgAcc = prior, dbAcc = prior
                ff_batchnorm_backward(ctx, Int32(n), Int32(c), Int32(hw), x, gamma, sm, sr, dy, nil, &dgAcc, &dbAcc, 1)
                return [dx, dg, db, dgAcc, dbAcc]
            }
            // Reference: dx = gamma*rstd*(dy - mean(dy) - xhat*mean(dy*xhat)) per channel.
            let s = bnStats(x.doubles, n: n, c: c, hw: hw)
            let m = Double(n * hw)
            var sdy = [Double](repeating: 0, count: c), sdyx = sdy
            let xhat = (0..<x.count).map { i -> Double in
                let ch = (i / hw) % c
                return (Double(x[i]) - s.mean[ch]) / sqrt(s.varB[ch] + Double(eps))
            }
            for i in 0..<x.count {
                sdy[(i / hw) % c] += Double(dy[i])
                sdyx[(i / hw) % c] += Double(dy[i]) * xhat[i]
            }
            let dx = (0..<x.count).map { i -> Double in
                let ch = (i / hw) % c
                return Double(gamma[ch]) / sqrt(s.varB[ch] + Double(eps)) * (Double(dy[i]) - sdy[ch] / m - xhat[i] * sdyx[ch] / m)
            }
            let scale = m.squareRoot()
            assertClose(out[0], dx, rtol: 1e-4, atol: 1e-5, "\(what): dx")
            assertClose(out[1], sdyx, rtol: 1e-4, atol: 1e-5 * scale, "\(what): dgamma")
            assertClose(out[2], sdy, rtol: 1e-5, atol: 1e-6 * scale, "\(what): dbeta")
            assertClose(out[3], zip(prior, sdyx).map { Double($0) + $1 }, rtol: 1e-4, atol: 1e-5 * scale,
                        "\(what): dgamma accumulate")
            assertClose(out[4], zip(prior, sdy).map { Double($0) + $1 }, rtol: 1e-5, atol: 1e-6 * scale,
                        "\(what): dbeta accumulate")
        }
    }

    func testBatchNormGradients() {
        for (n, c, hw) in [(3, 2, 5), (6, 3, 1)] {
            let x = randomFloats(n * c * hw, seed: 40, lo: -1, hi: 2)
            let gamma = randomFloats(c, seed: 41, lo: 0.5, hi: 1.5), beta = randomFloats(c, seed: 42)
            let r = randomFloats(n * c * hw, seed: 43)
            let ctx = ff_ctx_create(3)!
            defer { ff_ctx_destroy(ctx) }
            var y = [Float](repeating: 0, count: n * c * hw), sm = [Float](repeating: 0, count: c), sr = sm
            ff_batchnorm_forward_train(ctx, Int32(n), Int32(c), Int32(hw), eps, 0.1, x, gamma, beta, &y, &sm, &sr, nil, nil)
            var dx = [Float](repeating: 0, count: x.count), dg = [Float](repeating: 0, count: c), db = dg
            ff_batchnorm_backward(ctx, Int32(n), Int32(c), Int32(hw), x, gamma, sm, sr, r, &dx, &dg, &db, 0)
            func loss(_ x: [Double], _ g: [Double], _ b: [Double]) -> Double {
                zip(bnTrain(x, n: n, c: c, hw: hw, gamma: g, beta: b), r).reduce(0) { $0 + $1.0 * Double($1.1) }
            }
            let what = "batchnorm \(n)x\(c)x\(hw)"
            assertGradient(dx, at: x.doubles, "\(what) dx") { loss($0, gamma.doubles, beta.doubles) }
            assertGradient(dg, at: gamma.doubles, "\(what) dgamma") { loss(x.doubles, $0, beta.doubles) }
            assertGradient(db, at: beta.doubles, "\(what) dbeta") { loss(x.doubles, gamma.doubles, $0) }
        }
    }
}
