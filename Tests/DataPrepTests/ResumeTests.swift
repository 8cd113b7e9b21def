import FFEngine
import Foundation
import XCTest

@testable import DataPrep

/// Interrupted conversions, reruns, determinism, and the Tiny-ImageNet layout.
final class ResumeTests: XCTestCase {
    /// IDX source with small shards: 120 train images of 28x28 at 20 per shard.
    func options(_ failure: PrepOptions.TestingFailure? = nil) -> PrepOptions {
        var o = Fixtures.quiet
        o.val = 20
        o.seed = 9
        o.shardBytes = 20 * 784
        o.testingFailure = failure
        return o
    }

    func testInterruptedRunsResumeToIdenticalFiles() throws {
        let src = Fixtures.tempDir()
        Fixtures.writeIDX(src, train: 120, test: 30, gzip: false, dotNames: false)
        let clean = Fixtures.tempDir()
        let full = try DataPrep.mnist(source: src, output: clean, options: options())
        XCTAssertEqual(full.index.splits["train"]?.shards.count, 5)
        XCTAssertEqual(full.shardsWritten, 8)
        let reference = Fixtures.snapshot(clean)

        // Killed after 3 shards, with a half-written temporary file left behind.
        let out = Fixtures.tempDir()
        XCTAssertThrowsError(try DataPrep.mnist(source: src, output: out, options: options(.afterShards(3))))
        try Data(repeating: 7, count: 100).write(to: out.appendingPathComponent("train-00003.h5.tmp.4242"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("index.json").path))
        XCTAssertThrowsError(try ShardLoader(directory: out, split: "train", options: LoaderOptions())) { e in
            XCTAssertTrue("\(e)".contains("the conversion did not finish"), "\(e)")
        }
        // Killed again while writing the channel statistics.
        XCTAssertThrowsError(try DataPrep.mnist(source: src, output: out, options: options(.afterFinalizing(4))))
        let resumed = try DataPrep.mnist(source: src, output: out, options: options())
        XCTAssertEqual(resumed.shardsResumed, 8)
        XCTAssertEqual(resumed.shardsWritten, 0)
        XCTAssertEqual(Fixtures.snapshot(out), reference)

        // A complete directory is left alone; other options need --force.
        XCTAssertTrue(try DataPrep.mnist(source: src, output: out, options: options()).alreadyComplete)
        var other = options()
        other.val = 30
        XCTAssertThrowsError(try DataPrep.mnist(source: src, output: out, options: other)) { e in
            XCTAssertTrue("\(e)".contains("--force"), "\(e)")
        }
        other.force = true
        let replaced = try DataPrep.mnist(source: src, output: out, options: other)
        XCTAssertEqual(replaced.index.splits["val"]?.count, 30)
        XCTAssertEqual(Set(Fixtures.snapshot(out).keys), Set(replaced.index.splits.values.flatMap { $0.shards.map(\.file) } + ["index.json"]))
    }

    func testDamagedShardIsRewrittenOnRerun() throws {
        let src = Fixtures.tempDir()
        Fixtures.writeIDX(src, train: 120, test: 30, gzip: true, dotNames: false)
        let out = Fixtures.tempDir()
        _ = try DataPrep.mnist(source: src, output: out, options: options())
        let reference = Fixtures.snapshot(out)
        let shard = out.appendingPathComponent("train-00002.h5")
        let bytes = try Data(contentsOf: shard)
        try bytes.prefix(bytes.count / 3).write(to: shard)
        let r = try DataPrep.mnist(source: src, output: out, options: options())
        XCTAssertEqual(r.shardsWritten, 1)
        XCTAssertEqual(Fixtures.snapshot(out), reference)
    }

    func testTinyImageNetLayout() throws {
        let root = Fixtures.tempDir()
        let wnids = ["n02", "n01"]
        try (wnids.joined(separator: "\n") + "\n").write(to: root.appendingPathComponent("wnids.txt"), atomically: true, encoding: .utf8)
        try "n01\tgoldfish, Carassius auratus\nn02\tcat\nn99\tunused\n".write(to: root.appendingPathComponent("words.txt"), atomically: true, encoding: .utf8)
        for w in wnids {
            let d = root.appendingPathComponent("train/\(w)/images")
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            for i in 0..<4 { Fixtures.writeJPEG(d.appendingPathComponent("\(w)_\(i).JPEG"), Fixtures.smoothImage(64, 64, seed: i), 64, 64) }
            try "\(w)_0.JPEG\t0\t0\t63\t63\n".write(to: root.appendingPathComponent("train/\(w)/\(w)_boxes.txt"), atomically: true, encoding: .utf8)
        }
        let val = root.appendingPathComponent("val/images")
        try FileManager.default.createDirectory(at: val, withIntermediateDirectories: true)
        var ann = ""
        for i in 0..<3 {
            Fixtures.writeJPEG(val.appendingPathComponent("val_\(i).JPEG"), Fixtures.smoothImage(64, 64, seed: 10 + i), 64, 64)
            ann += "val_\(i).JPEG\t\(wnids[i % 2])\t0\t0\t10\t10\n"
        }
        try ann.write(to: root.appendingPathComponent("val/val_annotations.txt"), atomically: true, encoding: .utf8)
        var o = Fixtures.quiet
        o.val = 2
        let out = Fixtures.tempDir()
        let r = try DataPrep.tinyImagenet(source: root, output: out, options: o)
        XCTAssertEqual(r.index.labelSets["labels"], ["goldfish, Carassius auratus", "cat"])
        XCTAssertEqual(r.index.splits.mapValues(\.count), ["train": 6, "val": 2, "test": 3])
        XCTAssertEqual(r.index.imageSize, [64, 64, 3])
        let test = try Fixtures.readSplit(out, "test")
        XCTAssertEqual(test.labels, [1, 0, 1]) // n02 is label 1 in sorted order
        XCTAssertGreaterThan(Fixtures.psnr(Array(test.images[0..<12288]), Fixtures.smoothImage(64, 64, seed: 10)), 32)

        XCTAssertThrowsError(try DataPrep.tinyImagenet(source: root.appendingPathComponent("val"), output: Fixtures.tempDir(), options: o)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("Expected: the extracted tiny-imagenet-200 folder"), text)
            XCTAssertTrue(text.contains("Found: a directory with images/, val_annotations.txt"), text)
        }
    }
}
