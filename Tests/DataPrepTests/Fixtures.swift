import FFEngine
import FFIO
import Foundation
import TestScratch
import XCTest

@testable import DataPrep

/// Small generated datasets in temporary directories.
enum Fixtures {
    static func tempDir(_ name: String = "ffprep") -> URL { Scratch.directory(name) }

    static var quiet: PrepOptions { PrepOptions(progress: false) }

    static func bigEndian(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }

    static func write(_ bytes: [UInt8], to url: URL, gzip: Bool) {
        if gzip {
            XCTAssertEqual(ffio_gzip_write(url.path, bytes, bytes.count), 0)
        } else {
            try! Data(bytes).write(to: url)
        }
    }

    /// Deterministic pixel pattern of image i.
    static func pixel(_ i: Int, _ k: Int) -> UInt8 { UInt8((i * 31 + k * 7 + (k * k) % 13) & 255) }

    /// IDX files with `train` + `test` images of h x w; returns (pixels, labels) of train then test.
    @discardableResult
    static func writeIDX(_ dir: URL, train: Int, test: Int, h: Int = 28, w: Int = 28, gzip: Bool, dotNames: Bool) -> ([UInt8], [UInt8]) {
        var allPixels: [UInt8] = [], allLabels: [UInt8] = []
        for (prefix, n, offset) in [("train", train, 0), ("t10k", test, train)] {
            var img = [0, 0, 8, 3].map(UInt8.init) + bigEndian(n) + bigEndian(h) + bigEndian(w)
            var lab = [0, 0, 8, 1].map(UInt8.init) + bigEndian(n)
            for i in 0..<n {
                let px = (0..<(h * w)).map { pixel(offset + i, $0) }
                img += px
                allPixels += px
                let l = UInt8((offset + i) * 7 % 10)
                lab.append(l)
                allLabels.append(l)
            }
            let sep = dotNames ? "." : "-"
            let gz = gzip ? ".gz" : ""
            write(img, to: dir.appendingPathComponent("\(prefix)-images\(sep)idx3-ubyte\(gz)"), gzip: gzip)
            write(lab, to: dir.appendingPathComponent("\(prefix)-labels\(sep)idx1-ubyte\(gz)"), gzip: gzip)
        }
        return (allPixels, allLabels)
    }

    /// CIFAR binary files (per file `perFile` records) in dir; returns the records (train files then test).
    @discardableResult
    static func writeCIFAR(_ dir: URL, hundred: Bool, perFile: Int) -> [[UInt8]] {
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let files = hundred ? ["train.bin", "test.bin"] : (1...5).map { "data_batch_\($0).bin" } + ["test_batch.bin"]
        var records: [[UInt8]] = []
        for (f, name) in files.enumerated() {
            var bytes: [UInt8] = []
            for r in 0..<perFile {
                let i = f * perFile + r
                var rec: [UInt8] = hundred ? [UInt8(i % 20), UInt8(i % 100)] : [UInt8(i % 10)]
                rec += (0..<3072).map { pixel(i, $0) }
                records.append(rec)
                bytes += rec
            }
            try! Data(bytes).write(to: dir.appendingPathComponent(name))
        }
        let meta = hundred
            ? [("fine_label_names.txt", (0..<100).map { "fine\($0)" }), ("coarse_label_names.txt", (0..<20).map { "coarse\($0)" })]
            : [("batches.meta.txt", CIFARSource.cifar10Names)]
        for (name, list) in meta { try! (list.joined(separator: "\n") + "\n\n").write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        return records
    }

    /// A ustar archive of `files` (name -> bytes), gzip-compressed to `url`.
    static func writeTarGz(_ url: URL, files: [(String, [UInt8])]) {
        var out: [UInt8] = []
        func field(_ s: String, _ n: Int) -> [UInt8] { Array((Array(s.utf8) + [UInt8](repeating: 0, count: n)).prefix(n)) }
        for (name, data) in files {
            var h = field(name, 100) + field("0000644", 8) + field("0000000", 8) + field("0000000", 8)
            h += field(String(format: "%011o", data.count), 12) + field("00000000000", 12)
            h += [UInt8](repeating: 32, count: 8) + [UInt8(ascii: "0")] + field("", 100) + field("ustar", 6) + field("00", 2)
            h += [UInt8](repeating: 0, count: 512 - h.count)
            let sum = h.reduce(0) { $0 + Int($1) }
            let chk = field(String(format: "%06o", sum), 7) + [32]
            h.replaceSubrange(148..<156, with: chk)
            out += h + data + [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
        }
        out += [UInt8](repeating: 0, count: 1024)
        write(out, to: url, gzip: true)
    }

    /// A smooth RGB test image (compresses well, so JPEG error is small).
    static func smoothImage(_ w: Int, _ h: Int, seed: Int) -> [UInt8] {
        var px = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                let fx = Double(x) / Double(w), fy = Double(y) / Double(h)
                px[(y * w + x) * 3] = UInt8(127.5 + 120 * sin(6 * fx + Double(seed)))
                px[(y * w + x) * 3 + 1] = UInt8(127.5 + 120 * cos(5 * fy + Double(seed)))
                px[(y * w + x) * 3 + 2] = UInt8(127.5 + 120 * sin(4 * (fx + fy)))
            }
        }
        return px
    }

    static func writeJPEG(_ url: URL, _ px: [UInt8], _ w: Int, _ h: Int, quality: Int32 = 95) {
        XCTAssertEqual(ffio_jpeg_write(url.path, px, Int32(w), Int32(h), 3, quality), 0, String(cString: ffio_last_error()))
    }

    static func writePNG(_ url: URL, _ px: [UInt8], _ w: Int, _ h: Int, colorType: Int32 = 2, bitDepth: Int32 = 8,
                         palette: [UInt8] = []) {
        XCTAssertEqual(ffio_png_write(url.path, px, Int32(w), Int32(h), colorType, bitDepth, palette, Int32(palette.count / 3)), 0,
                       String(cString: ffio_last_error()))
    }

    static func psnr(_ a: [UInt8], _ b: [UInt8]) -> Double {
        precondition(a.count == b.count)
        let mse = zip(a, b).reduce(0.0) { $0 + pow(Double($1.0) - Double($1.1), 2) } / Double(a.count)
        return mse == 0 ? .infinity : 10 * log10(255 * 255 / mse)
    }

    /// All images and labels of a split, in stored order.
    static func readSplit(_ dir: URL, _ split: String, labelKey: String = "labels") throws -> (images: [UInt8], labels: [Int32]) {
        let index = try DatasetIndex.load(directory: dir)
        var images: [UInt8] = [], labels: [Int32] = []
        for shard in index.splits[split]!.shards {
            let f = try HDF5File(dir.appendingPathComponent(shard.file))
            images += try f.dataset("images").read(as: UInt8.self)
            labels += try f.dataset(labelKey).read(as: Int32.self)
        }
        return (images, labels)
    }

    /// Files of a directory with their bytes.
    static func snapshot(_ dir: URL) -> [String: Data] {
        var out: [String: Data] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] {
            out[name] = FileManager.default.contents(atPath: dir.appendingPathComponent(name).path)
        }
        return out
    }
}
