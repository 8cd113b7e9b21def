import FFCore
import XCTest

/// Per-channel gating (squeeze-and-excitation's multiply): forward and backward against
/// double references on odd plane sizes, finite differences of a scalar loss, in place,
/// and bit-identical results on every SIMD level and thread count.
final class ChannelScaleTests: XCTestCase {
    let shapes: [(n: Int, c: Int, hw: Int)] = [(1, 1, 1), (2, 3, 7), (3, 5, 49), (2, 17, 1), (4, 8, 1031)]

    func testForwardAndBackwardMatchReference() {
        for (n, c, hw) in shapes {
            let x = randomFloats(n * c * hw, seed: UInt64(hw)), s = randomFloats(n * c, seed: UInt64(c) + 5)
            let dy = randomFloats(n * c * hw, seed: UInt64(n) + 9)
            let y = everyPath("scale forward \(n)x\(c)x\(hw)") { ctx -> [Float] in
                var y = [Float](repeating: .nan, count: x.count)
                ff_channel_scale_forward(ctx, Int32(n), Int32(c), Int32(hw), x, s, &y)
                return y
            }
            let grads = everyPath("scale backward \(n)x\(c)x\(hw)") { ctx -> [[Float]] in
                var dx = [Float](repeating: .nan, count: x.count), ds = [Float](repeating: .nan, count: s.count)
                ff_channel_scale_backward(ctx, Int32(n), Int32(c), Int32(hw), x, s, dy, &dx, &ds)
                return [dx, ds]
            }
            var ey = [Double](), edx = [Double](), eds = [Double]()
            for p in 0..<(n * c) {
                var acc = 0.0
                for k in 0..<hw {
                    ey.append(Double(x[p * hw + k]) * Double(s[p]))
                    edx.append(Double(dy[p * hw + k]) * Double(s[p]))
                    acc += Double(dy[p * hw + k]) * Double(x[p * hw + k])
                }
                eds.append(acc)
            }
            assertClose(y, ey, rtol: 1e-6, atol: 1e-7, "forward")
            assertClose(grads[0], edx, rtol: 1e-6, atol: 1e-7, "dx")
            assertClose(grads[1], eds, rtol: 1e-5, atol: 1e-5, "ds")
        }
    }

    /// L = sum(w * y): dL/dx and dL/ds by central differences of the double forward.
    func testFiniteDifferenceGradients() {
        let (n, c, hw) = (2, 3, 10)
        let x = randomFloats(n * c * hw, seed: 1), s = randomFloats(n * c, seed: 2), w = randomFloats(n * c * hw, seed: 3)
        let ctx = ff_ctx_create(2)!
        defer { ff_ctx_destroy(ctx) }
        var dx = [Float](repeating: 0, count: x.count), ds = [Float](repeating: 0, count: s.count)
        ff_channel_scale_backward(ctx, Int32(n), Int32(c), Int32(hw), x, s, w, &dx, &ds)
        func loss(_ xv: [Double], _ sv: [Double]) -> Double {
            var l = 0.0
            for i in 0..<xv.count { l += Double(w[i]) * xv[i] * sv[i / hw] }
            return l
        }
        assertGradient(dx, at: x.doubles, "dx") { loss($0, s.doubles) }
        assertGradient(ds, at: s.doubles, "ds") { loss(x.doubles, $0) }
    }

    func testInPlaceAndNoInputGradient() {
        let (n, c, hw) = (2, 4, 33)
        let x = randomFloats(n * c * hw, seed: 4), s = randomFloats(n * c, seed: 5), dy = randomFloats(x.count, seed: 6)
        let ctx = ff_ctx_create(3)!
        defer { ff_ctx_destroy(ctx) }
        var y = [Float](repeating: 0, count: x.count)
        ff_channel_scale_forward(ctx, Int32(n), Int32(c), Int32(hw), x, s, &y)
        var inPlace = x
        inPlace.withUnsafeMutableBufferPointer { p in
            ff_channel_scale_forward(ctx, Int32(n), Int32(c), Int32(hw), p.baseAddress, s, p.baseAddress)
        }
        XCTAssertEqual(inPlace, y)
        var ds = [Float](repeating: 0, count: s.count), ds2 = ds, dx = x
        ff_channel_scale_backward(ctx, Int32(n), Int32(c), Int32(hw), x, s, dy, nil, &ds)
        ff_channel_scale_backward(ctx, Int32(n), Int32(c), Int32(hw), x, s, dy, &dx, &ds2)
        XCTAssertEqual(ds, ds2, "ds does not depend on whether dx is wanted")
    }
}
