import FFEngine
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import TestScratch
import XCTest

/// predict, sweep, table and plot, and the small CLI fixes, through the built binary.
final class ToolsTests: XCTestCase {
    static var work: URL!

    override class func setUp() {
        super.setUp()
        work = Scratch.directory("cli-tools")
        try! ImageFolderFixture.write(work.appendingPathComponent("toy"))
        let r = try! CLI(cwd: work).run(["prep", "imagefolder", "--src", "toy", "--size", "16", "--out", "data/toy", "--quiet"])
        precondition(r.status == 0, r.all)
    }

    var cli: CLI { CLI(cwd: ToolsTests.work) }
    var repoRoot: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }

    func testPredictWithTheCheckpointAlone() throws {
        let run = Scratch.directory("predict-run")
        try cli.ok(["run", "asge-cifar10", "--data", "data/toy", "--epochs", "2", "--lr", "0.003", "--out", run.path] + tinyModel)
        // The checkpoint carries class names and normalisation: the dataset can be gone.
        let moved = ToolsTests.work.appendingPathComponent("data/toy-moved")
        try FileManager.default.moveItem(at: ToolsTests.work.appendingPathComponent("data/toy"), to: moved)
        defer { try? FileManager.default.moveItem(at: moved, to: ToolsTests.work.appendingPathComponent("data/toy")) }
        let images = ["toy/test/red/000.png", "toy/test/blue/001.png"]
        let r = try cli.ok(["predict", "--checkpoint", run.appendingPathComponent("best.h5").path, "--json"] + images)
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]])
        XCTAssertEqual(list.count, 2)
        for (item, path) in zip(list, images) {
            XCTAssertEqual(item["image"] as? String, path)
            let top = try XCTUnwrap(item["top"] as? [[String: Any]])
            XCTAssertEqual(top.count, 3, "top-5 of 3 classes lists all three")
            let p = top.map { $0["probability"] as! Double }
            XCTAssertEqual(p, p.sorted(by: >))
            XCTAssertEqual(p.reduce(0, +), 1, accuracy: 1e-9)
            XCTAssertEqual(Set(top.map { $0["class_name"] as! String }), Set(ImageFolderFixture.classes))
            let votes = try XCTUnwrap(item["readouts"] as? [[String: Any]])
            XCTAssertEqual(votes.count, 2)
            XCTAssertEqual(item["agreeing"] as? Int, votes.filter { $0["agrees"] as! Bool }.count)
            for v in votes {
                XCTAssertEqual(v["agrees"] as? Bool, v["class_index"] as? Int == top[0]["class_index"] as? Int)
            }
        }
        let text = try cli.ok(["predict", "--checkpoint", run.appendingPathComponent("best.h5").path, images[0]])
        XCTAssertTrue(text.out.contains("1. ") && text.out.contains(" %") && text.out.contains("readouts: "), text.out)
        let bad = try cli.run(["predict", "--checkpoint", run.appendingPathComponent("best.h5").path, "toy/nothing.png"])
        XCTAssertEqual(bad.status, 66, "a missing input (EX_NOINPUT)")
        XCTAssertTrue(bad.err.contains("toy/nothing.png: no such file"), bad.err)
    }

    func testSweepTableAndPlot() throws {
        let a = Scratch.directory("sweep-a"), b = Scratch.directory("sweep-b")
        let common = ["--data", "data/toy", "--epochs", "2", "--seeds", "1,2"] + tinyModel
        let ra = try cli.ok(["sweep", "asge-cifar10", "--out", a.path] + common)
        XCTAssertTrue(ra.out.contains("| asge-cifar10 (\(a.lastPathComponent)) | 2 | 1, 2 |"), ra.out)
        try cli.ok(["sweep", "asge-cifar10", "--out", b.path, "--set", "alpha=0"] + common)
        for s in [1, 2] {
            let r = try jsonObject(a.appendingPathComponent("seed-\(s)/results.json"))
            XCTAssertEqual(r["seed"] as? Int, s)
            XCTAssertEqual((try jsonObject(b.appendingPathComponent("seed-\(s)/results.json"))["config"] as? [String: Any])?["alpha"] as? Double, 0)
        }
        // The same command continues a sweep: finished seeds are kept.
        let again = try cli.ok(["sweep", "asge-cifar10", "--out", a.path] + common)
        XCTAssertEqual(again.out.count(of: "finished earlier"), 2, again.out)

        let t = try cli.ok(["table", a.path, b.path]).out
        XCTAssertTrue(t.contains("| runs | n | seeds | predictor | epochs | best val % | top-1 % |"), t)
        XCTAssertTrue(t.contains(" ± "), t)
        XCTAssertTrue(t.contains("| per readout, top-1 % | layer 1 | layer 2 |"), t)
        XCTAssertTrue(t.contains("Paired comparison over seeds 1, 2 (n = 2)"), t)
        XCTAssertTrue(t.contains("| metric | A | B | B - A | t | p |"), t)
        // Single runs group by config apart from the seed.
        let single = try cli.ok(["table", a.appendingPathComponent("seed-1").path, a.appendingPathComponent("seed-2").path]).out
        XCTAssertTrue(single.contains("| asge-cifar10 | 2 | 1, 2 |"), single)

        let svg = Scratch.directory("plot").appendingPathComponent("curves.svg")
        let p = try cli.ok(["plot", a.path, b.path, "--out", svg.path, "--title", "toy"])
        XCTAssertTrue(p.out.contains("2 groups, 4 runs"), p.out)
        let text = try String(contentsOf: svg, encoding: .utf8)
        XCTAssertTrue(XMLParser(data: Data(text.utf8)).parse(), "well-formed SVG")
        // Shared axes: one panel per metric for both groups, each group in its own colour, legend under the panels.
        XCTAssertEqual(text.count(of: "predictor: validation accuracy"), 1)
        XCTAssertEqual(text.count(of: "readouts: validation accuracy"), 1)
        XCTAssertEqual(text.count(of: "class=\"ylabel\""), 3, "every panel labels its y axis")
        XCTAssertTrue(text.contains("asge-cifar10 (\(a.lastPathComponent)): 2 runs (seeds 1,2), mean ± 1 std"), text)
        XCTAssertTrue(text.contains("stroke=\"\(RunPlot.palette[0])\"") && text.contains("stroke=\"\(RunPlot.palette[1])\""))
        XCTAssertTrue(text.contains("majority class (test split)") && text.contains(">chance<"), "reference lines")
        XCTAssertGreaterThanOrEqual(text.count(of: "class=\"band\""), 4, "mean ± std bands for groups of two runs")
        let all = try cli.ok(["plot", a.path, "--out", svg.path, "--readouts", "all"])
        XCTAssertTrue(all.out.contains("1 group"), all.out)
        XCTAssertTrue(try String(contentsOf: svg, encoding: .utf8).contains("every readout: validation accuracy"))
        let png = try cli.run(["plot", a.path, "--out", "x.png"])
        XCTAssertEqual(png.status, 64)
        XCTAssertTrue(png.err.contains("rsvg-convert"), png.err)
    }

    func testSmallFixes() throws {
        // One "(default: ...)" per option.
        let help = try cli.ok(["prep", "imagefolder", "--help"]).out
        XCTAssertFalse(help.contains("(default: all cores). (default: 0)"), help)
        // Negative numbers reach the validation instead of "Missing value".
        let neg = try cli.run(["run", "asge-cifar10", "--data", "data/toy", "--epochs", "-3"])
        XCTAssertEqual(neg.status, 64)
        XCTAssertTrue(neg.err.contains("config field epochs = -3 is outside 1...100000"), neg.err)
        // --set type errors in words, without Swift decoding paths.
        let set = try cli.run(["run", "asge-cifar10", "--data", "data/toy", "--set", "epochs=abc"])
        XCTAssertEqual(set.status, 64)
        XCTAssertTrue(set.err.contains("epochs takes a whole number, not 'abc'"), set.err)
        XCTAssertFalse(set.err.contains("Swift.") || set.err.contains("codingPath"), set.err)
        // prep check takes run's names for augmentation and labels.
        let check = try cli.ok(["prep", "check", "--dir", "data/toy", "--augment", "crop-flip", "--labels", "fine",
                                "--epochs", "1", "--batch-size", "8"])
        XCTAssertTrue(check.out.contains("epoch 0: 44 images"), check.out)
        let old = try cli.run(["prep", "check", "--dir", "data/toy", "--augment", "crop"])
        XCTAssertNotEqual(old.status, 0)
        XCTAssertTrue(old.err.contains("crop-flip"), old.err)
        // bench prints each model row once.
        let bench = try cli.ok(["bench", "asge-mnist", "--steps", "1", "--batch-size", "4"])
        XCTAssertEqual(bench.out.split(separator: "\n").filter { $0.hasPrefix("asge-mnist") }.count, 1, bench.out)
    }

    func testRepositoryHygiene() throws {
        // Paper READMEs carry their facts, not links outside the repository.
        for paper in try FileManager.default.contentsOfDirectory(atPath: repoRoot.appendingPathComponent("papers").path) {
            let text = try String(contentsOf: repoRoot.appendingPathComponent("papers/\(paper)/README.md"), encoding: .utf8)
            XCTAssertFalse(text.contains("../shared"), "papers/\(paper)/README.md links outside the repository")
        }
        // .gitignore needs no exceptions ("!path") for tracked files, and matches none of them.
        let ignore = try String(contentsOf: repoRoot.appendingPathComponent(".gitignore"), encoding: .utf8)
        XCTAssertFalse(ignore.split(separator: "\n").contains { $0.hasPrefix("!") }, ignore)
        guard FileManager.default.fileExists(atPath: repoRoot.appendingPathComponent(".git").path) else {
            throw XCTSkip("not a git checkout")
        }
        let git = Process()
        git.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        git.arguments = ["git", "-C", repoRoot.path, "ls-files", "--cached", "--ignored", "--exclude-standard"]
        let pipe = Pipe()
        git.standardOutput = pipe
        try git.run()
        let listed = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        git.waitUntilExit()
        XCTAssertEqual(git.terminationStatus, 0)
        XCTAssertEqual(listed, "", "tracked files that .gitignore matches")
    }
}
