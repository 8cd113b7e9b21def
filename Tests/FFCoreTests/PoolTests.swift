import FFCore
import XCTest

/// Max / average / RMS pooling with kernel, stride and padding (padded cells excluded),
/// and global average pooling: double references, overlapping windows, finite differences.
final class PoolTests: XCTestCase {
    private struct Geom: CustomStringConvertible {
        var n, c, h, w, kh, kw, sh, sw, ph, pw: Int
        var hOut: Int { (h + 2 * ph - kh) / sh + 1 }
        var wOut: Int { (w + 2 * pw - kw) / sw + 1 }
        var inCount: Int { n * c * h * w }
        var outCount: Int { n * c * hOut * wOut }
        var desc: ff_pool2d_desc {
            ff_pool2d_desc(n: Int32(n), c: Int32(c), h_in: Int32(h), w_in: Int32(w), k_h: Int32(kh), k_w: Int32(kw),
                           stride_h: Int32(sh), stride_w: Int32(sw), pad_h: Int32(ph), pad_w: Int32(pw))
        }
        var description: String { "n\(n) c\(c) \(h)x\(w) k\(kh)x\(kw) s\(sh)x\(sw) p\(ph)x\(pw)" }
        init(_ n: Int, _ c: Int, _ h: Int, _ w: Int, k: Int, s: Int, p: Int) {
            (self.n, self.c, self.h, self.w, kh, kw, sh, sw, ph, pw) = (n, c, h, w, k, k, s, s, p, p)
        }
        init(_ n: Int, _ c: Int, _ h: Int, _ w: Int, kh: Int, kw: Int, sh: Int, sw: Int, ph: Int, pw: Int) {
            (self.n, self.c, self.h, self.w, self.kh, self.kw, self.sh, self.sw, self.ph, self.pw) =
                (n, c, h, w, kh, kw, sh, sw, ph, pw)
        }
    }

    /// Odd maps, windows that do not tile the map, stride 2, padding 0/1, overlapping windows
    /// (stride < kernel), batch 1, rectangular kernels, and one case big enough to be split
    /// over threads.
    private let geoms: [Geom] = [
        Geom(2, 3, 7, 5, k: 2, s: 2, p: 0),
        Geom(1, 2, 7, 5, k: 3, s: 2, p: 1),
        Geom(2, 2, 8, 8, k: 2, s: 2, p: 0),
        Geom(1, 1, 6, 9, k: 3, s: 1, p: 1),
        Geom(3, 2, 5, 7, k: 3, s: 3, p: 0),
        Geom(1, 3, 4, 6, kh: 2, kw: 3, sh: 1, sw: 2, ph: 1, pw: 0),
        Geom(2, 1, 5, 5, k: 5, s: 1, p: 2),
        Geom(8, 16, 16, 16, k: 3, s: 2, p: 1),
        Geom(4, 32, 17, 15, k: 2, s: 2, p: 0),
    ]

    private enum Kind: CaseIterable { case max, avg, rms }

    // MARK: references

    /// In-bounds cells of every output window, as flat indices within the plane.
    private func windows(_ g: Geom) -> [[Int]] {
        var out: [[Int]] = []
        for oh in 0..<g.hOut {
            for ow in 0..<g.wOut {
                var cells: [Int] = []
                for dh in 0..<g.kh {
                    for dw in 0..<g.kw {
                        let h = oh * g.sh - g.ph + dh, w = ow * g.sw - g.pw + dw
                        if h >= 0 && h < g.h && w >= 0 && w < g.w { cells.append(h * g.w + w) }
                    }
                }
                out.append(cells)
            }
        }
        return out
    }

    private func refForward(_ kind: Kind, _ g: Geom, _ x: [Double]) -> (y: [Double], argmax: [Int32]) {
        let wins = windows(g), plane = g.h * g.w
        var y: [Double] = [], am: [Int32] = []
        for p in 0..<(g.n * g.c) {
            for cells in wins {
                let v = cells.map { x[p * plane + $0] }
                switch kind {
                case .max:
                    let m = v.max()!
                    y.append(m)
                    am.append(Int32(cells[v.firstIndex(of: m)!]))
                case .avg: y.append(v.reduce(0, +) / Double(v.count))
                case .rms: y.append(sqrt(v.reduce(0) { $0 + $1 * $1 } / Double(v.count)))
                }
            }
        }
        return (y, am)
    }

    /// dx = d(sum(y * dy))/dx, written out per kind from the definitions in ffcore.h.
    private func refBackward(_ kind: Kind, _ g: Geom, _ x: [Double], _ dy: [Double]) -> [Double] {
        let wins = windows(g), plane = g.h * g.w
        let (y, am) = refForward(kind, g, x)
        var dx = [Double](repeating: 0, count: x.count)
        for p in 0..<(g.n * g.c) {
            for (o, cells) in wins.enumerated() {
                let oi = p * wins.count + o
                switch kind {
                case .max: dx[p * plane + Int(am[oi])] += dy[oi]
                case .avg: for c in cells { dx[p * plane + c] += dy[oi] / Double(cells.count) }
                case .rms:
                    guard y[oi] != 0 else { continue }
                    for c in cells { dx[p * plane + c] += x[p * plane + c] * dy[oi] / (Double(cells.count) * y[oi]) }
                }
            }
        }
        return dx
    }

    // MARK: kernel calls

    private func forward(_ ctx: OpaquePointer, _ kind: Kind, _ g: Geom, _ x: [Float]) -> ([Float], [Int32]) {
        var d = g.desc
        var y = [Float](repeating: .nan, count: g.outCount)
        var am = [Int32](repeating: -7, count: g.outCount)
        switch kind {
        case .max: ff_maxpool2d_forward(ctx, &d, x, &y, &am)
        case .avg: ff_avgpool2d_forward(ctx, &d, x, &y)
        case .rms: ff_rmspool2d_forward(ctx, &d, x, &y)
        }
        return (y, am)
    }

    private func backward(_ ctx: OpaquePointer, _ kind: Kind, _ g: Geom, _ x: [Float], _ dy: [Float]) -> [Float] {
        var d = g.desc
        let (y, am) = forward(ctx, kind, g, x)
        var dx = [Float](repeating: .nan, count: g.inCount) // must be overwritten everywhere
        switch kind {
        case .max: ff_maxpool2d_backward(ctx, &d, dy, am, &dx)
        case .avg: ff_avgpool2d_backward(ctx, &d, dy, &dx)
        case .rms: ff_rmspool2d_backward(ctx, &d, x, y, dy, &dx)
        }
        return dx
    }

    /// Inputs for RMS stay away from 0 so that y is never near its non-differentiable zero.
    private func input(_ kind: Kind, _ count: Int, seed: UInt64) -> [Float] {
        let x = randomFloats(count, seed: seed)
        return kind == .rms ? x.map { $0 < 0 ? $0 - 0.2 : $0 + 0.2 } : x
    }

    // MARK: tests

    func testOutputSize() {
        var d = Geom(1, 1, 7, 5, k: 2, s: 2, p: 0).desc
        XCTAssertEqual(ff_pool2d_out_h(&d), 3)
        XCTAssertEqual(ff_pool2d_out_w(&d), 2)
        d = Geom(1, 1, 7, 5, k: 3, s: 2, p: 1).desc
        XCTAssertEqual(ff_pool2d_out_h(&d), 4)
        XCTAssertEqual(ff_pool2d_out_w(&d), 3)
        d = Geom(1, 1, 2, 2, k: 3, s: 1, p: 0).desc // window larger than the map
        XCTAssertEqual(ff_pool2d_out_h(&d), 0)
    }

    func testForwardMatchesReference() {
        for kind in Kind.allCases {
            for g in geoms {
                let x = input(kind, g.inCount, seed: UInt64(g.inCount))
                let (y, am) = everyPath("\(kind) forward \(g)") { ctx -> [UInt32] in
                    let (y, am) = forward(ctx, kind, g, x)
                    return y.map(\.bitPattern) + am.map { UInt32(bitPattern: $0) }
                }.split()
                let ref = refForward(kind, g, x.doubles)
                assertClose(y, ref.y, rtol: 1e-6, atol: 1e-7, "\(kind) forward \(g)")
                if kind == .max { XCTAssertEqual(am, ref.argmax, "argmax \(g)") }
            }
        }
    }

    /// A window whose in-bounds cells are all negative: a padded zero must not win, and the
    /// average / RMS divide by the in-bounds count only.
    func testPaddingExcluded() {
        let g = Geom(1, 1, 2, 2, k: 2, s: 1, p: 1)
        let x: [Float] = [-4, -3, -2, -1]
        let ctx = ff_ctx_create(1)!
        defer { ff_ctx_destroy(ctx) }
        let (ymax, am) = forward(ctx, .max, g, x)
        XCTAssertEqual(ymax, [-4, -3, -3, -2, -1, -1, -2, -1, -1])
        XCTAssertEqual(am, [0, 1, 1, 2, 3, 3, 2, 3, 3])
        let (yavg, _) = forward(ctx, .avg, g, x)
        XCTAssertEqual(yavg, [-4, -3.5, -3, -3, -2.5, -2, -2, -1.5, -1])
        let (yrms, _) = forward(ctx, .rms, g, x)
        XCTAssertEqual(yrms[0], 4)
        XCTAssertEqual(yrms[4], Float((30.0 / 4).squareRoot()), accuracy: 1e-6)
    }

    /// As PyTorch: a NaN in a window wins the max, so it reaches the loss check.
    func testMaxPoolPropagatesNaN() {
        for g in [Geom(1, 1, 4, 4, k: 2, s: 2, p: 0), Geom(1, 1, 4, 4, k: 3, s: 1, p: 1)] {
            var x = randomFloats(16, seed: 60)
            x[5] = .nan
            let ctx = ff_ctx_create(1)!
            defer { ff_ctx_destroy(ctx) }
            let (y, am) = forward(ctx, .max, g, x)
            let expectedNaN = refForward(.avg, g, x.doubles).y.map(\.isNaN) // windows containing cell 5
            XCTAssertEqual(y.map(\.isNaN), expectedNaN, "\(g)")
            for (o, isNaN) in expectedNaN.enumerated() where isNaN { XCTAssertEqual(am[o], 5) }
        }
    }

    func testBackwardMatchesReference() {
        for kind in Kind.allCases {
            for g in geoms {
                let x = input(kind, g.inCount, seed: UInt64(g.inCount) + 1)
                let dy = randomFloats(g.outCount, seed: UInt64(g.outCount) + 2)
                let dx = everyPath("\(kind) backward \(g)") { ctx in
                    backward(ctx, kind, g, x, dy).map(\.bitPattern)
                }.map(Float.init(bitPattern:))
                assertClose(dx, refBackward(kind, g, x.doubles, dy.doubles), rtol: 1e-5, atol: 1e-6,
                            "\(kind) backward \(g)")
            }
        }
    }

    func testGradients() {
        let small = [Geom(1, 2, 5, 4, k: 2, s: 2, p: 0), Geom(2, 1, 5, 6, k: 3, s: 2, p: 1),
                     Geom(1, 1, 4, 5, k: 3, s: 1, p: 1)]
        for kind in Kind.allCases {
            for g in small {
                let x = input(kind, g.inCount, seed: 40)
                let r = randomFloats(g.outCount, seed: 41)
                let ctx = ff_ctx_create(3)!
                defer { ff_ctx_destroy(ctx) }
                let dx = backward(ctx, kind, g, x, r)
                assertGradient(dx, at: x.doubles, "\(kind) \(g)") { xs in
                    zip(refForward(kind, g, xs).y, r).reduce(0) { $0 + $1.0 * Double($1.1) }
                }
            }
        }
    }

    func testRMSZeroOutputGivesZeroGradient() {
        let g = Geom(1, 1, 4, 4, k: 2, s: 2, p: 0)
        var x = randomFloats(16, seed: 50)
        for i in [0, 1, 4, 5] { x[i] = 0 } // the first window is all zero
        let ctx = ff_ctx_create(1)!
        defer { ff_ctx_destroy(ctx) }
        let dx = backward(ctx, .rms, g, x, [1, 1, 1, 1])
        XCTAssert(dx.allSatisfy { $0.isFinite })
        XCTAssertEqual([dx[0], dx[1], dx[4], dx[5]], [0, 0, 0, 0])
    }

    // MARK: global average pooling

    func testGAP() {
        for (n, c, hw) in [(1, 1, 1), (2, 3, 35), (1, 5, 49), (64, 32, 64), (3, 2, 1)] {
            let x = randomFloats(n * c * hw, seed: UInt64(hw))
            let y = everyPath("gap \(n) \(c) \(hw)") { ctx -> [UInt32] in
                var y = [Float](repeating: .nan, count: n * c)
                ff_gap_forward(ctx, Int32(n), Int32(c), Int32(hw), x, &y)
                return y.map(\.bitPattern)
            }.map(Float.init(bitPattern:))
            let ref = (0..<(n * c)).map { r in x[r * hw..<(r + 1) * hw].reduce(0.0) { $0 + Double($1) } / Double(hw) }
            assertClose(y, ref, rtol: 1e-6, atol: 1e-7, "gap \(n) \(c) \(hw)")

            let dy = randomFloats(n * c, seed: UInt64(hw) + 9)
            let dx = everyPath("gap backward \(n) \(c) \(hw)") { ctx -> [UInt32] in
                var dx = [Float](repeating: .nan, count: n * c * hw)
                ff_gap_backward(ctx, Int32(n), Int32(c), Int32(hw), dy, &dx)
                return dx.map(\.bitPattern)
            }.map(Float.init(bitPattern:))
            assertClose(dx, (0..<(n * c * hw)).map { Double(dy[$0 / hw]) / Double(hw) }, rtol: 1e-6, atol: 0,
                        "gap backward \(n) \(c) \(hw)")
            if n * c * hw <= 400 {
                assertGradient(dx, at: x.doubles, "gap \(n) \(c) \(hw)") { xs in
                    (0..<(n * c)).reduce(0.0) { s, r in
                        s + xs[r * hw..<(r + 1) * hw].reduce(0, +) / Double(hw) * Double(dy[r])
                    }
                }
            }
        }
    }
}

private extension Array where Element == UInt32 {
    /// Splits [y bits..., argmax bits...] (equal halves) back into values and indices.
    func split() -> ([Float], [Int32]) {
        let half = count / 2
        return (self[..<half].map(Float.init(bitPattern:)), self[half...].map { Int32(bitPattern: $0) })
    }
}
