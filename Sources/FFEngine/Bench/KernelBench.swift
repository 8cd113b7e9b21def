import FFCore
import Foundation

/// One kernel measurement: the best time of repeated calls, as GFLOP/s and as a share of
/// the pool's sgemm rate (the practical peak of this machine with this thread count).
public struct KernelBenchResult: Sendable {
    public var name: String
    public var shape: String
    public var gflops: Double
    public var percentOfPeak: Double
    /// Best wall time of one call (seconds).
    public var seconds: Double
}

/// Throughput of the compute kernels the training loop spends its time in: sgemm on the
/// pool (the reference), conv forward / weight gradient at VGG-like shapes, and BiCovG's
/// covariance goodness (see CovarianceBench for its comparison with the alternatives).
public enum KernelBench {
    /// (batch, channels in = out, height = width), 3x3 kernel, stride 1, padding 1.
    public static let convShapes: [(n: Int, c: Int, hw: Int)] = [(128, 128, 32), (128, 256, 16), (128, 512, 4)]
    /// (batch, channels, height = width) of the covariance goodness rows.
    public static let covarianceShapes: [(n: Int, c: Int, hw: Int)] = [(128, 512, 8), (128, 512, 16)]

    /// Each kernel runs once to warm up (scratch arenas, page faults), then repeatedly
    /// for about `seconds` (at least twice); the best call counts, since other load on
    /// the machine only ever slows a call down.
    public static func run(context: ComputeContext, seconds: Double = 1.0) -> [KernelBenchResult] {
        let ctx = context.raw
        var results: [KernelBenchResult] = []

        let m = 2048
        let a = filled(m * m, seed: 1), b = filled(m * m, seed: 2), c = filled(m * m, seed: 3)
        defer { for p in [a, b, c] { p.deallocate() } }
        let gemmTime = bestTime(seconds) {
            ff_sgemm(ctx, 0, 0, Int32(m), Int32(m), Int32(m), 1, a, Int32(m), b, Int32(m), 0, c, Int32(m))
        }
        let peak = 2 * pow(Double(m), 3) / gemmTime / 1e9
        results.append(KernelBenchResult(name: "sgemm", shape: "\(m)x\(m)x\(m), \(context.threads) threads",
                                         gflops: peak, percentOfPeak: 100, seconds: gemmTime))

        for s in convShapes {
            var d = ff_conv2d_desc(n: Int32(s.n), c_in: Int32(s.c), h_in: Int32(s.hw), w_in: Int32(s.hw),
                                   c_out: Int32(s.c), k_h: 3, k_w: 3, stride_h: 1, stride_w: 1,
                                   pad_h: 1, pad_w: 1, groups: 1)
            let plane = s.hw * s.hw
            let x = filled(s.n * s.c * plane, seed: 4), y = filled(s.n * s.c * plane, seed: 5)
            let w = filled(s.c * s.c * 9, seed: 6), bias = filled(s.c, seed: 7)
            let dw = filled(s.c * s.c * 9, seed: 8), db = filled(s.c, seed: 9)
            defer { for p in [x, y, w, bias, dw, db] { p.deallocate() } }
            let flops = 2 * Double(s.n) * Double(s.c) * Double(plane) * Double(s.c) * 9
            let shape = "n\(s.n) \(s.c)->\(s.c) \(s.hw)x\(s.hw) k3 p1"

            let fwd = bestTime(seconds) { ff_conv2d_forward(ctx, &d, x, w, bias, y, FF_CONV_RELU) }
            let wgrad = bestTime(seconds) { ff_conv2d_backward_weight(ctx, &d, x, y, dw, db, 0) }
            let algo = { (op: Int32) in String(cString: ff_conv_algo_name(ff_conv2d_algo(ctx, &d, op))) }
            for (name, t) in [("conv forward+bias+relu (\(algo(0)))", fwd), ("conv weight grad+bias (\(algo(1)))", wgrad)] {
                let g = flops / t / 1e9
                results.append(KernelBenchResult(name: name, shape: shape, gflops: g,
                                                 percentOfPeak: 100 * g / peak, seconds: t))
            }
        }

        // Covariance goodness, K = 64 directions, levels {1, 2, 4}; GFLOP/s of its sgemms.
        for s in covarianceShapes {
            let plane = s.hw * s.hw, k = 64
            var d = Ops.covarianceDesc([s.n, s.c, s.hw, s.hw], directions: k, levels: Ops.defaultCovarianceLevels,
                                       bins: .adaptive)
            let dim = Int(ff_covgoodness_dim(&d))
            let y = filled(s.n * s.c * plane, seed: 21), dy = filled(s.n * s.c * plane, seed: 22)
            let e = filled(s.n * dim, seed: 23), z = filled(s.n * k * plane, seed: 24)
            defer { for p in [y, dy, e, z] { p.deallocate() } }
            var rng = RNG(seed: 25)
            let u = Ops.covarianceDirections(count: k, channels: s.c, rng: &rng)
            let flops = 2 * Double(s.n) * Double(k) * Double(s.c) * Double(plane)
            let shape = "n\(s.n) c\(s.c) \(s.hw)x\(s.hw) K\(k) P1,2,4"
            let fwd = bestTime(seconds) { ff_covgoodness_forward(ctx, &d, u.pointer, y, e, z) }
            let bwd = bestTime(seconds) { ff_covgoodness_backward(ctx, &d, u.pointer, y, nil, e, dy, 0) }
            for (name, t, f) in [("covgoodness forward (saving z)", fwd, flops),
                                 ("covgoodness backward (z recomputed)", bwd, 2 * flops)] {
                let g = f / t / 1e9
                results.append(KernelBenchResult(name: name, shape: shape, gflops: g,
                                                 percentOfPeak: 100 * g / peak, seconds: t))
            }
        }
        return results
    }

    /// The conv layers of ASGE VGG8 at 32x32x3, batch 128: (c_in, c_out, height = width).
    public static let vgg8Layers: [(cin: Int, cout: Int, hw: Int)] =
        [(3, 128, 32), (128, 256, 16), (256, 256, 16), (256, 512, 8), (512, 512, 8), (512, 512, 4)]

    /// One layer shape and operation: effective GFLOP/s (direct-convolution FLOPs / time) of
    /// each algorithm and precision, and what AUTO picks.
    public struct ConvAlgorithmRow: Sendable {
        public var shape: String
        public var op: String
        public var gflops: [String: Double]
        public var auto: String
    }

    public static let algorithmColumns = ["im2col", "f2", "f4", "bf16 im2col", "bf16 f2", "bf16 f4"]

    /// Every algorithm on every VGG8 layer, forward and weight gradient, on contexts of the
    /// same thread count as `context` (bf16 columns only where the CPU has AVX512_BF16).
    /// Winograd is skipped where it does not apply or the channels are too few to matter.
    public static func convAlgorithms(context: ComputeContext, batch: Int = 128, seconds: Double = 0.5)
        -> [ConvAlgorithmRow] {
        let configs: [(String, String, String)] = [("im2col", "fp32", "im2col"), ("f2", "fp32", "f2"), ("f4", "fp32", "f4"),
                                                   ("bf16 im2col", "bf16", "im2col"), ("bf16 f2", "bf16", "f2"),
                                                   ("bf16 f4", "bf16", "f4")]
        let ctxs = configs.compactMap { (col, prec, algo) -> (String, ComputeContext)? in
            let c = ComputeContext(threads: context.threads)
            guard (try? c.setPrecision(prec)) != nil else { return nil }
            try? c.setConvAlgorithm(algo)
            return (col, c)
        }
        var rows: [ConvAlgorithmRow] = []
        for l in vgg8Layers {
            var d = ff_conv2d_desc(n: Int32(batch), c_in: Int32(l.cin), h_in: Int32(l.hw), w_in: Int32(l.hw),
                                   c_out: Int32(l.cout), k_h: 3, k_w: 3, stride_h: 1, stride_w: 1, pad_h: 1, pad_w: 1, groups: 1)
            let plane = l.hw * l.hw
            let x = filled(batch * l.cin * plane, seed: 4), y = filled(batch * l.cout * plane, seed: 5)
            let w = filled(l.cout * l.cin * 9, seed: 6), bias = filled(l.cout, seed: 7)
            let dw = filled(l.cout * l.cin * 9, seed: 8), db = filled(l.cout, seed: 9)
            defer { for p in [x, y, w, bias, dw, db] { p.deallocate() } }
            let flops = 2 * Double(batch) * Double(l.cin) * Double(plane) * Double(l.cout) * 9
            let shape = "\(l.cin)->\(l.cout) \(l.hw)x\(l.hw)"
            for op: Int32 in [0, 1] {
                var row = ConvAlgorithmRow(shape: shape, op: op == 0 ? "forward" : "weight grad", gflops: [:],
                                           auto: String(cString: ff_conv_algo_name(ff_conv2d_algo(context.raw, &d, op))))
                for (col, c) in ctxs {
                    if col.hasSuffix("f2") || col.hasSuffix("f4") {
                        if l.cin < 16 || l.cout < 16 { continue }
                    }
                    let t = bestTime(seconds) {
                        if op == 0 { ff_conv2d_forward(c.raw, &d, x, w, bias, y, FF_CONV_RELU) }
                        else { ff_conv2d_backward_weight(c.raw, &d, x, y, dw, db, 0) }
                    }
                    row.gflops[col] = flops / t / 1e9
                }
                rows.append(row)
            }
        }
        return rows
    }

    public static func format(_ rows: [ConvAlgorithmRow], precision: String) -> String {
        let cols = algorithmColumns.filter { c in rows.contains { $0.gflops[c] != nil } }
        return TextTable.render([["layer (n128, 3x3 p1)", "op"] + cols + ["auto (\(precision))"]] + rows.map { r in
            [r.shape, r.op] + cols.map { r.gflops[$0].map { String(format: "%.1f", $0) } ?? "-" } + [r.auto]
        }, rightAligned: Set(2..<(2 + cols.count)))
    }

    /// A plain-text table of results.
    public static func format(_ results: [KernelBenchResult]) -> String {
        TextTable.render([["kernel", "shape", "GFLOP/s", "% peak", "ms"]] + results.map {
            [$0.name, $0.shape, String(format: "%.1f", $0.gflops), String(format: "%.1f", $0.percentOfPeak),
             String(format: "%.2f", $0.seconds * 1e3)]
        }, rightAligned: [2, 3, 4])
    }

    static func bestTime(_ seconds: Double, _ body: () -> Void) -> Double {
        body()
        let clock = ContinuousClock()
        let start = clock.now
        var best = Double.infinity
        var calls = 0
        while calls < 2 || (clock.now - start) < .seconds(seconds) {
            let t0 = clock.now
            body()
            let dt = clock.now - t0
            let sec = Double(dt.components.seconds) + Double(dt.components.attoseconds) * 1e-18
            best = min(best, sec)
            calls += 1
        }
        return best
    }

    /// Values in [-0.5, 0.5) from a small LCG: deterministic, and fast enough for 16M floats.
    static func filled(_ count: Int, seed: UInt64) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        for i in 0..<count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            p[i] = Float(state >> 40) / Float(1 << 24) - 0.5
        }
        return p
    }
}
