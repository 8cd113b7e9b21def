import FFCore
import XCTest

/// Convolution kernels against a double-precision reference, finite differences, and
/// the determinism / workspace promises of ffcore.h.
final class ConvTests: XCTestCase {
    struct Shape: CustomStringConvertible {
        var n, c, h, w, co, kh, kw, sh, sw, ph, pw, groups: Int

        init(_ n: Int, _ c: Int, _ h: Int, _ w: Int, _ co: Int, _ kh: Int, _ kw: Int,
             _ sh: Int, _ sw: Int, _ ph: Int, _ pw: Int, _ groups: Int) {
            (self.n, self.c, self.h, self.w, self.co) = (n, c, h, w, co)
            (self.kh, self.kw, self.sh, self.sw, self.ph, self.pw, self.groups) = (kh, kw, sh, sw, ph, pw, groups)
        }

        var oh: Int { (h + 2 * ph - kh) / sh + 1 }
        var ow: Int { (w + 2 * pw - kw) / sw + 1 }
        var cinG: Int { c / groups }
        var coutG: Int { co / groups }
        var xCount: Int { n * c * h * w }
        var wCount: Int { co * cinG * kh * kw }
        var yCount: Int { n * co * oh * ow }
        var desc: ff_conv2d_desc {
            ff_conv2d_desc(n: Int32(n), c_in: Int32(c), h_in: Int32(h), w_in: Int32(w), c_out: Int32(co),
                           k_h: Int32(kh), k_w: Int32(kw), stride_h: Int32(sh), stride_w: Int32(sw),
                           pad_h: Int32(ph), pad_w: Int32(pw), groups: Int32(groups))
        }
        var description: String {
            "n\(n) \(c)->\(co) \(h)x\(w) k\(kh)x\(kw) s\(sh)x\(sw) p\(ph)x\(pw) g\(groups)"
        }
    }

    /// Shapes chosen to hit every code path: odd sizes, strides, padding wider than the
    /// kernel, groups, depthwise (with a channel multiplier), pointwise, single-image
    /// tiles split into row bands (HW >= 512, or few images for the threads), and
    /// multi-image tiles (HW < 256).
    static let shapes: [Shape] = [
        Shape(2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1),
        Shape(3, 4, 9, 8, 5, 3, 3, 2, 2, 1, 1, 1),
        Shape(2, 3, 6, 7, 7, 5, 5, 1, 1, 0, 0, 1),
        Shape(2, 4, 5, 5, 6, 5, 5, 1, 1, 2, 2, 2),
        Shape(4, 6, 6, 6, 6, 3, 3, 1, 1, 1, 1, 6),
        Shape(2, 4, 7, 6, 8, 3, 3, 2, 2, 1, 1, 4),
        Shape(2, 3, 9, 7, 3, 5, 5, 1, 1, 2, 2, 3),
        Shape(3, 2, 8, 7, 6, 3, 2, 2, 1, 0, 1, 2),
        Shape(1, 5, 8, 8, 7, 1, 1, 1, 1, 0, 0, 1),
        Shape(30, 3, 7, 5, 5, 3, 3, 1, 1, 1, 1, 1),
        Shape(12, 8, 4, 4, 9, 1, 1, 1, 1, 0, 0, 1),
        Shape(20, 4, 4, 4, 6, 3, 3, 1, 1, 1, 1, 2),
        Shape(2, 3, 16, 16, 5, 3, 3, 1, 1, 1, 1, 1),
        Shape(1, 2, 17, 16, 3, 3, 3, 1, 1, 1, 1, 1),
        Shape(2, 3, 16, 17, 4, 1, 1, 1, 1, 0, 0, 1),
        Shape(3, 4, 8, 9, 6, 1, 1, 2, 2, 0, 0, 2),
        Shape(2, 3, 6, 5, 4, 3, 2, 1, 2, 0, 1, 1),
        Shape(5, 2, 5, 5, 3, 3, 3, 3, 3, 2, 2, 1),
        Shape(2, 2, 3, 4, 3, 2, 2, 1, 1, 3, 3, 1),
        Shape(3, 1, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1),
        Shape(2, 3, 5, 1, 2, 3, 1, 1, 1, 1, 0, 1),
        Shape(1, 4, 3, 3, 4, 3, 3, 1, 1, 1, 1, 4),
        Shape(2, 2, 24, 24, 3, 3, 3, 1, 1, 1, 1, 1),
        Shape(3, 3, 24, 22, 4, 1, 1, 1, 1, 0, 0, 1),
        Shape(2, 2, 47, 46, 3, 3, 3, 2, 2, 1, 1, 1),
        Shape(1, 1, 30, 30, 2, 5, 5, 1, 1, 2, 2, 1),
    ]

    // MARK: reference (double precision, straight from the definition)

    static func refForward(_ s: Shape, _ x: [Double], _ w: [Double], _ b: [Double]?) -> [Double] {
        var y = [Double](repeating: 0, count: s.yCount)
        x.withUnsafeBufferPointer { x in
            w.withUnsafeBufferPointer { w in
                y.withUnsafeMutableBufferPointer { y in
                    for n in 0..<s.n {
                        for co in 0..<s.co {
                            let gi = co / s.coutG
                            for oh in 0..<s.oh {
                                for ow in 0..<s.ow {
                                    var acc = b?[co] ?? 0
                                    for cg in 0..<s.cinG {
                                        let ci = gi * s.cinG + cg
                                        for i in 0..<s.kh {
                                            let ih = oh * s.sh - s.ph + i
                                            if ih < 0 || ih >= s.h { continue }
                                            for j in 0..<s.kw {
                                                let iw = ow * s.sw - s.pw + j
                                                if iw < 0 || iw >= s.w { continue }
                                                acc += w[((co * s.cinG + cg) * s.kh + i) * s.kw + j]
                                                    * x[((n * s.c + ci) * s.h + ih) * s.w + iw]
                                            }
                                        }
                                    }
                                    y[((n * s.co + co) * s.oh + oh) * s.ow + ow] = acc
                                }
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// The adjoint of refForward: (dx, dw, dbias) for an output gradient dy.
    static func refBackward(_ s: Shape, _ x: [Double], _ w: [Double], _ dy: [Double])
        -> (dx: [Double], dw: [Double], db: [Double]) {
        var dx = [Double](repeating: 0, count: s.xCount)
        var dw = [Double](repeating: 0, count: s.wCount)
        var db = [Double](repeating: 0, count: s.co)
        x.withUnsafeBufferPointer { x in
            w.withUnsafeBufferPointer { w in
                dy.withUnsafeBufferPointer { dy in
                    dx.withUnsafeMutableBufferPointer { dx in
                        dw.withUnsafeMutableBufferPointer { dw in
                            for n in 0..<s.n {
                                for co in 0..<s.co {
                                    let gi = co / s.coutG
                                    for oh in 0..<s.oh {
                                        for ow in 0..<s.ow {
                                            let g = dy[((n * s.co + co) * s.oh + oh) * s.ow + ow]
                                            db[co] += g
                                            for cg in 0..<s.cinG {
                                                let ci = gi * s.cinG + cg
                                                for i in 0..<s.kh {
                                                    let ih = oh * s.sh - s.ph + i
                                                    if ih < 0 || ih >= s.h { continue }
                                                    for j in 0..<s.kw {
                                                        let iw = ow * s.sw - s.pw + j
                                                        if iw < 0 || iw >= s.w { continue }
                                                        let wi = ((co * s.cinG + cg) * s.kh + i) * s.kw + j
                                                        let xi = ((n * s.c + ci) * s.h + ih) * s.w + iw
                                                        dw[wi] += g * x[xi]
                                                        dx[xi] += g * w[wi]
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx, dw, db)
    }

    // MARK: calls into FFCore

    static func forward(_ ctx: OpaquePointer, _ s: Shape, _ x: [Float], _ w: [Float], _ b: [Float]?,
                        flags: UInt32 = 0) -> [Float] {
        var d = s.desc
        var y = [Float](repeating: .nan, count: s.yCount)
        if let b {
            ff_conv2d_forward(ctx, &d, x, w, b, &y, flags)
        } else {
            ff_conv2d_forward(ctx, &d, x, w, nil, &y, flags)
        }
        return y
    }

    /// dw / dbias start from `dwInit` / `dbInit` (relevant with accumulate = 1).
    static func backwardWeight(_ ctx: OpaquePointer, _ s: Shape, _ x: [Float], _ dy: [Float],
                               dwInit: [Float], dbInit: [Float]?, accumulate: Int32) -> ([Float], [Float]?) {
        var d = s.desc
        var dw = dwInit
        if var db = dbInit {
            ff_conv2d_backward_weight(ctx, &d, x, dy, &dw, &db, accumulate)
            return (dw, db)
        }
        ff_conv2d_backward_weight(ctx, &d, x, dy, &dw, nil, accumulate)
        return (dw, nil)
    }

    static func backwardInput(_ ctx: OpaquePointer, _ s: Shape, _ w: [Float], _ dy: [Float]) -> [Float] {
        var d = s.desc
        var dx = [Float](repeating: .nan, count: s.xCount) // must be overwritten
        ff_conv2d_backward_input(ctx, &d, w, dy, &dx)
        return dx
    }

    /// Float rounding grows with the number of terms in each sum.
    static func atol(_ terms: Int) -> Double { 2e-5 * Double(max(terms, 1)).squareRoot() + 1e-6 * Double(terms) }

    // MARK: tests

    func testOutputSizeAndCheck() {
        var d = Shape(2, 3, 7, 5, 4, 3, 3, 2, 1, 1, 0, 1).desc
        XCTAssertEqual(ff_conv2d_out_h(&d), 4)
        XCTAssertEqual(ff_conv2d_out_w(&d), 3)
        XCTAssertNil(ff_conv2d_check(&d))
        let bad: [Shape] = [
            Shape(0, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1), // no images
            Shape(2, 3, 7, 5, 4, 3, 3, 0, 1, 1, 1, 1), // zero stride
            Shape(2, 3, 7, 5, 4, 3, 3, 1, 1, -1, 1, 1), // negative pad
            Shape(2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 2), // c_in not a multiple of groups
            Shape(2, 4, 7, 5, 3, 3, 3, 1, 1, 1, 1, 2), // c_out not a multiple of groups
            Shape(2, 3, 2, 5, 4, 3, 3, 1, 1, 0, 0, 1), // kernel taller than the input
            Shape(2, 3, 7, 5, 4, 0, 3, 1, 1, 1, 1, 1), // empty kernel
            Shape(2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 0), // zero groups
        ]
        for s in bad {
            var bd = s.desc
            XCTAssertNotNil(ff_conv2d_check(&bd), "\(s) should be rejected")
        }
    }

    /// Forward (bias / no bias / fused ReLU), weight gradient (overwrite, accumulate,
    /// without dbias) and input gradient, at 1 and 3 threads and every SIMD level.
    func testAgainstReference() {
        for (si, s) in Self.shapes.enumerated() {
            let seed = UInt64(100 + si * 10)
            let x = randomFloats(s.xCount, seed: seed)
            let w = randomFloats(s.wCount, seed: seed + 1)
            let b = randomFloats(s.co, seed: seed + 2)
            let dy = randomFloats(s.yCount, seed: seed + 3)
            let dwInit = randomFloats(s.wCount, seed: seed + 4)
            let dbInit = randomFloats(s.co, seed: seed + 5)
            let yRef = Self.refForward(s, x.doubles, w.doubles, b.doubles)
            let yRefNoBias = Self.refForward(s, x.doubles, w.doubles, nil)
            let yRefRelu = yRef.map { max($0, 0) }
            let g = Self.refBackward(s, x.doubles, w.doubles, dy.doubles)
            let dwAcc = zip(g.dw, dwInit).map { $0 + Double($1) }
            let dbAcc = zip(g.db, dbInit).map { $0 + Double($1) }
            let tolY = Self.atol(s.cinG * s.kh * s.kw)
            let tolW = Self.atol(s.n * s.oh * s.ow)
            let tolX = Self.atol(s.coutG * s.kh * s.kw)

            for threads: Int32 in [1, 3] {
                forEachSIMDLevel(threads: threads) { ctx, simd in
                    let tag = "\(s) t\(threads) \(simd)"
                    assertClose(Self.forward(ctx, s, x, w, b), yRef, rtol: 1e-4, atol: tolY, "\(tag) y")
                    assertClose(Self.forward(ctx, s, x, w, nil), yRefNoBias, rtol: 1e-4, atol: tolY, "\(tag) y nobias")
                    assertClose(Self.forward(ctx, s, x, w, b, flags: FF_CONV_RELU), yRefRelu, rtol: 1e-4,
                                atol: tolY, "\(tag) y relu")

                    let (dw, db) = Self.backwardWeight(ctx, s, x, dy, dwInit: dwInit, dbInit: dbInit, accumulate: 0)
                    assertClose(dw, g.dw, rtol: 1e-4, atol: tolW, "\(tag) dw")
                    assertClose(db!, g.db, rtol: 1e-4, atol: tolW, "\(tag) db")
                    let (dwA, dbA) = Self.backwardWeight(ctx, s, x, dy, dwInit: dwInit, dbInit: dbInit, accumulate: 1)
                    assertClose(dwA, dwAcc, rtol: 1e-4, atol: tolW, "\(tag) dw accumulate")
                    assertClose(dbA!, dbAcc, rtol: 1e-4, atol: tolW, "\(tag) db accumulate")
                    let (dwN, _) = Self.backwardWeight(ctx, s, x, dy, dwInit: dwInit, dbInit: nil, accumulate: 0)
                    assertClose(dwN, g.dw, rtol: 1e-4, atol: tolW, "\(tag) dw without dbias")

                    assertClose(Self.backwardInput(ctx, s, w, dy), g.dx, rtol: 1e-4, atol: tolX, "\(tag) dx")
                }
            }
        }
    }

    /// Central differences of L = sum(y * r) through the double reference against the
    /// float backward kernels run with dy = r.
    func testFiniteDifferenceGradients() {
        let shapes: [Shape] = [
            Shape(2, 3, 5, 4, 4, 3, 3, 1, 1, 1, 1, 1),
            Shape(2, 4, 6, 5, 4, 3, 3, 2, 2, 1, 1, 2),
            Shape(2, 3, 5, 5, 6, 3, 3, 1, 1, 1, 1, 3),
            Shape(9, 3, 3, 3, 2, 1, 1, 1, 1, 0, 0, 1),
            Shape(7, 2, 4, 3, 3, 3, 3, 1, 1, 1, 1, 1),
        ]
        let ctx = ff_ctx_create(3)!
        defer { ff_ctx_destroy(ctx) }
        for (si, s) in shapes.enumerated() {
            let seed = UInt64(500 + si * 10)
            let x = randomFloats(s.xCount, seed: seed)
            let w = randomFloats(s.wCount, seed: seed + 1)
            let b = randomFloats(s.co, seed: seed + 2)
            let r = randomFloats(s.yCount, seed: seed + 3)
            let rd = r.doubles
            func loss(_ y: [Double]) -> Double { zip(y, rd).reduce(0) { $0 + $1.0 * $1.1 } }
            let (dw, db) = Self.backwardWeight(ctx, s, x, r, dwInit: w, dbInit: b, accumulate: 0)
            let dx = Self.backwardInput(ctx, s, w, r)
            assertGradient(dx, at: x.doubles, "\(s) dx") { loss(Self.refForward(s, $0, w.doubles, b.doubles)) }
            assertGradient(dw, at: w.doubles, "\(s) dw") { loss(Self.refForward(s, x.doubles, $0, b.doubles)) }
            assertGradient(db!, at: b.doubles, "\(s) db") { loss(Self.refForward(s, x.doubles, w.doubles, $0)) }
        }
    }

    /// Same inputs, same thread count: bit-identical outputs.
    func testDeterminism() {
        let shapes: [Shape] = [
            Shape(30, 3, 7, 5, 5, 3, 3, 1, 1, 1, 1, 1),
            Shape(3, 3, 16, 16, 5, 3, 3, 1, 1, 1, 1, 1),
            Shape(4, 6, 9, 9, 12, 3, 3, 1, 1, 1, 1, 6),
            Shape(12, 8, 4, 4, 9, 1, 1, 1, 1, 0, 0, 1),
        ]
        for (si, s) in shapes.enumerated() {
            let seed = UInt64(900 + si * 10)
            let x = randomFloats(s.xCount, seed: seed)
            let w = randomFloats(s.wCount, seed: seed + 1)
            let b = randomFloats(s.co, seed: seed + 2)
            let dy = randomFloats(s.yCount, seed: seed + 3)
            let zw = [Float](repeating: 0, count: s.wCount), zb = [Float](repeating: 0, count: s.co)
            forEachSIMDLevel(threads: 3) { ctx, simd in
                let y1 = Self.forward(ctx, s, x, w, b, flags: FF_CONV_RELU)
                let (dw1, db1) = Self.backwardWeight(ctx, s, x, dy, dwInit: zw, dbInit: zb, accumulate: 0)
                let dx1 = Self.backwardInput(ctx, s, w, dy)
                let y2 = Self.forward(ctx, s, x, w, b, flags: FF_CONV_RELU)
                let (dw2, db2) = Self.backwardWeight(ctx, s, x, dy, dwInit: zw, dbInit: zb, accumulate: 0)
                let dx2 = Self.backwardInput(ctx, s, w, dy)
                XCTAssertEqual(y1, y2, "\(s) \(simd) y")
                XCTAssertEqual(dw1, dw2, "\(s) \(simd) dw")
                XCTAssertEqual(db1!, db2!, "\(s) \(simd) db")
                XCTAssertEqual(dx1, dx2, "\(s) \(simd) dx")
            }
        }
    }

    /// A fresh context's scratch after all three calls stays within the advertised bound.
    func testWorkspaceBoundHolds() {
        let shapes: [Shape] = [
            Shape(30, 3, 7, 5, 5, 3, 3, 1, 1, 1, 1, 1),
            Shape(2, 3, 16, 16, 5, 3, 3, 1, 1, 1, 1, 1),
            Shape(12, 8, 4, 4, 9, 1, 1, 1, 1, 0, 0, 1),
            Shape(2, 3, 16, 17, 4, 1, 1, 1, 1, 0, 0, 1),
            Shape(2, 4, 7, 6, 8, 3, 3, 2, 2, 1, 1, 4),
            Shape(2, 4, 5, 5, 6, 5, 5, 1, 1, 2, 2, 2),
        ]
        for s in shapes {
            for threads: Int32 in [1, 3] {
                let ctx = ff_ctx_create(threads)!
                defer { ff_ctx_destroy(ctx) }
                var d = s.desc
                let bound = ff_conv2d_workspace_bytes(ctx, &d)
                let x = randomFloats(s.xCount, seed: 1), w = randomFloats(s.wCount, seed: 2)
                let dy = randomFloats(s.yCount, seed: 3)
                _ = Self.forward(ctx, s, x, w, nil)
                _ = Self.backwardWeight(ctx, s, x, dy, dwInit: w, dbInit: [Float](repeating: 0, count: s.co),
                                        accumulate: 0)
                _ = Self.backwardInput(ctx, s, w, dy)
                XCTAssertLessThanOrEqual(ff_ctx_scratch_bytes(ctx), bound, "\(s) t\(threads)")
            }
        }
    }

    /// The im2col part of the bound is max(one image, FF_CONV_TILE_BYTES) per thread; the
    /// rest is the output tile, the dW partial and the dbias partial (see conv.c). With
    /// im2col forced: Winograd has its own bound (WinogradTests).
    func testWorkspaceBoundIsTight() {
        let ctx = ff_ctx_create(2)!
        defer { ff_ctx_destroy(ctx) }
        ff_ctx_set_conv_algo(ctx, Int32(FF_CONV_ALGO_IM2COL))
        let shapes: [Shape] = [
            Shape(128, 128, 32, 32, 128, 3, 3, 1, 1, 1, 1, 1),
            Shape(128, 256, 16, 16, 256, 3, 3, 1, 1, 1, 1, 1),
            Shape(128, 512, 4, 4, 512, 3, 3, 1, 1, 1, 1, 1),
            Shape(128, 2048, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1),
        ]
        for s in shapes {
            var d = s.desc
            let hw = s.oh * s.ow
            let colImage = s.c * s.kh * s.kw * hw * 4
            let col = max(colImage, Int(FF_CONV_TILE_BYTES))
            let outTile = hw >= 256 ? 0 : s.co * (256 + hw) * 4
            let perThread = col + outTile + s.co * s.cinG * s.kh * s.kw * 4 + 8 * s.co + 4 * 64
            XCTAssertLessThanOrEqual(ff_conv2d_workspace_bytes(ctx, &d), 2 * perThread, "\(s)")
        }
    }
}
