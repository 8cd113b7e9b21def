import FFEngine
import Foundation
import TestScratch
import XCTest

/// best.h5 holds weights only; last.h5 carries the optimizer state that resume needs;
/// --keep and `repro prune` drop what a finished run no longer needs (issue 19 item 4).
final class LeanCheckpointTests: XCTestCase {
    var cli: CLI { CLI(cwd: TrustWorkspace.shared.work) }

    func testBestIsWeightsOnlyAndCannotBeResumed() throws {
        let run = TrustWorkspace.shared.run
        let best = try Checkpoint.read(from: run.appendingPathComponent("best.h5"))
        let last = try Checkpoint.read(from: run.appendingPathComponent("last.h5"))
        XCTAssertFalse(best.tensors.contains { $0.0.hasPrefix("optim/") })
        XCTAssertNil(best.uint64Array("state/optimizer_steps"))
        XCTAssertTrue(last.tensors.contains { $0.0.hasPrefix("optim/") })
        XCTAssertEqual(best.tensors.map(\.0), last.tensors.map(\.0).filter { !$0.hasPrefix("optim/") })
        for (name, t) in best.tensors {
            XCTAssertEqual(t.buffer.map { $0 }, last.tensor(name)!.buffer.map { $0 }, "one epoch: best = last (\(name))")
        }
        let bestSize = try XCTUnwrap(AtomicFile.size(of: run.appendingPathComponent("best.h5")))
        let lastSize = try XCTUnwrap(AtomicFile.size(of: run.appendingPathComponent("last.h5")))
        // AdamW's two moments per trained parameter stay out of best.h5.
        let params = best.tensors.filter { $0.0.hasPrefix("params/") }.reduce(0) { $0 + $1.1.count }
        let moments = last.tensors.filter { $0.0.hasPrefix("optim/") }.reduce(0) { $0 + $1.1.count }
        XCTAssertGreaterThanOrEqual(moments, params, "\(moments) optimizer values for \(params) parameters")
        XCTAssertLessThan(bestSize, lastSize)
        let r = try cli.run(["run", "--resume", run.appendingPathComponent("best.h5").path, "--epochs", "2", "--extend",
                             "--out", Scratch.directory("branch").appendingPathComponent("b").path])
        XCTAssertEqual(r.status, 64, r.all)
        XCTAssertTrue(r.err.contains("holds weights only (no optimizer state)") && r.err.contains("--resume \(run.path)"), r.err)
        // eval and export read it as before.
        try cli.ok(["eval", "--checkpoint", run.appendingPathComponent("best.h5").path])
    }

    func testKeepAndPrune() throws {
        let dir = Scratch.directory("keep")
        let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b")
        let r = try cli.ok(["run", "asge-cifar10", "--data", "data/toy", "--epochs", "1", "--out", a.path, "--keep", "best"]
                           + tinyModel)
        XCTAssertTrue(r.out.contains("checkpoints: best.h5 (epoch 1, weights); metrics.jsonl"), r.out)
        XCTAssertFalse(FileManager.default.fileExists(atPath: a.appendingPathComponent("last.h5").path))
        try cli.ok(["run", "asge-cifar10", "--data", "data/toy", "--epochs", "1", "--out", b.path] + tinyModel)
        let dry = try cli.ok(["prune", dir.path, "--dry-run"])
        XCTAssertTrue(dry.out.contains("would remove \(b.path)/last.h5") && dry.out.contains("1 file,"), dry.out)
        XCTAssertTrue(FileManager.default.fileExists(atPath: b.appendingPathComponent("last.h5").path))
        try cli.ok(["prune", dir.path])
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.appendingPathComponent("last.h5").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: b.appendingPathComponent("best.h5").path))
        // An unfinished run (no results.json) is never pruned.
        let c = dir.appendingPathComponent("c")
        try FileManager.default.createDirectory(at: c, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: c.appendingPathComponent("last.h5"))
        XCTAssertTrue(try cli.ok(["prune", c.path]).out.contains("no finished runs"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: c.appendingPathComponent("last.h5").path))
    }
}

/// Every number names the build and arithmetic that made it (issue 19 item 3).
final class ProvenanceTests: XCTestCase {
    var cli: CLI { CLI(cwd: TrustWorkspace.shared.work) }

    func testVersionResultsCheckpointsAndTableNameTheBuild() throws {
        let v = try cli.ok(["--version"])
        for field in ["repro \(BuildInfo.version)", "commit ", "binary      sha256 ", "BLAS        OpenBLAS", "SIMD ",
                      "fingerprint "] {
            XCTAssertTrue(v.out.contains(field), v.out)
        }
        let run = TrustWorkspace.shared.run
        let rec = try ResultsRecord.read(run.appendingPathComponent("results.json"))
        let build = try XCTUnwrap(rec.build)
        XCTAssertEqual(build.threads, 1, "the CLI tests run with FFREPRO_THREADS=1")
        XCTAssertEqual(build.fingerprint, BuildInfo.fingerprint(ComputeContext(threads: 1)))
        XCTAssertEqual(build.binarySha256?.count, 64)
        XCTAssertTrue(try cli.ok(["--version", "--threads", "1"]).out.contains(build.fingerprint))
        if let commit = build.commit { XCTAssertNotNil(commit.range(of: "^[0-9a-f]{40}$", options: .regularExpression)) }
        XCTAssertEqual(try RunCheckpoint.describe(run.appendingPathComponent("best.h5")).build, build)
        XCTAssertEqual(try RunCheckpoint.describe(run.appendingPathComponent("last.h5")).build, build)
        // The table names one build, or warns when the compared runs differ.
        let one = try cli.ok(["table", run.path])
        XCTAssertTrue(one.out.contains("Build: \(BuildInfo.version)") && one.out.contains("(all runs)"), one.out)
        var other = rec
        other.build?.fingerprint = "0123456789abcdef-scalar-3"
        other.seed = 99
        other.config.seed = 99
        let file = Scratch.directory("other-build").appendingPathComponent("other.json")
        try other.write(to: file)
        let two = try cli.ok(["table", run.path, file.path])
        XCTAssertTrue(two.out.contains("Warning: these runs come from 1 build(s)") && two.out.contains("2 arithmetic fingerprint(s)"),
                      two.out)
    }
}
