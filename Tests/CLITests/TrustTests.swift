import FFEngine
import Foundation
import TestScratch
import XCTest

/// data/toy (a train/test image folder, converted) and one finished 1-epoch run of a tiny
/// model in runs/one, made once for the trust tests.
enum TrustWorkspace {
    static let shared: (work: URL, run: URL) = {
        let w = Scratch.directory("cli-trust")
        let cli = CLI(cwd: w)
        try! ImageFolderFixture.write(w.appendingPathComponent("toy"), train: 8, test: 4)
        precondition(try! cli.run(["prep", "imagefolder", "--src", "toy", "--size", "16", "--out", "data/toy", "--quiet"]).status == 0)
        let run = w.appendingPathComponent("runs/one")
        let r = try! cli.run(["run", "asge-cifar10", "--data", "data/toy", "--epochs", "1", "--out", run.path] + tinyModel)
        precondition(r.status == 0, r.all)
        return (w, run)
    }()
}

/// What a researcher reads must come from what was measured, and no command destroys a
/// file it was not asked to replace (issue 18, second trust round), through the binary.
final class TrustTests: XCTestCase {
    static var work: URL { TrustWorkspace.shared.work }
    static var run: URL { TrustWorkspace.shared.run }
    var cli: CLI { CLI(cwd: TrustTests.work) }

    func testEmptySplitsAreNullNotZero() throws {
        let w = TrustTests.work
        // Two images per class: the conversion has train images only (val 0, test 0).
        try ImageFolderFixture.writeFlat(w.appendingPathComponent("tiny"), perClass: 2)
        try cli.ok(["prep", "imagefolder", "--src", "tiny", "--size", "16", "--out", "data/tiny", "--quiet"])
        let dir = w.appendingPathComponent("runs/tiny")
        let r = try cli.ok(["run", "asge-cifar10", "--data", "data/tiny", "--epochs", "2", "--out", dir.path,
                            "--set", "arch=custom", "--set", "channels=[8,8]", "--set", "pool_after=[1]", "--batch-size", "2"])
        XCTAssertTrue(r.out.contains("no test split: nothing was tested"), r.out)
        XCTAssertFalse(r.out.contains("0.00%"), r.out)
        let rec = try jsonObject(dir.appendingPathComponent("results.json"))
        for key in ["split", "images", "top1_pct", "top5_pct", "head_top1_pct", "best_val_pct"] {
            XCTAssertTrue(rec[key] is NSNull, "\(key) = \(rec[key] ?? "missing")")
        }
        XCTAssertEqual(rec["best_epoch"] as? Int, 2, "without validation the last epoch is the selected one")
        XCTAssertEqual(try RunCheckpoint.describe(dir.appendingPathComponent("best.h5")).epoch, 2)
        let line = try XCTUnwrap(try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").first)
        let epoch = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertTrue(epoch["val_selected_pct"] is NSNull, "a training accuracy is not a validation number")
        let eval = try cli.run(["eval", "--checkpoint", dir.appendingPathComponent("best.h5").path])
        XCTAssertEqual(eval.status, 64)
        XCTAssertTrue(eval.err.contains("has no images in its 'test' split (splits with images: train)"), eval.err)
        let table = try cli.ok(["table", dir.path])
        XCTAssertTrue(table.out.contains("Results on no test split"), table.out)
        XCTAssertFalse(table.out.contains("0.00"), table.out)
    }

    func testEvalOutNeverReplacesWhatIsNotAnEvalRecord() throws {
        let best = TrustTests.run.appendingPathComponent("best.h5")
        let weights = try Data(contentsOf: best)
        let scratch = Scratch.directory("eval-out")
        func refused(_ out: URL, _ why: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let r = try cli.run(["eval", "--checkpoint", best.path, "--out", out.path])
            XCTAssertEqual(r.status, 64, r.all, file: file, line: line)
            XCTAssertTrue(r.err.contains(why), r.err, file: file, line: line)
        }
        // The checkpoint being evaluated, by any path: always refused, even with --overwrite.
        try refused(best, "is the checkpoint being evaluated")
        let link = scratch.appendingPathComponent("link.json")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: best)
        let r = try cli.run(["eval", "--checkpoint", best.path, "--out", link.path, "--overwrite"])
        XCTAssertTrue(r.status == 64 && r.err.contains("is the checkpoint being evaluated"), r.all)
        XCTAssertEqual(try Data(contentsOf: best), weights, "the weights are intact")
        // Another checkpoint, a text file, a directory: refused without --overwrite.
        let copy = scratch.appendingPathComponent("copy.h5")
        try weights.write(to: copy)
        try refused(copy, "is an .h5 file")
        let notes = scratch.appendingPathComponent("notes.json")
        try Data("{\"mine\": true}".utf8).write(to: notes)
        try refused(notes, "is not an eval record")
        try refused(scratch, "is a directory")
        XCTAssertEqual(try Data(contentsOf: copy), weights)
        XCTAssertEqual(try Data(contentsOf: notes), Data("{\"mine\": true}".utf8))
        // A new file, then the same eval record again: fine; --overwrite replaces a non-record.
        let record = scratch.appendingPathComponent("eval.json")
        try cli.ok(["eval", "--checkpoint", best.path, "--out", record.path])
        try cli.ok(["eval", "--checkpoint", best.path, "--out", record.path])
        try cli.ok(["eval", "--checkpoint", best.path, "--out", notes.path, "--overwrite"])
        XCTAssertEqual(try jsonObject(notes)["kind"] as? String, "eval")
        let left = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter(AtomicFile.isTemporaryName)
        XCTAssertEqual(left, [], "no *.tmp.N files")
    }

    func testFinishedRunAndDatasetCarryNoLockFile() throws {
        for dir in [TrustTests.run, TrustTests.work.appendingPathComponent("data/toy")] {
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent(".repro.lock").path), dir.path)
        }
    }

    func testTableCountsOneCheckpointOnceAndGivesReadoutsPerSeed() throws {
        let run = TrustTests.run
        let record = Scratch.directory("table").appendingPathComponent("eval.json")
        try cli.ok(["eval", "--checkpoint", run.appendingPathComponent("best.h5").path, "--out", record.path])
        let r = try cli.ok(["table", run.path, record.path])
        XCTAssertTrue(r.out.contains("| 1 | 0 |"), "one model, n = 1:\n\(r.out)")
        XCTAssertTrue(r.err.contains("\(record.path) measures the same model as \(run.path)"), r.err)
        // A weights-only export of the same checkpoint is the same model too.
        let exported = record.deletingLastPathComponent().appendingPathComponent("weights.h5")
        try cli.ok(["export", "--checkpoint", run.appendingPathComponent("best.h5").path, "--format", "h5", "--out", exported.path])
        XCTAssertEqual(Checkpoint.weightsDigest(of: exported), Checkpoint.weightsDigest(of: run.appendingPathComponent("best.h5")))
        XCTAssertNotNil(Checkpoint.weightsDigest(of: exported))
        // Best Pred's readout is listed per seed, in seed order.
        let seeds = TrustTests.work.appendingPathComponent("runs/seeds")
        for seed in [3, 4] {
            try cli.ok(["run", "asge-cifar10", "--data", "data/toy", "--epochs", "1", "--seed", "\(seed)",
                        "--out", seeds.appendingPathComponent("s\(seed)").path] + tinyModel)
        }
        let t = try cli.ok(["table", seeds.path])
        let line = try XCTUnwrap(t.out.split(separator: "\n").first { $0.hasPrefix("Best Pred readout chosen on validation") })
        XCTAssertNotNil(line.range(of: #"seed 3 → \d, seed 4 → \d\.$"#, options: .regularExpression), String(line))
    }
}
