import FFCore
import XCTest

/// Winograd F(2,3) / F(4,3) / F(6,3) convolution (conv_winograd.c) against the double
/// reference of ConvTests: forward (bias, fused ReLU) and weight gradient, every SIMD level at
/// 1 and 3 threads (bit-identical between the two thread counts), finite differences,
/// determinism, the workspace bound, and the AUTO / MEASURE algorithm choice.
final class WinogradTests: XCTestCase {
    typealias Shape = ConvTests.Shape

    /// 3x3 / stride 1 / pad 1 shapes: maps smaller than one tile, sizes that are not
    /// multiples of 2, 4 or 6, batch 1, channel counts that are not multiples of 16 (lanes),
    /// 12 (panel rows) or 32 (panel lanes), and enough tiles for several blocks per panel.
    static let shapes: [Shape] = [
        Shape(1, 1, 1, 1, 1, 3, 3, 1, 1, 1, 1, 1),
        Shape(2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1),
        Shape(1, 17, 5, 9, 33, 3, 3, 1, 1, 1, 1, 1),
        Shape(3, 20, 4, 4, 24, 3, 3, 1, 1, 1, 1, 1),
        Shape(2, 16, 13, 11, 18, 3, 3, 1, 1, 1, 1, 1),
        Shape(5, 9, 2, 3, 7, 3, 3, 1, 1, 1, 1, 1),
        Shape(1, 40, 8, 8, 36, 3, 3, 1, 1, 1, 1, 1),
    ]

    static let algos: [(Int32, String, Double)] = [
        // algorithm, name, tolerance on max|err| / max|y| in fp32 (measured: F2 3e-7, F4 5e-6, F6 7e-6)
        (Int32(FF_CONV_ALGO_WINOGRAD_F2), "F2", 3e-6),
        (Int32(FF_CONV_ALGO_WINOGRAD_F4), "F4", 4e-5),
        (Int32(FF_CONV_ALGO_WINOGRAD_F6), "F6", 1e-4),
    ]

    static func context(threads: Int32, simd: Int32, algo: Int32) -> OpaquePointer {
        let ctx = ff_ctx_create(threads)!
        ff_ctx_set_simd(ctx, simd)
        ff_ctx_set_conv_algo(ctx, algo)
        return ctx
    }

    func testAgainstReference() {
        for (si, s) in Self.shapes.enumerated() {
            let seed = UInt64(2000 + si * 10)
            let x = randomFloats(s.xCount, seed: seed), w = randomFloats(s.wCount, seed: seed + 1)
            let b = randomFloats(s.co, seed: seed + 2), dy = randomFloats(s.yCount, seed: seed + 3)
            let dwInit = randomFloats(s.wCount, seed: seed + 4), dbInit = randomFloats(s.co, seed: seed + 5)
            let yRef = ConvTests.refForward(s, x.doubles, w.doubles, b.doubles)
            let yRelu = yRef.map { max($0, 0) }
            let yNoBias = ConvTests.refForward(s, x.doubles, w.doubles, nil)
            let g = ConvTests.refBackward(s, x.doubles, w.doubles, dy.doubles)
            let dwAcc = zip(g.dw, dwInit).map { $0 + Double($1) }, dbAcc = zip(g.db, dbInit).map { $0 + Double($1) }
            for (algo, name, tol) in Self.algos {
                for simd in 0...ff_cpu_simd_level() {
                    var first: [[Float]]?
                    for threads: Int32 in [1, 3] {
                        let ctx = Self.context(threads: threads, simd: simd, algo: algo)
                        defer { ff_ctx_destroy(ctx) }
                        var d = s.desc
                        XCTAssertEqual(ff_conv2d_algo(ctx, &d, 0), algo)
                        let tag = "\(s) \(name) \(String(cString: ff_simd_name(simd))) t\(threads)"
                        let y = ConvTests.forward(ctx, s, x, w, b)
                        let yr = ConvTests.forward(ctx, s, x, w, b, flags: FF_CONV_RELU)
                        let yn = ConvTests.forward(ctx, s, x, w, nil)
                        let (dw, db) = ConvTests.backwardWeight(ctx, s, x, dy, dwInit: dwInit, dbInit: dbInit, accumulate: 0)
                        let (dwA, dbA) = ConvTests.backwardWeight(ctx, s, x, dy, dwInit: dwInit, dbInit: dbInit, accumulate: 1)
                        let (dwN, _) = ConvTests.backwardWeight(ctx, s, x, dy, dwInit: dwInit, dbInit: nil, accumulate: 0)
                        assertRelMax(y, yRef, tol: tol, "\(tag) y")
                        assertRelMax(yr, yRelu, tol: tol, "\(tag) y relu")
                        XCTAssert(yr.allSatisfy { $0 >= 0 }, "\(tag) relu output negative")
                        assertRelMax(yn, yNoBias, tol: tol, "\(tag) y nobias")
                        assertRelMax(dw, g.dw, tol: tol, "\(tag) dw")
                        assertClose(db!, g.db, rtol: 1e-5, atol: ConvTests.atol(s.n * s.oh * s.ow), "\(tag) db")
                        assertRelMax(dwA, dwAcc, tol: tol, "\(tag) dw accumulate")
                        assertClose(dbA!, dbAcc, rtol: 1e-5, atol: ConvTests.atol(s.n * s.oh * s.ow), "\(tag) db accumulate")
                        assertRelMax(dwN, g.dw, tol: tol, "\(tag) dw without dbias")
                        let all = [y, yr, yn, dw, dwA, dwN]
                        if let f = first {
                            XCTAssert(zip(f, all).allSatisfy { $0.map(\.bitPattern) == $1.map(\.bitPattern) },
                                      "\(tag): 1 and 3 threads differ")
                        } else {
                            first = all
                        }
                    }
                }
            }
        }
    }

    /// Central differences of L = sum(y * r) through the double reference against the
    /// Winograd weight gradient with dy = r.
    func testFiniteDifferenceWeightGradient() {
        let shapes = [Shape(2, 5, 6, 7, 4, 3, 3, 1, 1, 1, 1, 1), Shape(1, 18, 5, 5, 17, 3, 3, 1, 1, 1, 1, 1)]
        for (algo, name, _) in Self.algos {
            let ctx = Self.context(threads: 3, simd: ff_cpu_simd_level(), algo: algo)
            defer { ff_ctx_destroy(ctx) }
            for (si, s) in shapes.enumerated() {
                let seed = UInt64(2500 + si * 10)
                let x = randomFloats(s.xCount, seed: seed), w = randomFloats(s.wCount, seed: seed + 1)
                let b = randomFloats(s.co, seed: seed + 2), r = randomFloats(s.yCount, seed: seed + 3)
                let rd = r.doubles
                func loss(_ y: [Double]) -> Double { zip(y, rd).reduce(0) { $0 + $1.0 * $1.1 } }
                let (dw, db) = ConvTests.backwardWeight(ctx, s, x, r, dwInit: w, dbInit: b, accumulate: 0)
                assertGradient(dw, at: w.doubles, "\(s) \(name) dw") { loss(ConvTests.refForward(s, x.doubles, $0, b.doubles)) }
                assertGradient(db!, at: b.doubles, "\(s) \(name) db") { loss(ConvTests.refForward(s, x.doubles, w.doubles, $0)) }
            }
        }
    }

    /// The same call twice on one context gives the same bits.
    func testDeterminism() {
        let s = Shape(4, 24, 10, 9, 20, 3, 3, 1, 1, 1, 1, 1)
        let x = randomFloats(s.xCount, seed: 31), w = randomFloats(s.wCount, seed: 32)
        let b = randomFloats(s.co, seed: 33), dy = randomFloats(s.yCount, seed: 34)
        let zw = [Float](repeating: 0, count: s.wCount), zb = [Float](repeating: 0, count: s.co)
        for (algo, name, _) in Self.algos {
            for simd in 0...ff_cpu_simd_level() {
                let ctx = Self.context(threads: 3, simd: simd, algo: algo)
                defer { ff_ctx_destroy(ctx) }
                let runs = (0..<2).map { _ in
                    [ConvTests.forward(ctx, s, x, w, b, flags: FF_CONV_RELU),
                     ConvTests.backwardWeight(ctx, s, x, dy, dwInit: zw, dbInit: zb, accumulate: 0).0]
                }
                XCTAssertEqual(runs[0].map { $0.map(\.bitPattern) }, runs[1].map { $0.map(\.bitPattern) }, "\(name) simd \(simd)")
            }
        }
    }

    /// After forward and weight-gradient calls, a fresh context's scratch stays within
    /// ff_conv2d_workspace_bytes, for forced algorithms and for MEASURE (which runs them all).
    func testWorkspaceBoundHolds() {
        let shapes = [Shape(3, 20, 9, 9, 24, 3, 3, 1, 1, 1, 1, 1), Shape(2, 33, 17, 15, 40, 3, 3, 1, 1, 1, 1, 1)]
        let modes = Self.algos.map(\.0) + [Int32(FF_CONV_ALGO_MEASURE), Int32(FF_CONV_ALGO_AUTO)]
        for s in shapes {
            for mode in modes {
                for threads: Int32 in [1, 3] {
                    let ctx = Self.context(threads: threads, simd: ff_cpu_simd_level(), algo: mode)
                    defer { ff_ctx_destroy(ctx) }
                    var d = s.desc
                    let bound = ff_conv2d_workspace_bytes(ctx, &d)
                    let x = randomFloats(s.xCount, seed: 1), w = randomFloats(s.wCount, seed: 2)
                    let dy = randomFloats(s.yCount, seed: 3)
                    _ = ConvTests.forward(ctx, s, x, w, nil)
                    _ = ConvTests.backwardWeight(ctx, s, x, dy, dwInit: w, dbInit: [Float](repeating: 0, count: s.co),
                                                 accumulate: 0)
                    _ = ConvTests.backwardInput(ctx, s, w, dy)
                    XCTAssertLessThanOrEqual(ff_ctx_scratch_bytes(ctx), bound,
                                             "\(s) \(String(cString: ff_conv_algo_name(mode))) t\(threads)")
                }
            }
        }
    }

    /// AUTO is a fixed rule: im2col for ineligible or shallow convolutions, Winograd for the
    /// wide 3x3 layers of a VGG; the same answer on every call.
    func testAutoRule() {
        let ctx = ff_ctx_create(2)!
        defer { ff_ctx_destroy(ctx) }
        var first = Shape(128, 3, 32, 32, 128, 3, 3, 1, 1, 1, 1, 1).desc
        var narrow = Shape(128, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1).desc
        var small = Shape(4, 64, 16, 16, 64, 3, 3, 1, 1, 1, 1, 1).desc
        var strided = Shape(128, 256, 16, 16, 256, 3, 3, 2, 2, 1, 1, 1).desc
        var grouped = Shape(128, 256, 16, 16, 256, 3, 3, 1, 1, 1, 1, 2).desc
        var wide = Shape(128, 256, 16, 16, 256, 3, 3, 1, 1, 1, 1, 1).desc
        XCTAssertEqual(ff_conv2d_algo(ctx, &first, 0), Int32(FF_CONV_ALGO_IM2COL))
        XCTAssertEqual(ff_conv2d_algo(ctx, &narrow, 0), Int32(FF_CONV_ALGO_IM2COL), "too few channels")
        XCTAssertEqual(ff_conv2d_algo(ctx, &small, 1), Int32(FF_CONV_ALGO_IM2COL), "too little work per call")
        XCTAssertEqual(ff_conv2d_algo(ctx, &strided, 0), Int32(FF_CONV_ALGO_IM2COL))
        XCTAssertEqual(ff_conv2d_algo(ctx, &grouped, 1), Int32(FF_CONV_ALGO_IM2COL))
        let choice = ff_conv2d_algo(ctx, &wide, 0)
        XCTAssert([FF_CONV_ALGO_WINOGRAD_F2, FF_CONV_ALGO_WINOGRAD_F4].map(Int32.init).contains(choice))
        XCTAssertEqual(ff_conv2d_algo(ctx, &wide, 0), choice)
        // Where bf16 can run (AVX512_BF16, SIMD level not capped).
        if ff_ctx_set_precision(ctx, Int32(FF_PRECISION_BF16)) == 0 {
            XCTAssert([FF_CONV_ALGO_IM2COL, FF_CONV_ALGO_WINOGRAD_F2].map(Int32.init).contains(ff_conv2d_algo(ctx, &wide, 0)),
                      "bf16 never picks F4 by itself")
        }
        // Forcing Winograd on an ineligible descriptor falls back to im2col.
        ff_ctx_set_conv_algo(ctx, Int32(FF_CONV_ALGO_WINOGRAD_F4))
        XCTAssertEqual(ff_conv2d_algo(ctx, &strided, 0), Int32(FF_CONV_ALGO_IM2COL))
        XCTAssertEqual(String(cString: ff_conv_algo_name(Int32(FF_CONV_ALGO_WINOGRAD_F4))), "winograd-f4")
    }

    /// MEASURE picks some algorithm, remembers it per descriptor, and leaves the results
    /// (including accumulate = 1) as if the chosen algorithm had run once.
    func testMeasureMode() {
        let s = Shape(2, 20, 8, 8, 24, 3, 3, 1, 1, 1, 1, 1)
        let x = randomFloats(s.xCount, seed: 41), w = randomFloats(s.wCount, seed: 42)
        let b = randomFloats(s.co, seed: 43), dy = randomFloats(s.yCount, seed: 44)
        let dwInit = randomFloats(s.wCount, seed: 45), dbInit = randomFloats(s.co, seed: 46)
        let ctx = Self.context(threads: 2, simd: ff_cpu_simd_level(), algo: Int32(FF_CONV_ALGO_MEASURE))
        defer { ff_ctx_destroy(ctx) }
        let y = ConvTests.forward(ctx, s, x, w, b)
        let (dwA, dbA) = ConvTests.backwardWeight(ctx, s, x, dy, dwInit: dwInit, dbInit: dbInit, accumulate: 1)
        var d = s.desc
        let fwd = ff_conv2d_algo(ctx, &d, 0), wg = ff_conv2d_algo(ctx, &d, 1)
        XCTAssert((1...4).contains(fwd) && (1...4).contains(wg), "measured \(fwd) \(wg)")
        assertRelMax(y, ConvTests.refForward(s, x.doubles, w.doubles, b.doubles), tol: 1e-4, "measured y")
        let g = ConvTests.refBackward(s, x.doubles, w.doubles, dy.doubles)
        assertRelMax(dwA, zip(g.dw, dwInit).map { $0 + Double($1) }, tol: 1e-4, "measured dw accumulate")
        assertClose(dbA!, zip(g.db, dbInit).map { $0 + Double($1) }, rtol: 1e-5, atol: 1e-4, "measured db accumulate")
        // A second call uses the stored choice and repeats the bits.
        XCTAssertEqual(ConvTests.forward(ctx, s, x, w, b).map(\.bitPattern), y.map(\.bitPattern))
    }
}
