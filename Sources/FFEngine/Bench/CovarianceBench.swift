import FFCore
import Foundation

/// Cost of BiCovG's projection path against the explicit-covariance alternative and
/// against the conv step it follows (3x3 conv forward + weight gradient on the same map,
/// the layer-local training step). Each round times every kernel once (mean of a few
/// calls), in an order that alternates between rounds, so slow phases of a shared machine
/// hit all kernels alike; rows report min / median / max over the rounds.
public enum CovarianceBench {
    public struct Row: Sendable {
        public var name: String
        public var shape: String
        /// Work of one call; GFLOP/s is taken at the median time.
        public var flops: Double
        /// Seconds per call, one value per round.
        public var seconds: [Double]
    }

    /// A share of the conv step, one value per round (percent).
    public struct Share: Sendable {
        public var name: String
        public var shape: String
        public var percent: [Double]
    }

    public struct Result: Sendable {
        public var rows: [Row]
        public var shares: [Share]
    }

    /// Shapes of the BiCovG performance check: batch 128, C = 512, 8x8 and 16x16 maps, K = 64.
    public static func run(context: ComputeContext, rounds: Int = 5, batch: Int = 128, channels: Int = 512,
                           directions: Int = 64, sizes: [Int] = [8, 16],
                           levels: [Int] = Ops.defaultCovarianceLevels) -> Result {
        let ctx = context.raw
        var result = Result(rows: [], shares: [])
        let (n, c, k) = (batch, channels, directions)
        for s in sizes {
            let hw = s * s
            let y = KernelBench.filled(n * c * hw, seed: 11), x = KernelBench.filled(n * c * hw, seed: 12)
            let dy = KernelBench.filled(n * c * hw, seed: 13), w = KernelBench.filled(c * c * 9, seed: 14)
            let dw = KernelBench.filled(c * c * 9, seed: 15), bias = KernelBench.filled(c, seed: 16)
            let z = KernelBench.filled(n * k * hw, seed: 17)
            var rng = RNG(seed: 18)
            let u = Ops.covarianceDirections(count: k, channels: c, rng: &rng)
            var d = Ops.covarianceDesc([n, c, s, s], directions: k, levels: levels, bins: .adaptive)
            var d1 = Ops.covarianceDesc([n, c, s, s], directions: k, levels: [1], bins: .adaptive)
            let dim = Int(ff_covgoodness_dim(&d))
            let e = KernelBench.filled(n * dim, seed: 19), de = KernelBench.filled(n * dim, seed: 20)
            var conv = ff_conv2d_desc(n: Int32(n), c_in: Int32(c), h_in: Int32(s), w_in: Int32(s), c_out: Int32(c),
                                      k_h: 3, k_w: 3, stride_h: 1, stride_w: 1, pad_h: 1, pad_w: 1, groups: 1)
            defer { for p in [y, x, dy, w, dw, bias, z, e, de] { p.deallocate() } }

            let proj = 2 * Double(n * k * c * hw)
            let levelName = levels.map(String.init).joined(separator: ",")
            let kernels: [(String, Double, () -> Void)] = [
                ("covg forward, levels \(levelName)", proj, { ff_covgoodness_forward(ctx, &d, u.pointer, y, e, nil) }),
                ("covg forward, level 1", proj, { ff_covgoodness_forward(ctx, &d1, u.pointer, y, e, nil) }),
                ("explicit Sigma=YY'/HW, u'Sigma u (level 1)",
                 2 * Double(n * c * c * hw) + 2 * Double(n * k * c * c) + 2 * Double(n * k * c),
                 { ff_covgoodness_explicit(ctx, Int32(n), Int32(c), hw, Int32(k), u.pointer, y, e) }),
                ("covg backward, z recomputed", 2 * proj,
                 { ff_covgoodness_backward(ctx, &d, u.pointer, y, nil, de, dy, 1) }),
                ("covg forward saving z", proj, { ff_covgoodness_forward(ctx, &d, u.pointer, y, e, z) }),
                ("covg backward from saved z", proj,
                 { ff_covgoodness_backward(ctx, &d, u.pointer, nil, z, de, dy, 1) }),
                ("conv 3x3 forward+relu + weight grad", 4 * Double(n * c * c * 9 * hw), {
                    ff_conv2d_forward(ctx, &conv, x, w, bias, y, FF_CONV_RELU)
                    ff_conv2d_backward_weight(ctx, &conv, x, dy, dw, bias, 0)
                }),
            ]
            // The conv overwrites y with its ReLU output, a realistic input for the rest.
            kernels.last!.2()
            var times = Array(repeating: [Double](), count: kernels.count)
            let calls = kernels.map { callsFor($0.2) }
            for r in 0..<rounds {
                let order = r % 2 == 0 ? Array(kernels.indices) : kernels.indices.reversed()
                for i in order { times[i].append(meanTime(calls[i], kernels[i].2)) }
            }
            let shape = "n\(n) c\(c) \(s)x\(s) K\(k)"
            for (i, kr) in kernels.enumerated() {
                result.rows.append(Row(name: kr.0, shape: shape, flops: kr.1, seconds: times[i]))
            }
            let convT = times[kernels.count - 1]
            let share = { (name: String, parts: [Int]) in
                Share(name: name, shape: shape, percent: (0..<rounds).map { r in
                    100 * parts.reduce(0) { $0 + times[$1][r] } / convT[r]
                })
            }
            result.shares.append(share("projection path (forward + backward, z recomputed)", [0, 3]))
            result.shares.append(share("projection path (forward saving z + backward from z)", [4, 5]))
            result.shares.append(share("explicit covariance forward (level 1 only)", [2]))
        }
        return result
    }

    public static func format(_ r: Result) -> String {
        func ms(_ v: Double) -> String { String(format: "%.3f", v * 1e3) }
        let rows = r.rows.map { row -> [String] in
            let t = row.seconds.sorted()
            return [row.name, row.shape, String(format: "%.1f", row.flops / median(t) / 1e9),
                    ms(t.first!), ms(median(t)), ms(t.last!)]
        }
        let shares = r.shares.map { s -> [String] in
            let p = s.percent.sorted()
            return [s.name, s.shape, String(format: "%.2f", p.first!), String(format: "%.2f", median(p)),
                    String(format: "%.2f", p.last!)]
        }
        let rounds = r.rows.first?.seconds.count ?? 0
        return TextTable.render([["kernel", "shape", "GFLOP/s", "ms min", "ms median", "ms max"]] + rows,
                                rightAligned: [2, 3, 4, 5])
            + "\n\n" + TextTable.render([["share of the conv step", "shape", "% min", "% median", "% max"]] + shares,
                                        rightAligned: [2, 3, 4])
            + "\n(\(rounds) rounds in alternating order; each value is the mean of a few calls in one round.)"
    }

    private static func median(_ sorted: [Double]) -> Double {
        let m = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2
    }

    /// Calls per measurement: about 0.2 s of work, at least one, after one warm-up call.
    private static func callsFor(_ body: () -> Void) -> Int {
        body()
        let t = meanTime(1, body)
        return max(1, min(1000, Int(0.2 / max(t, 1e-6))))
    }

    private static func meanTime(_ calls: Int, _ body: () -> Void) -> Double {
        let clock = ContinuousClock()
        let t0 = clock.now
        for _ in 0..<calls { body() }
        let dt = clock.now - t0
        return (Double(dt.components.seconds) + Double(dt.components.attoseconds) * 1e-18) / Double(calls)
    }
}
