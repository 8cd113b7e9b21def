import FFEngine
import XCTest

/// The arithmetic of a parallel layout (no MPI needed): FLOP-balanced stages, and replica
/// shares that reproduce the 1-process micro-batches.
final class LayoutTests: XCTestCase {
    /// The largest part of a brute-force search over all cut positions.
    func bestMax(_ costs: [Int], _ parts: Int) -> Int {
        func go(_ start: Int, _ k: Int) -> Int {
            if k == 1 { return costs[start...].reduce(0, +) }
            var best = Int.max
            for cut in (start + 1)...(costs.count - k + 1) {
                best = min(best, max(costs[start..<cut].reduce(0, +), go(cut, k - 1)))
            }
            return best
        }
        return go(0, parts)
    }

    func testBalanceIsOptimalAndContiguous() {
        var rng = SeededRandom(seed: 3)
        for _ in 0..<200 {
            let n = 1 + rng.below(9)
            let costs = (0..<n).map { _ in 1 + rng.below(100) }
            let parts = 1 + rng.below(n)
            let ranges = ParallelLayout.balance(costs, parts: parts)
            XCTAssertEqual(ranges.count, parts)
            XCTAssertEqual(ranges.first?.lowerBound, 0)
            XCTAssertEqual(ranges.last?.upperBound, n)
            for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
            XCTAssert(ranges.allSatisfy { !$0.isEmpty }, "\(ranges)")
            XCTAssertEqual(ranges.map { costs[$0].reduce(0, +) }.max(), bestMax(costs, parts), "\(costs) in \(parts)")
        }
    }

    /// Replica d's micro-batches are micro-batches d*A ..< (d+1)*A of the 1-process step with
    /// accumulate D*A, for every batch size (including the smaller last batch).
    func testSharesAreTheMicroBatchesOfTheAccumulateRun() {
        for count in 1...40 {
            for replicas in 1...4 {
                for accumulate in 1...3 {
                    let k = replicas * accumulate
                    let m = (count + k - 1) / k
                    let oneProcess = stride(from: 0, to: count, by: m).map { $0..<min($0 + m, count) }
                    var joined: [Range<Int>] = []
                    for d in 0..<replicas {
                        let s = ParallelLayout.share(count: count, replicas: replicas, replica: d, accumulate: accumulate)
                        joined += stride(from: s.rows.lowerBound, to: s.rows.upperBound, by: s.micro).map {
                            $0..<min($0 + s.micro, s.rows.upperBound)
                        }
                        XCTAssertLessThanOrEqual(s.rows.count, s.micro * accumulate)
                    }
                    XCTAssertEqual(joined, oneProcess, "count \(count), \(replicas) replicas, accumulate \(accumulate)")
                }
            }
        }
    }

    func testLayoutErrorsNameTheFix() {
        XCTAssertThrowsError(try ParallelLayout(ranks: 4, stages: 3, blockCosts: [1, 1, 1, 1])) {
            XCTAssertTrue("\($0)".contains("--stages 3 does not divide the 4 ranks"), "\($0)")
        }
        XCTAssertThrowsError(try ParallelLayout(ranks: 2, stages: 2, blockCosts: [5])) {
            XCTAssertTrue("\($0)".contains("needs at least 2 blocks"), "\($0)")
        }
        let l = try! ParallelLayout(ranks: 6, stages: 3, blockCosts: [4, 1, 1, 1, 1])
        XCTAssertEqual(l.replicas, 2)
        XCTAssertEqual(l.stageBlocks, [0..<1, 1..<4, 4..<5])   // largest part 4; ties leave the last stage lighter
        XCTAssertEqual((0..<6).map { l.stage(ofRank: $0) }, [0, 0, 1, 1, 2, 2])
        XCTAssertEqual(l.rank(stage: 2, replica: 1), 5)
    }

    /// Counted costs follow the network's own FLOP count.
    func testBlockCostsAddUpToTheNetworksTrainingMACs() throws {
        var c = RecipeConfig(name: "t", paper: "test", summary: "t", training: "layer-local", dataset: "none",
                             arch: "custom", lr: 1e-3, minLr: 0, weightDecay: 0, epochs: 1, batchSize: 4)
        c.channels = [4, 8, 8]
        c.poolAfter = [1]
        c.pred = "best"
        let net = try Network(ComputeContext(threads: 1), config: c, inputShape: [1, 12, 12], classes: 3)
        XCTAssertEqual(ParallelLayout.blockCosts(net).reduce(0, +), net.trainMACs)
    }
}
