import FFEngine
import Foundation
import TestScratch
import XCTest

/// Writes a small dataset directory in the shard format (without DataPrep, which this test
/// target does not link), for loader tests.
enum ShardFixture {
    static func tempDir() -> URL { Scratch.directory("ffload") }

    static func pixel(_ i: Int, _ k: Int) -> UInt8 { UInt8((i * 131 + k * 29 + (k * k * 7) % 61) & 255) }

    /// `counts` images per shard of the train split (and a 5-image test split), h x w x c.
    @discardableResult
    static func make(_ dir: URL, counts: [Int], h: Int, w: Int, c: Int, classes: Int = 10,
                     pixel: (Int, Int) -> UInt8 = ShardFixture.pixel) throws -> DatasetIndex {
        let bytes = h * w * c
        var shards: [DatasetIndex.Shard] = []
        var testShards: [DatasetIndex.Shard] = []
        var sum = [Double](repeating: 0, count: c), sq = sum
        var n = 0
        for (split, list) in [("train", counts), ("test", [5])] {
            var first = 0
            for (k, count) in list.enumerated() {
                let file = ShardFormat.shardFileName(split: split, number: k)
                let f = try HDF5File(dir.appendingPathComponent(file), mode: .create)
                let base = split == "train" ? first : 100_000 + first
                let px = (0..<(count * bytes)).map { pixel(base + $0 / bytes, $0 % bytes) }
                let labels = (0..<count).map { Int32((base + $0) % classes) }
                if split == "train" {
                    for (i, v) in px.enumerated() { sum[i % c] += Double(v); sq[i % c] += Double(v) * Double(v) }
                    n += count * h * w
                }
                let d = try f.createDataset("images", type: .uint8, shape: [count, h, w, c], chunk: [min(count, 4), h, w, c])
                try px.withUnsafeBufferPointer { try d.write($0, start: nil, count: nil) }
                let l = try f.createDataset("labels", type: .int32, shape: [count])
                try labels.withUnsafeBufferPointer { try l.write($0, start: nil, count: nil) }
                try f.setAttribute("format", ShardFormat.name)
                try f.setAttribute("format_version", [Int64(ShardFormat.version)], scalar: true)
                try f.setAttribute("dataset", "fixture")
                try f.setAttribute("split", split)
                try f.close()
                let url = dir.appendingPathComponent(file)
                let shard = DatasetIndex.Shard(file: file, count: count, bytes: AtomicFile.size(of: url)!, sha256: try AtomicFile.sha256(of: url))
                if split == "train" { shards.append(shard) } else { testShards.append(shard) }
                first += count
            }
        }
        let mean = sum.map { $0 / Double(n) / 255 }
        let std = zip(sq, mean).map { (($0 / Double(n)) / 65025 - $1 * $1).squareRoot() }
        let index = DatasetIndex(
            dataset: "fixture", source: "generated", imageSize: [h, w, c], channelMean: mean, channelStd: std,
            labelSets: ["labels": (0..<classes).map { "c\($0)" }],
            splits: ["train": .init(count: counts.reduce(0, +), shards: shards), "test": .init(count: 5, shards: testShards)],
            conversion: .init(command: "repro prep fixture", val: 0, seed: 0, size: nil, shardBytes: 0, fingerprint: "x"),
            skipped: [])
        try AtomicFile.write(index.encoded(), to: dir.appendingPathComponent(ShardFormat.indexFileName))
        return index
    }
}

final class LoaderTests: XCTestCase {
    static let dir: URL = {
        let d = ShardFixture.tempDir()
        try! ShardFixture.make(d, counts: [40, 40, 20], h: 8, w: 8, c: 3)
        return d
    }()

    func loader(_ o: LoaderOptions, split: String = "train") throws -> ShardLoader {
        try ShardLoader(directory: LoaderTests.dir, split: split, options: o)
    }

    func epoch(_ l: ShardLoader, _ e: Int, batch: Int = 16) -> [Batch] { try! l.batches(epoch: e, batchSize: batch).collect() }

    func testSameSeedSameBatchesAndEpochsDiffer() throws {
        let o = LoaderOptions(seed: 5, shuffle: true, augmentation: .randomCrop(size: 6, padding: 1, flip: true))
        let a = try loader(o), b = try loader(LoaderOptions(seed: 5, shuffle: true, augmentation: o.augmentation, prefetch: 0))
        XCTAssertEqual(a.sampleCount, 100)
        XCTAssertEqual(a.sampleShape, [3, 6, 6])
        XCTAssertTrue(a.isInMemory)
        let e0 = epoch(a, 0), e0b = epoch(b, 0), e1 = epoch(a, 1)
        XCTAssertEqual(e0.count, 7)
        XCTAssertEqual(e0.last?.count, 4)
        for (x, y) in zip(e0, e0b) {
            XCTAssertEqual(x.labels, y.labels)
            XCTAssertEqual(x.images.array, y.images.array)
        }
        XCTAssertNotEqual(e0.flatMap(\.labels), e1.flatMap(\.labels))
        XCTAssertEqual(e0.flatMap(\.labels).sorted(), e1.flatMap(\.labels).sorted())
        // A single batch on demand equals the iterated one.
        let third = try a.batch(epoch: 0, index: 3, batchSize: 16)
        XCTAssertEqual(third.images.array, e0[3].images.array)
        // Another seed gives another order; dropLast drops the partial batch.
        XCTAssertNotEqual(epoch(try loader(LoaderOptions(seed: 6)), 0).flatMap(\.labels), e0.flatMap(\.labels))
        XCTAssertEqual(epoch(try loader(LoaderOptions(seed: 5, dropLast: true)), 0).count, 6)
    }

    func testStreamingGivesTheSameBatchesAsMemory() throws {
        let aug = Augmentation.randomResizedCrop(size: 5, scaleMin: 0.3, flip: true)
        let mem = try loader(LoaderOptions(seed: 2, augmentation: aug))
        let stream = try loader(LoaderOptions(seed: 2, augmentation: aug, memoryLimit: 0))
        XCTAssertFalse(stream.isInMemory)
        for (x, y) in zip(epoch(mem, 3, batch: 32), epoch(stream, 3, batch: 32)) {
            XCTAssertEqual(x.labels, y.labels)
            XCTAssertEqual(x.images.array, y.images.array)
        }
    }

    func testSubsetIsAPrefixOfAFixedPermutation() throws {
        let s10 = try loader(LoaderOptions(seed: 1, subset: 10)), s30 = try loader(LoaderOptions(seed: 1, subset: 30))
        XCTAssertEqual(s10.sampleCount, 10)
        XCTAssertTrue(Set(s10.rows).isSubset(of: Set(s30.rows)))
        XCTAssertEqual(s30.rows, ShardLoader.subsetRows(total: 100, count: 30, seed: 1))
        var rng = SeededRandom(seed: 1, stream: "subset")
        XCTAssertEqual(Set(s10.rows), Set(rng.permutation(100).prefix(10)))
        // Labels follow the rows; the subset's seed can be fixed independently of the order seed.
        XCTAssertEqual(s10.labels, s10.rows.map { Int32($0 % 10) })
        let other = try loader(LoaderOptions(seed: 99, subset: 10, subsetSeed: 1))
        XCTAssertEqual(other.rows, s10.rows)
        XCTAssertEqual(epoch(s10, 0).flatMap(\.labels).count, 10)
    }

    func testUnshuffledOrderAndPixelsWithoutAugmentation() throws {
        let l = try loader(LoaderOptions(shuffle: false, normalize: false))
        let b = epoch(l, 0, batch: 50)[1]
        XCTAssertEqual(b.labels, (50..<100).map { Int32($0 % 10) })
        // Sample 50 pixel (y=2, x=3, channel 1) at NCHW position.
        let k = (2 * 8 + 3) * 3 + 1
        XCTAssertEqual(b.images[0 * 192 + 1 * 64 + 2 * 8 + 3], Float(ShardFixture.pixel(50, k)) / 255, accuracy: 1e-6)
    }

    func testFlipRateCropOffsetsAndNormalization() throws {
        // Pixel (y, x) of every 12x12 image is 1 + 12 * x + y, so a window's offset and flip
        // can be read back from its values (0 is padding).
        let dir = ShardFixture.tempDir()
        try ShardFixture.make(dir, counts: [400], h: 12, w: 12, c: 1) { _, k in UInt8(1 + 12 * (k % 12) + k / 12) }
        let l = try ShardLoader(directory: dir, split: "train",
                                options: LoaderOptions(seed: 3, augmentation: .randomCrop(size: 10, padding: 2, flip: true), normalize: false))
        var flips = 0, total = 0
        var lefts = Set<Int>(), tops = Set<Int>()
        for e in 0..<3 {
            for b in try l.batches(epoch: e, batchSize: 64).collect() {
                for i in 0..<b.count {
                    let img = (0..<100).map { Int((b.images[i * 100 + $0] * 255).rounded()) }
                    // The first and last real pixel of one row give the direction and offsets.
                    let a = (0..<100).first { img[$0] > 0 }!
                    let z = (a..<(a / 10 * 10 + 10)).last { img[$0] > 0 }!
                    let flip = (img[z] - 1) / 12 < (img[a] - 1) / 12
                    let x = a % 10, y = a / 10
                    let sx = (img[a] - 1) / 12, sy = (img[a] - 1) % 12
                    lefts.insert(flip ? sx - (9 - x) : sx - x)
                    tops.insert(sy - y)
                    if flip { flips += 1 }
                    total += 1
                }
            }
        }
        XCTAssertEqual(total, 1200)
        XCTAssertEqual(Double(flips) / Double(total), 0.5, accuracy: 0.05)
        XCTAssertEqual(lefts, Set(-2...4))
        XCTAssertEqual(tops, Set(-2...4))

        // Normalized over the whole split without augmentation: mean ~0, std ~1 per channel.
        let n = try loader(LoaderOptions(seed: 0, normalize: true))
        var s = [Double](repeating: 0, count: 3), q = s
        var count = 0.0
        for b in try n.batches(epoch: 0, batchSize: 32).collect() {
            for i in 0..<b.images.count {
                let ch = (i / 64) % 3
                s[ch] += Double(b.images[i]); q[ch] += Double(b.images[i] * b.images[i])
            }
            count += Double(b.count * 64)
        }
        for ch in 0..<3 {
            XCTAssertEqual(s[ch] / count, 0, accuracy: 1e-4)
            XCTAssertEqual((q[ch] / count).squareRoot(), 1, accuracy: 1e-4)
        }
    }

    func testCenterCropAndResizedCropShapes() throws {
        let c = try loader(LoaderOptions(augmentation: .resizeCenterCrop(resize: 8, crop: 4), normalize: false))
        let b = try c.batch(epoch: 0, index: 0, batchSize: 2)
        XCTAssertEqual(b.images.shape, [2, 3, 4, 4])
        // Stored size equals `resize`: a pure center crop (offset 2).
        let row = c.rows[c.order(epoch: 0)[0]]
        XCTAssertEqual(b.images[0], Float(ShardFixture.pixel(row, (2 * 8 + 2) * 3)) / 255, accuracy: 1e-6)
        let e = try loader(LoaderOptions(augmentation: .centerCrop(size: 7)))
        XCTAssertEqual(e.sampleShape, [3, 7, 7])
        XCTAssertThrowsError(try loader(LoaderOptions(augmentation: .randomCrop(size: 20, padding: 2, flip: false)))) { err in
            XCTAssertTrue("\(err)".contains("larger than the padded image"), "\(err)")
        }
    }

    func testErrorsNameTheFile() throws {
        let dir = ShardFixture.tempDir()
        try ShardFixture.make(dir, counts: [10, 10], h: 4, w: 4, c: 1)
        let shard = dir.appendingPathComponent("train-00001.h5")
        let data = try Data(contentsOf: shard)
        try data.prefix(data.count - 100).write(to: shard)
        XCTAssertThrowsError(try ShardLoader(directory: dir, split: "train", options: LoaderOptions())) { e in
            XCTAssertTrue("\(e)".contains(shard.path) && "\(e)".contains("truncated"), "\(e)")
        }
        // Same size but other bytes: the checksum catches it.
        var flipped = data
        flipped[data.count - 10] ^= 0xFF
        try flipped.write(to: shard)
        XCTAssertThrowsError(try ShardLoader(directory: dir, split: "train", options: LoaderOptions())) { e in
            XCTAssertTrue("\(e)".contains(shard.path) && "\(e)".contains("checksum"), "\(e)")
        }
        // Without checksum verification, the HDF5 layer still names the truncated file.
        try data.prefix(data.count / 2).write(to: shard)
        var index = try DatasetIndex.load(directory: dir)
        index.splits["train"]!.shards[1].bytes = data.count / 2
        try AtomicFile.write(index.encoded(), to: dir.appendingPathComponent("index.json"))
        XCTAssertThrowsError(try ShardLoader(directory: dir, split: "train", options: LoaderOptions(checksums: .sizesOnly))) { e in
            XCTAssertTrue("\(e)".contains(shard.path), "\(e)")
        }
        // A foreign HDF5 file in place of a shard.
        let f = try HDF5File(shard, mode: .create)
        _ = try f.createDataset("weights", type: .float32, shape: [3])
        try f.close()
        index.splits["train"]!.shards[1].bytes = AtomicFile.size(of: shard)!
        try AtomicFile.write(index.encoded(), to: dir.appendingPathComponent("index.json"))
        XCTAssertThrowsError(try ShardLoader(directory: dir, split: "train", options: LoaderOptions(checksums: .sizesOnly))) { e in
            XCTAssertTrue("\(e)".contains(shard.path) && "\(e)".contains("not an ffrepro dataset shard"), "\(e)")
        }
        XCTAssertThrowsError(try ShardLoader(directory: dir, split: "val", options: LoaderOptions())) { e in
            XCTAssertTrue("\(e)".contains("no split 'val'"), "\(e)")
        }
        XCTAssertThrowsError(try ShardLoader(directory: dir, split: "test", options: LoaderOptions(labelKey: "coarse_labels"))) { e in
            XCTAssertTrue("\(e)".contains("no label set 'coarse_labels'"), "\(e)")
        }
    }

    func testCatalogErrorsPrintTheCommand() throws {
        let missing = ShardFixture.tempDir().appendingPathComponent("cifar10")
        XCTAssertThrowsError(try DatasetCatalog.check("cifar10", directory: missing)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("is missing"), text)
            XCTAssertTrue(text.contains("repro prep cifar10 --src <cifar-10-binary.tar.gz> --out \(missing.path)"), text)
        }
        try FileManager.default.createDirectory(at: missing, withIntermediateDirectories: true)
        XCTAssertThrowsError(try DatasetCatalog.check("cifar10", directory: missing)) { e in
            XCTAssertTrue("\(e)".contains("is incomplete"), "\(e)")
        }
        XCTAssertThrowsError(try DatasetCatalog.check("cifar10", directory: LoaderTests.dir)) { e in
            XCTAssertTrue("\(e)".contains("holds dataset 'fixture'"), "\(e)")
        }
        for name in ["mnist", "fashion-mnist", "cifar10", "cifar100", "imagenet100", "tiny-imagenet", "imagenette"] {
            let e = try DatasetCatalog.entry(name)
            XCTAssertEqual(e.directory, "data/\(name)")
            XCTAssertTrue(e.prepCommand.hasPrefix("repro prep "))
        }
        XCTAssertEqual(try DatasetCatalog.entry("cifar100").classCount, 100)
    }
}
