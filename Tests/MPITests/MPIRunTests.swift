import FFEngine
import Foundation
import XCTest

/// Whole runs of `repro` under `mpirun -np K` compared with single-process runs on the same
/// data: data parallelism equals 1 process within 1e-5 relative, a pipeline is
/// bit-identical, checkpoints move between rank counts, evaluation splits, and a killed
/// rank stops the job with a message instead of a hang. Every command has a time limit.
final class MPIRunTests: XCTestCase {
    override class func tearDown() {
        try? FileManager.default.removeItem(at: MPIJob.dataset.deletingLastPathComponent())
        super.tearDown()
    }

    var dirs: [URL] = []

    override func tearDown() {
        for d in dirs { try? FileManager.default.removeItem(at: d) }
        dirs = []
        super.tearDown()
    }

    func dir(_ name: String) -> URL {
        let d = MPIJob.tempDir(name)
        dirs.append(d)
        return d
    }

    /// A narrow 3- or 4-layer stack of the recipe, 2 epochs of 8 steps.
    func args(_ recipe: String, out: URL, layers: Int = 3, epochs: Int = 2, extra: [String] = []) -> [String] {
        ["run", recipe, "--data", MPIJob.dataset.path, "--out", out.path, "--epochs", String(epochs), "--batch-size", "16",
         "--threads", "1", "--set", "arch=custom", "--set", layers == 3 ? "channels=[4,8,8]" : "channels=[4,8,8,8]",
         "--set", "pool_after=[1,2]", "--set", "dataset=mnist", "--set", "augment=none"] + extra
    }

    func single(_ a: [String], file: StaticString = #filePath, line: UInt = #line) {
        let r = MPIJob.single(a)
        XCTAssertEqual(r.status, 0, "repro \(a.joined(separator: " ")):\n\(r.output)", file: file, line: line)
    }

    func mpi(_ ranks: Int, _ a: [String], file: StaticString = #filePath, line: UInt = #line) {
        let r = MPIJob.mpi(ranks, a)
        XCTAssertFalse(r.timedOut, "mpirun -np \(ranks) timed out:\n\(r.output)", file: file, line: line)
        XCTAssertEqual(r.status, 0, "mpirun -np \(ranks) repro \(a.joined(separator: " ")):\n\(r.output)", file: file, line: line)
    }

    func last(_ d: URL) -> URL { d.appendingPathComponent("last.h5") }

    static let runningStatistics: (String) -> Bool = { $0.hasSuffix(".running_mean") || $0.hasSuffix(".running_var") }

    // MARK: data parallel

    /// ASGE has no BatchNorm: 2 replicas equal the 1-process run at the same global batch.
    func testDataParallelASGEEqualsOneProcess() throws {
        try MPIJob.require()
        let one = dir("asge-1"), two = dir("asge-dp")
        single(args("asge-mnist", out: one))
        mpi(2, args("asge-mnist", out: two, extra: ["--parallel", "data"]))
        let worst = try MPIJob.assertClose(last(one), last(two))
        XCTAssertGreaterThan(worst, 0, "expected the different summation order to show (else the test compares nothing)")
    }

    /// With BatchNorm each replica's part is its own BN batch: 2 replicas equal the
    /// 1-process run with accumulate 2 (parameters and optimizer state; the running
    /// statistics are averaged over the replicas instead of chained).
    func testDataParallelBackpropWithBatchNormEqualsAccumulateRun() throws {
        try MPIJob.require()
        let acc = dir("bp-acc2"), two = dir("bp-dp")
        single(args("bp-vgg8-cifar100", out: acc, extra: ["--accumulate", "2"]))
        mpi(2, args("bp-vgg8-cifar100", out: two))
        try MPIJob.assertClose(last(acc), last(two), skip: MPIRunTests.runningStatistics)
        let a = try MPIJob.contents(last(acc)), b = try MPIJob.contents(last(two))
        XCTAssertTrue(a.floats.keys.contains { MPIRunTests.runningStatistics($0) }, "the recipe has no BatchNorm")
        for (n, v) in b.floats where MPIRunTests.runningStatistics(n) { XCTAssert(v.allSatisfy(\.isFinite), n) }
    }

    /// The fixed-order sum on 3 replicas (uneven parts): the same bits run to run, and
    /// within tolerance of one process.
    func testOrderedReductionIsReproducible() throws {
        try MPIJob.require()
        let one = dir("ord-1"), a = dir("ord-a"), b = dir("ord-b")
        single(args("asge-mnist", out: one))
        mpi(3, args("asge-mnist", out: a, extra: ["--reduce", "ordered"]))
        mpi(3, args("asge-mnist", out: b, extra: ["--reduce", "ordered"]))
        try MPIJob.assertBitIdentical(last(a), last(b))
        try MPIJob.assertClose(last(one), last(a))
    }

    // MARK: pipeline

    func testPipelineASGEIsBitIdentical() throws {
        try MPIJob.require()
        let one = dir("pipe-asge-1"), two = dir("pipe-asge")
        single(args("asge-mnist", out: one))
        mpi(2, args("asge-mnist", out: two, extra: ["--parallel", "pipeline"]))
        try MPIJob.assertBitIdentical(last(one), last(two))
        try MPIJob.assertBitIdentical(one.appendingPathComponent("best.h5"), two.appendingPathComponent("best.h5"))
    }

    /// DTG-FF: learned temperatures in every stage, a BatchNorm head on the last stage fed by
    /// both stages' features; with accumulate 2 the micro-batches stream between stages.
    func testPipelineDTGFFIsBitIdentical() throws {
        try MPIJob.require()
        let one = dir("pipe-dtg-1"), two = dir("pipe-dtg")
        single(args("dtgff-cifar10", out: one, layers: 4, extra: ["--accumulate", "2"]))
        mpi(2, args("dtgff-cifar10", out: two, layers: 4, extra: ["--accumulate", "2", "--parallel", "pipeline"]))
        try MPIJob.assertBitIdentical(last(one), last(two))
    }

    /// BiCovG: covariance goodness, alignment layers at every block input (also at the stage
    /// boundary), and the Logistic Fusion gates on the last stage fed by both stages' scores.
    func testPipelineBiCovGIsBitIdentical() throws {
        try MPIJob.require()
        let one = dir("pipe-bicovg-1"), two = dir("pipe-bicovg")
        let extra = ["--set", "cov_directions=4", "--set", "pool_after=[1,3]"]
        single(args("bicovg-tinyimagenet", out: one, layers: 4, extra: extra))
        mpi(2, args("bicovg-tinyimagenet", out: two, layers: 4, extra: extra + ["--parallel", "pipeline"]))
        try MPIJob.assertBitIdentical(last(one), last(two))
    }

    /// 2 stages x 2 replicas equal one process with accumulate 2 (the replicas' parts are
    /// the micro-batches); only the head's BatchNorm statistics are averaged instead.
    func testPipelineOfDataParallelStages() throws {
        try MPIJob.require()
        let one = dir("hyb-1"), four = dir("hyb-4")
        single(args("dtgff-cifar10", out: one, layers: 4, extra: ["--accumulate", "2"]))
        mpi(4, args("dtgff-cifar10", out: four, layers: 4, extra: ["--parallel", "pipeline", "--stages", "2"]))
        try MPIJob.assertClose(last(one), last(four), skip: MPIRunTests.runningStatistics)
    }

    // MARK: checkpoints

    /// A 2-rank checkpoint resumes in one process and a 1-process checkpoint under 2 ranks,
    /// both bit-identical to resuming in one process (pipeline, so bits can be compared).
    func testResumeAcrossRankCounts() throws {
        try MPIJob.require()
        let first1 = dir("res-first-1"), first2 = dir("res-first-2")
        let ref = dir("res-ref"), from2 = dir("res-from2"), under2 = dir("res-under2")
        single(args("asge-mnist", out: first1, epochs: 1))
        mpi(2, args("asge-mnist", out: first2, epochs: 1, extra: ["--parallel", "pipeline"]))
        try MPIJob.assertBitIdentical(last(first1), last(first2))
        // Continue each 1-epoch run to 2 epochs in a new folder (the config comes from the checkpoint).
        func resume(_ from: URL, _ out: URL, _ extra: [String] = []) -> [String] {
            ["run", "--resume", last(from).path, "--out", out.path, "--epochs", "2", "--extend", "--threads", "1",
             "--data", MPIJob.dataset.path] + extra
        }
        single(resume(first1, ref))
        single(resume(first2, from2))
        mpi(2, resume(first1, under2, ["--parallel", "pipeline"]))
        try MPIJob.assertBitIdentical(last(ref), last(from2))
        try MPIJob.assertBitIdentical(last(ref), last(under2))
        XCTAssertEqual(try RunCheckpoint.describe(last(under2)).history.map(\.epoch), [1, 2], "history kept")
    }

    /// `repro eval` under 2 ranks (each evaluates half of the split) prints the same report.
    func testEvalSplitsTheSet() throws {
        try MPIJob.require()
        let d = dir("eval")
        single(args("asge-mnist", out: d, epochs: 1))
        let a = ["eval", "--checkpoint", last(d).path, "--data", MPIJob.dataset.path, "--threads", "1"]
        let one = MPIJob.single(a), two = MPIJob.mpi(2, a)
        XCTAssertEqual(one.status, 0, one.output)
        XCTAssertEqual(two.status, 0, two.output)
        func report(_ s: String) -> [String] { s.split(separator: "\n").map(String.init).filter { $0.contains("%") && !$0.hasPrefix("eval ") } }
        XCTAssertFalse(report(one.output).isEmpty, one.output)
        XCTAssertEqual(report(one.output), report(two.output))
    }

    // MARK: faults

    /// SIGKILL of rank 1 once the first checkpoint exists: mpirun stops rank 0, which names
    /// rank 1 and the last good checkpoint, removes its half-written files and exits.
    func testKilledRankStopsTheJobWithAMessage() throws {
        try MPIJob.require()
        let d = dir("fault")
        var killed: Int32?
        let r = MPIJob.mpi(2, args("asge-mnist", out: d, epochs: 100_000), timeout: 90) { mpirun in
            let deadline = Date().addingTimeInterval(60)
            while !FileManager.default.fileExists(atPath: self.last(d).path) && Date() < deadline { usleep(20_000) }
            usleep(300_000)
            if let rank1 = MPIJob.rankProcess(of: mpirun, rank: 1) {
                kill(rank1, SIGKILL)
                killed = rank1
            }
        }
        let pid = try XCTUnwrap(killed, "rank 1 was not found among mpirun's children:\n\(r.output)")
        XCTAssertFalse(r.timedOut, "the job hung after rank 1 died:\n\(r.output)")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("Rank 1 (pid \(pid)) on this node has died"), r.output)
        XCTAssertTrue(r.output.contains("The last good checkpoint is \(last(d).path) (epoch "), r.output)
        let left = try FileManager.default.contentsOfDirectory(atPath: d.path)
        XCTAssertFalse(left.contains { AtomicFile.isTemporaryName($0) }, "half-written files left: \(left)")
        // The named checkpoint is complete and at least as new as the message says.
        let said = r.output.components(separatedBy: "(epoch ").last.flatMap { Int($0.prefix { $0.isNumber }) }
        let stored = try RunCheckpoint.describe(last(d)).epoch
        XCTAssertNotNil(said)
        XCTAssertGreaterThanOrEqual(stored, said ?? Int.max)
    }
}
