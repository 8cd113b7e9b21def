import FFEngine
import FFIO
import Foundation
import XCTest

@testable import DataPrep

/// IDX (MNIST-like) and CIFAR binary round trips.
final class ArrayFormatTests: XCTestCase {
    func testIDXRawWithDotNames() throws {
        let src = Fixtures.tempDir(), out = Fixtures.tempDir()
        let (pixels, labels) = Fixtures.writeIDX(src, train: 60, test: 15, h: 5, w: 4, gzip: false, dotNames: true)
        var o = Fixtures.quiet
        o.val = 10
        o.seed = 3
        let r = try DataPrep.mnist(source: src, output: out, options: o)
        XCTAssertEqual(r.index.splits["train"]?.count, 50)
        XCTAssertEqual(r.index.splits["val"]?.count, 10)
        XCTAssertEqual(r.index.splits["test"]?.count, 15)
        XCTAssertEqual(r.index.imageSize, [5, 4, 1])
        XCTAssertEqual(r.index.labelSets["labels"]?.count, 10)

        // The hold-out is stratified by class and seeded; both splits keep file order.
        let (train, held) = try Holdout.split(Array(0..<60), val: 10, seed: 3, dataset: "mnist") { Int32(labels[$0]) }
        for (split, items) in [("train", train), ("val", held), ("test", Array(60..<75))] {
            let got = try Fixtures.readSplit(out, split)
            XCTAssertEqual(got.labels, items.map { Int32(labels[$0]) }, split)
            XCTAssertEqual(got.images, items.flatMap { pixels[$0 * 20..<($0 + 1) * 20] }, split)
        }
        // Mean over the train split only.
        let trainBytes: [UInt8] = train.flatMap { pixels[$0 * 20..<($0 + 1) * 20] }
        let trainPixels = trainBytes.map(Double.init)
        let mean = trainPixels.reduce(0, +) / Double(trainPixels.count) / 255
        XCTAssertEqual(r.index.channelMean[0], mean, accuracy: 1e-12)
    }

    func testIDXGzipWithDashNames() throws {
        let src = Fixtures.tempDir(), out = Fixtures.tempDir()
        let (pixels, labels) = Fixtures.writeIDX(src, train: 30, test: 7, gzip: true, dotNames: false)
        var o = Fixtures.quiet
        o.val = 5
        let r = try DataPrep.fashionMNIST(source: src, output: out, options: o)
        XCTAssertEqual(r.index.dataset, "fashion-mnist")
        XCTAssertEqual(r.index.labelSets["labels"]?.first, "T-shirt/top")
        let test = try Fixtures.readSplit(out, "test")
        XCTAssertEqual(test.labels, labels[30...].map { Int32($0) })
        XCTAssertEqual(test.images, Array(pixels[(30 * 784)...]))
        XCTAssertEqual(r.index.conversion.command, "repro prep fashion-mnist --src \(src.path) --val 5")
    }

    func testWrongSourceSaysExpectedAndFound() throws {
        let src = Fixtures.tempDir(), out = Fixtures.tempDir()
        try Data("x".utf8).write(to: src.appendingPathComponent("readme.txt"))
        Fixtures.writeCIFAR(src.appendingPathComponent("cifar-10-batches-bin"), hundred: false, perFile: 1)
        XCTAssertThrowsError(try DataPrep.mnist(source: src, output: out, options: Fixtures.quiet)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("Expected: a directory with the four IDX files"), text)
            XCTAssertTrue(text.contains("Found: a directory with cifar-10-batches-bin/, readme.txt"), text)
            XCTAssertTrue(text.contains("Missing: train-images-idx3-ubyte"), text)
        }
        XCTAssertThrowsError(try DataPrep.cifar100(source: src, output: out, options: Fixtures.quiet)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("cifar-100-binary.tar.gz, or its extracted folder"), text)
            XCTAssertTrue(text.contains("other CIFAR dataset"), text)
        }
        let nowhere = src.appendingPathComponent("nope")
        XCTAssertThrowsError(try DataPrep.cifar10(source: nowhere, output: out, options: Fixtures.quiet)) { e in
            XCTAssertTrue("\(e)".contains("Found: nothing (the path does not exist)"), "\(e)")
        }
    }

    func testCIFAR10FolderAndTarGzGiveTheSameShards() throws {
        let root = Fixtures.tempDir()
        let folder = root.appendingPathComponent("cifar-10-batches-bin")
        let records = Fixtures.writeCIFAR(folder, hundred: false, perFile: 12)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        let tgz = root.appendingPathComponent("cifar-10-binary.tar.gz")
        Fixtures.writeTarGz(tgz, files: names.map { ("cifar-10-batches-bin/\($0)", Array(FileManager.default.contents(atPath: folder.appendingPathComponent($0).path)!)) })
        var o = Fixtures.quiet
        o.val = 6
        let a = Fixtures.tempDir(), b = Fixtures.tempDir()
        let ra = try DataPrep.cifar10(source: root, output: a, options: o)
        _ = try DataPrep.cifar10(source: tgz, output: b, options: o)
        XCTAssertEqual(ra.index.splits["train"]?.count, 54)
        XCTAssertEqual(ra.index.splits["test"]?.count, 12)
        for f in ra.index.splits.values.flatMap({ $0.shards.map(\.file) }) {
            XCTAssertEqual(FileManager.default.contents(atPath: a.appendingPathComponent(f).path),
                           FileManager.default.contents(atPath: b.appendingPathComponent(f).path), f)
        }
        // Planar RGB in the file becomes interleaved HWC.
        let test = try Fixtures.readSplit(a, "test")
        let rec = records[60 + 3]
        for k in [0, 1, 500, 1023] {
            XCTAssertEqual(test.images[3 * 3072 + 3 * k], rec[1 + k])
            XCTAssertEqual(test.images[3 * 3072 + 3 * k + 1], rec[1 + 1024 + k])
            XCTAssertEqual(test.images[3 * 3072 + 3 * k + 2], rec[1 + 2048 + k])
        }
        XCTAssertEqual(test.labels[3], Int32(rec[0]))
        XCTAssertEqual(ra.index.labelSets["labels"], CIFARSource.cifar10Names)
    }

    func testCIFAR100KeepsFineAndCoarseLabels() throws {
        let root = Fixtures.tempDir()
        let records = Fixtures.writeCIFAR(root.appendingPathComponent("cifar-100-binary"), hundred: true, perFile: 30)
        var o = Fixtures.quiet
        o.val = 0
        let out = Fixtures.tempDir()
        let r = try DataPrep.cifar100(source: root, output: out, options: o)
        XCTAssertEqual(r.index.labelSets["labels"]?.count, 100)
        XCTAssertEqual(r.index.labelSets["coarse_labels"]?.count, 20)
        XCTAssertEqual(r.index.labelSets["coarse_labels"]?[3], "coarse3")
        let fine = try Fixtures.readSplit(out, "train", labelKey: "labels")
        let coarse = try Fixtures.readSplit(out, "train", labelKey: "coarse_labels")
        XCTAssertEqual(fine.labels, records[0..<30].map { Int32($0[1]) })
        XCTAssertEqual(coarse.labels, records[0..<30].map { Int32($0[0]) })
        let f = try HDF5File(out.appendingPathComponent("train-00000.h5"))
        XCTAssertTrue(try f.stringAttribute("coarse_class_names").contains("coarse19"))
    }
}
