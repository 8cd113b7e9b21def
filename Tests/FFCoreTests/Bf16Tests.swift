import FFCore
import XCTest

/// bf16 compute (AVX512_BF16): the precision switch, the bf16 GEMM against a reference that
/// rounds its inputs to bf16 and sums in double, and bf16 convolutions (im2col and Winograd
/// F2) within a stated tolerance of the fp32 reference. Skipped where the CPU lacks bf16.
final class Bf16Tests: XCTestCase {
    /// Round to nearest even, as the kernels do.
    static func bf16(_ x: Float) -> Double {
        let u = x.bitPattern
        let r = (u &+ 0x7fff &+ ((u >> 16) & 1)) & 0xffff_0000
        return Double(Float(bitPattern: r))
    }

    /// A bf16 context, or a skip where bf16 cannot run: a CPU without AVX512_BF16, or the SIMD
    /// level capped below AVX-512 (FFREPRO_SIMD=avx2/scalar, as when simulating another machine).
    func bf16Context(threads: Int32 = 2) throws -> OpaquePointer {
        let ctx = ff_ctx_create(threads)!
        guard ff_ctx_set_precision(ctx, Int32(FF_PRECISION_BF16)) == 0 else {
            ff_ctx_destroy(ctx)
            throw XCTSkip(ff_cpu_has_bf16() == 0 ? "CPU without AVX512_BF16" : "SIMD level capped below AVX-512 (FFREPRO_SIMD)")
        }
        XCTAssertEqual(ff_ctx_precision(ctx), Int32(FF_PRECISION_BF16))
        return ctx
    }

    func testPrecisionSwitch() {
        let ctx = ff_ctx_create(1)!
        defer { ff_ctx_destroy(ctx) }
        XCTAssertEqual(ff_ctx_precision(ctx), Int32(FF_PRECISION_FP32))
        var c = [Float](repeating: 0, count: 4)
        let a = [Float](repeating: 1, count: 4)
        XCTAssertEqual(ff_gemm_bf16(ctx, 0, 0, 2, 2, 2, a, 2, a, 2, 0, &c, 2), -1, "fp32 context runs no bf16 GEMM")
        XCTAssertEqual(ff_ctx_set_precision(ctx, 7), -1)
        if ff_cpu_has_bf16() != 0 && ff_ctx_simd(ctx) >= Int32(FF_SIMD_AVX512) {
            XCTAssertEqual(ff_ctx_set_precision(ctx, Int32(FF_PRECISION_BF16)), 0)
            ff_ctx_set_simd(ctx, Int32(FF_SIMD_AVX2))
            XCTAssertEqual(ff_ctx_precision(ctx), Int32(FF_PRECISION_FP32), "below AVX-512 falls back to fp32")
            XCTAssertEqual(ff_ctx_set_precision(ctx, Int32(FF_PRECISION_BF16)), -1)
        } else {
            XCTAssertEqual(ff_ctx_set_precision(ctx, Int32(FF_PRECISION_BF16)), -1)
        }
        XCTAssertEqual(ff_ctx_set_precision(ctx, Int32(FF_PRECISION_FP32)), 0)
    }

    /// Every transpose combination, sizes off the 12 x 32 register tile, an odd depth, a depth
    /// above the 512 block and more columns than the 1024 column block; beta 0 and 1. The
    /// products of bf16 values are exact in fp32, so only the fp32 accumulation differs from
    /// the double sum of the rounded inputs.
    func testGemmAgainstRoundedReference() throws {
        let ctx = try bf16Context(threads: 3)
        defer { ff_ctx_destroy(ctx) }
        let sizes = [(1, 1, 1), (13, 33, 7), (25, 70, 513), (12, 1100, 40), (30, 31, 1030)]
        for (si, (m, n, k)) in sizes.enumerated() {
            for transA: Int32 in [0, 1] {
                for transB: Int32 in [0, 1] {
                    for beta: Float in [0, 1] {
                        let seed = UInt64(3000 + si * 20) + UInt64(transA * 2 + transB)
                        let a = randomFloats(m * k, seed: seed), b = randomFloats(k * n, seed: seed + 7)
                        let c0 = randomFloats(m * n, seed: seed + 9)
                        let lda = transA != 0 ? m : k, ldb = transB != 0 ? k : n
                        var c = c0
                        XCTAssertEqual(ff_gemm_bf16(ctx, transA, transB, Int32(m), Int32(n), Int32(k), a, Int32(lda),
                                                    b, Int32(ldb), beta, &c, Int32(n)), 0)
                        var ref = [Double](repeating: 0, count: m * n)
                        for i in 0..<m {
                            for j in 0..<n {
                                var s = beta == 0 ? 0 : Double(c0[i * n + j])
                                for q in 0..<k {
                                    let av = transA != 0 ? a[q * lda + i] : a[i * lda + q]
                                    let bv = transB != 0 ? b[j * ldb + q] : b[q * ldb + j]
                                    s += Self.bf16(av) * Self.bf16(bv)
                                }
                                ref[i * n + j] = s
                            }
                        }
                        // fp32 sums of k terms of size <= 1: error ~ k * 2^-24 * running sum.
                        assertClose(c, ref, rtol: 1e-5, atol: 2e-7 * Double(k) + 1e-6,
                                    "bf16 gemm \(m)x\(n)x\(k) tA\(transA) tB\(transB) beta \(beta)")
                    }
                }
            }
        }
    }

    /// bf16 convolutions stay within a stated tolerance of the fp32 (double) reference:
    /// max|err| <= 1.5e-2 x max|y| for im2col and 3e-2 for Winograd F2 (measured on these
    /// inputs: 2e-3 and 5e-3; F4/F6 in bf16 reach 5-10e-2 and are never chosen
    /// automatically). 1 and 3 threads agree bit for bit.
    func testConvolutionWithinTolerance() throws {
        ff_ctx_destroy(try bf16Context())  // skips where bf16 cannot run
        typealias Shape = ConvTests.Shape
        let shapes = [Shape(2, 20, 9, 7, 24, 3, 3, 1, 1, 1, 1, 1), Shape(3, 5, 8, 8, 6, 3, 3, 2, 2, 1, 1, 1),
                      Shape(1, 33, 16, 16, 17, 3, 3, 1, 1, 1, 1, 1), Shape(2, 8, 6, 6, 8, 1, 1, 1, 1, 0, 0, 2)]
        let algos: [(Int32, Double)] = [(Int32(FF_CONV_ALGO_IM2COL), 1.5e-2), (Int32(FF_CONV_ALGO_WINOGRAD_F2), 3e-2)]
        for (si, s) in shapes.enumerated() {
            let seed = UInt64(3500 + si * 10)
            let x = randomFloats(s.xCount, seed: seed), w = randomFloats(s.wCount, seed: seed + 1)
            let b = randomFloats(s.co, seed: seed + 2), dy = randomFloats(s.yCount, seed: seed + 3)
            let yRef = ConvTests.refForward(s, x.doubles, w.doubles, b.doubles)
            let g = ConvTests.refBackward(s, x.doubles, w.doubles, dy.doubles)
            for (algo, tol) in algos {
                var first: [[Float]]?
                for threads: Int32 in [1, 3] {
                    let ctx = try bf16Context(threads: threads)
                    defer { ff_ctx_destroy(ctx) }
                    ff_ctx_set_conv_algo(ctx, algo)
                    let tag = "\(s) \(String(cString: ff_conv_algo_name(algo))) bf16 t\(threads)"
                    let y = ConvTests.forward(ctx, s, x, w, b, flags: FF_CONV_RELU)
                    let (dw, db) = ConvTests.backwardWeight(ctx, s, x, dy, dwInit: w, dbInit: b, accumulate: 0)
                    assertRelMax(y, yRef.map { max($0, 0) }, tol: tol, "\(tag) y")
                    assertRelMax(dw, g.dw, tol: tol, "\(tag) dw")
                    assertClose(db!, g.db, rtol: 1e-5, atol: ConvTests.atol(s.n * s.oh * s.ow), "\(tag) db (fp32)")
                    // The forward pass is bit-identical across thread counts; the weight gradient
                    // too with Winograd (im2col sums per-thread partials: fixed thread count only).
                    var d = s.desc
                    let same = ff_conv2d_algo(ctx, &d, 1) == Int32(FF_CONV_ALGO_IM2COL) ? [y] : [y, dw]
                    if let f = first {
                        XCTAssert(zip(f, same).allSatisfy { $0.map(\.bitPattern) == $1.map(\.bitPattern) },
                                  "\(tag): 1 and 3 threads differ")
                    } else {
                        first = same
                    }
                    // The input gradient stays fp32 (bit-identical to an fp32 context).
                    let ctx32 = ff_ctx_create(threads)!
                    defer { ff_ctx_destroy(ctx32) }
                    XCTAssert(ConvTests.backwardInput(ctx, s, w, dy) == ConvTests.backwardInput(ctx32, s, w, dy), "\(tag) dx")
                }
            }
        }
    }
}
