import FFFuzz
import Foundation
import XCTest

/// CI's bounded fuzz pass: every target runs its corpus (fuzz/corpus) and seeded mutations
/// of it. A crash fails the whole test run. FFREPRO_FUZZ_SECONDS (default 3 per target) and
/// FFREPRO_FUZZ_ITERATIONS bound it; `make fuzz` runs libFuzzer for longer.
final class FuzzSmokeTests: XCTestCase {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../fuzz/corpus").standardizedFileURL

    override class func tearDown() { FuzzTargets.cleanUp() }

    func testEveryTargetSurvivesMutatedInputs() throws {
        let env = ProcessInfo.processInfo.environment
        let seconds = env["FFREPRO_FUZZ_SECONDS"].flatMap(Double.init) ?? 3
        let iterations = env["FFREPRO_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 4000
        for target in FuzzTargets.all {
            let seeds = FuzzRunner.seeds(FuzzSmokeTests.corpus, target: target)
            XCTAssertFalse(seeds.isEmpty, "no corpus for \(target) in \(FuzzSmokeTests.corpus.path)")
            let n = FuzzRunner.run(target, seeds: seeds, iterations: iterations, seconds: seconds, seed: 12345)
            XCTAssertGreaterThanOrEqual(n, seeds.count, target)
            print("fuzz smoke \(target): \(n) executions")
        }
    }

    /// The committed corpus is what `ffrepro-fuzz make-corpus` writes (regenerate it when the
    /// formats change), and its seeds are accepted by their parsers where that is testable.
    func testCorpusSeedsAreValidInputs() throws {
        let fresh = FileManager.default.temporaryDirectory.appendingPathComponent("ffcorpus-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: fresh) }
        try Corpus.write(to: fresh)
        for target in ["png", "jpeg", "idx", "tar", "cifar", "index"] {
            XCTAssertEqual(FuzzRunner.seeds(fresh, target: target), FuzzRunner.seeds(FuzzSmokeTests.corpus, target: target), target)
        }
        XCTAssertEqual(FuzzRunner.seeds(fresh, target: "shard").count, 1)
        XCTAssertEqual(FuzzRunner.seeds(fresh, target: "checkpoint").count, 1)
    }
}
