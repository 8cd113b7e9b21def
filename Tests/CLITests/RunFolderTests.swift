import FFEngine
import Foundation
import TestScratch
import XCTest

/// `repro run` on any converted dataset, run folders, resume/extend, eval records,
/// and the honest comparison line, through the built binary.
final class RunFolderTests: XCTestCase {
    /// A workspace with data/toy (converted image folder) and one finished 2-epoch run.
    static var work: URL!
    static var firstRun: URL!
    static var firstOutput = ""

    override class func setUp() {
        super.setUp()
        let w = Scratch.directory("cli-run")
        work = w
        let cli = CLI(cwd: w)
        try! ImageFolderFixture.write(w.appendingPathComponent("toy"))
        let prep = try! cli.run(["prep", "imagefolder", "--src", "toy", "--size", "16", "--out", "data/toy", "--quiet"])
        precondition(prep.status == 0, prep.all)
        let r = try! cli.run(["run", "asge-cifar10", "--data", "data/toy", "--epochs", "2"] + tinyModel)
        precondition(r.status == 0, r.all)
        firstOutput = r.out
        let runs = w.appendingPathComponent("runs/asge-cifar10")
        let names = try! FileManager.default.contentsOfDirectory(atPath: runs.path)
        precondition(names.count == 1, "\(names)")
        firstRun = runs.appendingPathComponent(names[0])
    }

    var cli: CLI { CLI(cwd: RunFolderTests.work) }

    func testAnyRecipeRunsOnAnyConvertedDataset() throws {
        let out = RunFolderTests.firstOutput
        XCTAssertTrue(out.contains("asge-cifar10 adapted to dataset 'toy': input 3x16x16, 3 classes "
            + "(the recipe's cifar10: 3x32x32, 10 classes); no paper comparison"), out)
        XCTAssertEqual(out.count(of: "adapted to dataset"), 1, "said in one line")
        let r = try jsonObject(RunFolderTests.firstRun.appendingPathComponent("results.json"))
        let dataset = try XCTUnwrap(r["dataset"] as? [String: Any])
        XCTAssertEqual(dataset["name"] as? String, "toy")
        XCTAssertEqual(dataset["class_names"] as? [String], ImageFolderFixture.classes)
        XCTAssertEqual((r["config"] as? [String: Any])?["dataset"] as? String, "toy")
        XCTAssertEqual(r["images"] as? Int, 12)
    }

    func testComparisonLineSaysWhyNot() throws {
        let out = RunFolderTests.firstOutput
        XCTAssertFalse(out.contains("comparable with the paper:"), out)
        XCTAssertTrue(out.contains("not comparable with the paper's 90.50%"), out)
        XCTAssertTrue(out.contains("dataset 'toy' is not the paper's cifar10; trained 2 of the paper's 400 epochs"), out)
        let paper = try XCTUnwrap(try jsonObject(RunFolderTests.firstRun.appendingPathComponent("results.json"))["paper"]
            as? [String: Any])
        XCTAssertEqual(paper["comparable"] as? Bool, false)
        XCTAssertEqual(paper["top1_pct"] as? Double, 90.5)

        // An image folder carrying a built-in name is not the official conversion.
        let prep = try cli.ok(["prep", "imagefolder", "--src", "toy", "--size", "16", "--name", "cifar10",
                               "--out", "data/fake-cifar10", "--quiet"])
        XCTAssertTrue(prep.out.contains("note: 'cifar10' is also a built-in dataset"), prep.out)
        let index = try jsonObject(RunFolderTests.work.appendingPathComponent("data/fake-cifar10/index.json"))
        XCTAssertEqual((index["conversion"] as? [String: Any])?["val"] as? Int, 4,
                       "the image-folder default (a tenth), not CIFAR's 5000")
        let r = try cli.ok(["run", "asge-cifar10", "--data", "data/fake-cifar10", "--epochs", "1", "--tag", "fake"] + tinyModel)
        XCTAssertTrue(r.out.contains("is an image folder carrying the name, not the official conversion"), r.out)
    }

    func testRunFolders() throws {
        let first = RunFolderTests.firstRun!
        XCTAssertNotNil(first.lastPathComponent.range(of: #"^\d{8}-\d{6}(-\d+)?$"#, options: .regularExpression),
                        first.lastPathComponent)
        for f in RunFolder.runFiles {
            XCTAssertTrue(FileManager.default.fileExists(atPath: first.appendingPathComponent(f).path), f)
        }
        let before = try Data(contentsOf: first.appendingPathComponent("metrics.jsonl"))
        // A second run gets its own folder (with the tag) and leaves the first alone.
        let r = try cli.ok(["run", "asge-cifar10", "--data", "data/toy", "--epochs", "1", "--tag", "second"] + tinyModel)
        XCTAssertTrue(r.out.contains("runs/asge-cifar10/") && r.out.contains("-second"), r.out)
        // --out pointing at another run is refused; nothing of that run changes.
        let clash = try cli.run(["run", "asge-cifar10", "--data", "data/toy", "--epochs", "1", "--out", first.path] + tinyModel)
        XCTAssertEqual(clash.status, 1)
        XCTAssertTrue(clash.err.contains("holds another run"), clash.err)
        XCTAssertEqual(try Data(contentsOf: first.appendingPathComponent("metrics.jsonl")), before)
        // --out still works for a new folder; $FFREPRO_RUNS moves the default root.
        try cli.ok(["run", "asge-cifar10", "--data", "data/toy", "--epochs", "1", "--out", "mine"] + tinyModel)
        XCTAssertTrue(FileManager.default.fileExists(atPath: RunFolderTests.work.appendingPathComponent("mine/results.json").path))
        let moved = try cli.ok(["run", "asge-cifar10", "--data", "data/toy", "--epochs", "1"] + tinyModel,
                               env: ["FFREPRO_RUNS": "elsewhere"])
        XCTAssertTrue(moved.out.contains("/elsewhere/asge-cifar10/"), moved.out)
    }

    func testResumeReadsTheConfigAndExtendsOnlyOnRequest() throws {
        let dir = Scratch.directory("resume")
        try cli.ok(["run", "asge-cifar10", "--data", "data/toy", "--epochs", "1", "--out", dir.path, "--seed", "5"] + tinyModel)
        let done = try cli.run(["run", "--resume", dir.path])
        XCTAssertEqual(done.status, 1)
        XCTAssertTrue(done.err.contains("finished all 1 planned epochs"), done.err)
        // Killed during the final test (all epochs, no results.json): resuming runs the test.
        let results = dir.appendingPathComponent("results.json")
        let saved = try Data(contentsOf: results)
        try FileManager.default.removeItem(at: results)
        let retest = try cli.ok(["run", "--resume", dir.path])
        XCTAssertFalse(retest.out.contains("epoch 1/1"), retest.out)
        XCTAssertEqual(try jsonObject(results)["top1_pct"] as? Double,
                       (try JSONSerialization.jsonObject(with: saved) as? [String: Any])?["top1_pct"] as? Double)
        let noExtend = try cli.run(["run", "--resume", dir.path, "--epochs", "3"])
        XCTAssertEqual(noExtend.status, 1)
        XCTAssertTrue(noExtend.err.contains("Add --extend"), noExtend.err)
        let option = try cli.run(["run", "--resume", dir.path, "--epochs", "3", "--extend", "--lr", "0.1"])
        XCTAssertEqual(option.status, 1)
        XCTAssertTrue(option.err.contains("--lr cannot change it"), option.err)
        // No options repeated: the config (seed 5, the tiny model, the toy data) comes from the checkpoint.
        let r = try cli.ok(["run", "--resume", dir.path, "--epochs", "3", "--extend"])
        XCTAssertTrue(r.out.contains("resumed from \(dir.path)/last.h5 after epoch 1"), r.out)
        let extended = try jsonObject(results)
        XCTAssertEqual(extended["epochs_trained"] as? Int, 3)
        XCTAssertEqual(extended["seed"] as? Int, 5)
        let lines = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        XCTAssertEqual(lines.split(separator: "\n").count, 3)
        // Whole-run ETA on the epoch lines of a run that has epochs left.
        XCTAssertTrue(r.out.contains("epoch 2/3") && r.out.contains("| run ETA "), r.out)
        XCTAssertFalse(r.out.split(separator: "\n").first { $0.hasPrefix("epoch 3/3") }?.contains("run ETA") ?? true)
    }

    func testEvalWritesTheResultsRecord() throws {
        let first = RunFolderTests.firstRun!
        let file = Scratch.directory("eval").appendingPathComponent("eval.json")
        try cli.ok(["eval", "--checkpoint", first.appendingPathComponent("best.h5").path, "--out", file.path])
        let e = try jsonObject(file), r = try jsonObject(first.appendingPathComponent("results.json"))
        XCTAssertEqual(Set(e.keys), Set(r.keys), "one schema for runs and evals")
        XCTAssertEqual(e["schema_version"] as? Int, 2)
        XCTAssertEqual(e["kind"] as? String, "eval")
        XCTAssertEqual(r["kind"] as? String, "run")
        for key in ["top1_pct", "top5_pct", "head_top1_pct", "best_pred_top1_pct", "best_pred_readout", "config_hash"] {
            XCTAssertEqual("\(e[key]!)", "\(r[key]!)", key)
        }
        XCTAssertEqual(e["images"] as? Int, e["split_images"] as? Int)
        XCTAssertEqual((e["dataset"] as? [String: Any])?["fingerprint"] as? String,
                       (r["dataset"] as? [String: Any])?["fingerprint"] as? String)
        // config_hash is the SHA-256 of config.json.
        XCTAssertEqual(r["config_hash"] as? String, try AtomicFile.sha256(of: first.appendingPathComponent("config.json")))
        let split = try cli.run(["eval", "--checkpoint", first.appendingPathComponent("best.h5").path, "--split", "bogus"])
        XCTAssertEqual(split.status, 1)
        XCTAssertTrue(split.err.contains("--split must be test, val or train"), split.err)
        try cli.ok(["eval", "--checkpoint", first.appendingPathComponent("best.h5").path, "--split", "val"])
    }
}
