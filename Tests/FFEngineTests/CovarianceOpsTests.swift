import FFEngine
import XCTest

/// The Swift wrapper of the covariance goodness kernel: the level rule it reports is the
/// kernel's, shapes follow from it, saved projections and accumulate reach the kernel.
/// (The kernel's numerics are tested in FFCoreTests/CovGoodnessTests.)
final class CovarianceOpsTests: XCTestCase {
    let ctx = ComputeContext(threads: 2)

    func testLevelsAndShapes() {
        XCTAssertEqual(Ops.covarianceLevels([1, 2, 4], height: 3, width: 5), [1, 2, 3])
        XCTAssertEqual(Ops.covarianceLevels([1, 2, 4], height: 2, width: 2), [1, 2])
        XCTAssertEqual(Ops.covarianceLevels([4, 1, 4], height: 8, width: 8), [4, 1])
        XCTAssertEqual(Ops.covarianceGoodnessCount(directions: 64, levels: Ops.defaultCovarianceLevels, height: 8, width: 8),
                       64 * 21)
        XCTAssertEqual(Ops.covarianceGoodnessCount(directions: 3, levels: [1, 2, 4], height: 3, width: 5), 3 * 14)
    }

    func testForwardBackwardThroughTheWrapper() {
        var rng = RNG(seed: 1, stream: 2)
        let u = Ops.covarianceDirections(count: 5, channels: 7, rng: &rng)
        XCTAssertEqual(u.shape, [5, 7])
        let y = Tensor(uninitialized: [3, 7, 6, 5])
        rng.fillUniform(y, low: 0, high: 1)
        let z = Tensor(uninitialized: [3, 5, 6, 5])
        let e = Ops.covarianceGoodness(ctx, y, directions: u, projections: z)
        XCTAssertEqual(e.shape, [3, 5 * (1 + 4 + 16)])
        XCTAssertEqual(Ops.covarianceGoodness(ctx, y, directions: u).array, e.array)
        // Level 1 is the mean of z^2 over the map.
        let zk = z.array[0..<30]
        XCTAssertEqual(Double(e[0]), zk.reduce(0.0) { $0 + Double($1 * $1) } / 30, accuracy: 1e-5)

        let de = Tensor(uninitialized: e.shape)
        rng.fillUniform(de, low: -1, high: 1)
        let dy = Ops.covarianceGoodnessBackward(ctx, y: y, directions: u, de: de)
        let dyz = Ops.covarianceGoodnessBackward(ctx, y: nil, directions: u, de: de, projections: z)
        XCTAssertEqual(dyz.shape, y.shape)
        for i in 0..<dy.count { XCTAssertEqual(dy[i], dyz[i], accuracy: 1e-5 * max(1, abs(dy[i]))) }
        let base = Tensor(filled: 0.25, shape: y.shape)
        _ = Ops.covarianceGoodnessBackward(ctx, y: y, directions: u, de: de, into: base, accumulate: true)
        for i in 0..<dy.count { XCTAssertEqual(base[i], dy[i] + 0.25, accuracy: 1e-5 * max(1, abs(dy[i]))) }
    }
}
