import FFCore
import XCTest

/// ReLU, hard-swish and hard-sigmoid: forward and backward against double references,
/// PyTorch's conventions at the kinks, NaN propagation, in-place calls, and
/// finite-difference gradients.
final class ActivationTests: XCTestCase {
    private typealias Forward = (OpaquePointer?, Int, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?) -> Void
    private typealias Backward = (OpaquePointer?, Int, UnsafePointer<Float>?, UnsafePointer<Float>?,
                                  UnsafeMutablePointer<Float>?) -> Void

    private struct Kind {
        let name: String
        let forward: Forward
        let backward: Backward
        let f: (Double) -> Double
        let df: (Double) -> Double // PyTorch's derivative, including its choice at the kinks
        let kinks: [Double]
    }

    private let kinds: [Kind] = [
        Kind(name: "relu", forward: ff_relu_forward, backward: ff_relu_backward,
             f: { max($0, 0) }, df: { $0 > 0 ? 1 : 0 }, kinks: [0]),
        Kind(name: "hardswish", forward: ff_hardswish_forward, backward: ff_hardswish_backward,
             f: { $0 * min(max($0 + 3, 0), 6) / 6 },
             df: { $0 < -3 ? 0 : ($0 <= 3 ? $0 / 3 + 0.5 : 1) }, kinks: [-3, 3]),
        Kind(name: "hardsigmoid", forward: ff_hardsigmoid_forward, backward: ff_hardsigmoid_backward,
             f: { min(max($0 + 3, 0), 6) / 6 }, df: { $0 > -3 && $0 < 3 ? 1.0 / 6 : 0 }, kinks: [-3, 3]),
    ]

    private let lengths = [1, 15, 16, 37, 1003, 100_003]

    /// Inputs over [-5, 5] with the kink points themselves mixed in.
    private func inputs(_ len: Int, seed: UInt64) -> [Float] {
        var x = randomFloats(len, seed: seed, lo: -5, hi: 5)
        let special: [Float] = [-3, 3, 0, -0.0, -2.999, 3.001, 5.5, -6]
        for (i, v) in special.enumerated() where i * 7 < len { x[i * 7] = v }
        return x
    }

    func testForwardMatchesReference() {
        for k in kinds {
            for len in lengths {
                let x = inputs(len, seed: UInt64(len))
                let y = everyPath("\(k.name) forward \(len)") { ctx in
                    var y = [Float](repeating: .nan, count: len)
                    k.forward(ctx, len, x, &y)
                    return y
                }
                assertClose(y, x.map { k.f(Double($0)) }, rtol: 1e-6, atol: 1e-7, "\(k.name) forward \(len)")
            }
        }
    }

    func testBackwardMatchesReference() {
        for k in kinds {
            for len in lengths {
                let x = inputs(len, seed: UInt64(len) + 100)
                let dy = randomFloats(len, seed: UInt64(len) + 200)
                let dx = everyPath("\(k.name) backward \(len)") { ctx in
                    var dx = [Float](repeating: .nan, count: len)
                    k.backward(ctx, len, x, dy, &dx)
                    return dx
                }
                let expected = (0..<len).map { Double(dy[$0]) * k.df(Double(x[$0])) }
                assertClose(dx, expected, rtol: 1e-6, atol: 1e-7, "\(k.name) backward \(len)")
            }
        }
    }

    /// PyTorch: relu'(0) = 0, hardswish'(-3) = -0.5, hardswish'(3) = 1.5,
    /// hardsigmoid'(+-3) = 0.
    func testKinkConventions() {
        let x: [Float] = [0, -3, 3, -3, 3]
        let expected: [[Float]] = [[0, 0, 1, 0, 1], [0.5, -0.5, 1.5, -0.5, 1.5], [Float(1) / 6, 0, 0, 0, 0]]
        for (k, exp) in zip(kinds, expected) {
            let dx = everyPath("\(k.name) kinks") { ctx in
                var dx = [Float](repeating: .nan, count: x.count)
                k.backward(ctx, x.count, x, [Float](repeating: 1, count: x.count), &dx)
                return dx
            }
            XCTAssertEqual(dx, exp, "\(k.name) at its kinks")
        }
        let dRelu = everyPath("relu at 0") { ctx in
            var dx: [Float] = [7]
            ff_relu_backward(ctx, 1, [0], [1], &dx)
            return dx
        }
        XCTAssertEqual(dRelu, [0])
    }

    func testNaNPropagates() {
        for k in kinds {
            let y = everyPath("\(k.name) NaN") { ctx in
                var y = [Float](repeating: 0, count: 20)
                var x = [Float](repeating: 1, count: 20)
                x[3] = .nan
                x[17] = .nan // tail lane
                k.forward(ctx, 20, x, &y)
                return y
            }
            XCTAssert(y[3].isNaN && y[17].isNaN, "\(k.name) must keep NaN")
            XCTAssertFalse(y[4].isNaN)
        }
    }

    func testInPlace() {
        for k in kinds {
            let len = 1003
            let x0 = inputs(len, seed: 9)
            let dy0 = randomFloats(len, seed: 10)
            var outOfPlace = [Float](repeating: 0, count: len)
            var dxOut = [Float](repeating: 0, count: len)
            let ctx = ff_ctx_create(3)!
            defer { ff_ctx_destroy(ctx) }
            k.forward(ctx, len, x0, &outOfPlace)
            k.backward(ctx, len, x0, dy0, &dxOut)
            var y = x0
            y.withUnsafeMutableBufferPointer { k.forward(ctx, len, $0.baseAddress, $0.baseAddress) }
            XCTAssertEqual(y, outOfPlace, "\(k.name) forward in place")
            var dx = dy0
            dx.withUnsafeMutableBufferPointer { k.backward(ctx, len, x0, $0.baseAddress, $0.baseAddress) }
            XCTAssertEqual(dx, dxOut, "\(k.name) backward in place")
        }
    }

    func testGradients() {
        for k in kinds {
            // Keep every input at least 0.05 away from a kink, where f is not differentiable.
            var x = randomFloats(200, seed: 11, lo: -5, hi: 5)
            for i in x.indices {
                for kink in k.kinks where abs(Double(x[i]) - kink) < 0.05 { x[i] += 0.1 }
            }
            let r = randomFloats(x.count, seed: 12)
            forEachSIMDLevel(threads: 3) { ctx, level in
                var dx = [Float](repeating: 0, count: x.count)
                k.backward(ctx, x.count, x, r, &dx)
                assertGradient(dx, at: x.doubles, "\(k.name) \(level)") { xs in
                    zip(xs, r).reduce(0) { $0 + k.f($1.0) * Double($1.1) }
                }
            }
        }
    }
}
