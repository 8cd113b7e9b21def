import FFEngine
import FFIO
import Foundation

/// Writes the seed corpus (fuzz/corpus/<target>/...): small valid inputs of every kind the
/// targets read, made with the same writers the tests use. `ffrepro-fuzz make-corpus DIR`.
public enum Corpus {
    public static func write(to root: URL) throws {
        let fm = FileManager.default
        for t in FuzzTargets.all { try fm.createDirectory(at: root.appendingPathComponent(t), withIntermediateDirectories: true) }
        func path(_ t: String, _ name: String) -> String { root.appendingPathComponent(t).appendingPathComponent(name).path }
        func pattern(_ n: Int, _ seed: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: ($0 * 37 + seed * 11 + ($0 / 7) * 3)) } }
        func check(_ rc: Int32) throws { if rc != 0 { throw FFError(.io, String(cString: ffio_last_error())) } }

        try check(ffio_png_write_ex(path("png", "gray8.png"), pattern(64, 1), 8, 8, 0, 8, nil, 0, 0))
        try check(ffio_png_write_ex(path("png", "rgb12x10.png"), pattern(360, 2), 12, 10, 2, 8, nil, 0, 0))
        let palette: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]
        try check(ffio_png_write_ex(path("png", "palette.png"), pattern(36, 3).map { $0 % 4 }, 6, 6, 3, 8, palette, 4, 0))
        try check(ffio_png_write_ex(path("png", "rgba16-interlaced.png"), pattern(9 * 7 * 8, 4), 9, 7, 6, 16, nil, 0, 1))
        try check(ffio_png_write_ex(path("png", "gray-alpha.png"), pattern(2 * 5 * 5, 5), 5, 5, 4, 8, nil, 0, 0))
        try check(ffio_jpeg_write_ex(path("jpeg", "baseline420.jpg"), pattern(24 * 16 * 3, 6), 24, 16, 3, 80, 0, 2))
        try check(ffio_jpeg_write_ex(path("jpeg", "progressive444.jpg"), pattern(17 * 9 * 3, 7), 17, 9, 3, 70, 1, 0))
        try check(ffio_jpeg_write_ex(path("jpeg", "gray.jpg"), pattern(20 * 20, 8), 20, 20, 1, 75, 0, 0))
        try check(ffio_jpeg_write_ex(path("jpeg", "progressive422.jpg"), pattern(40 * 24 * 3, 9), 40, 24, 3, 60, 1, 1))

        func be(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
        try Data([0, 0, 8, 3] + be(2) + be(4) + be(4) + pattern(32, 10)).write(to: URL(fileURLWithPath: path("idx", "images.idx3")))
        try Data([0, 0, 8, 1] + be(3) + [1, 2, 9]).write(to: URL(fileURLWithPath: path("idx", "labels.idx1")))

        func tar(_ files: [(String, [UInt8])], longName: Bool = false) -> [UInt8] {
            func field(_ s: String, _ n: Int) -> [UInt8] { Array((Array(s.utf8) + [UInt8](repeating: 0, count: n)).prefix(n)) }
            func header(_ name: String, _ size: Int, _ type: UInt8) -> [UInt8] {
                var h = field(name, 100) + field("0000644", 8) + field("0000000", 8) + field("0000000", 8)
                h += field(String(size, radix: 8).leftPad(11), 12) + field("00000000000", 12)
                h += [UInt8](repeating: 32, count: 8) + [type] + field("", 100) + field("ustar", 6) + field("00", 2)
                h += [UInt8](repeating: 0, count: 512 - h.count)
                let sum = h.reduce(0) { $0 + Int($1) }
                h.replaceSubrange(148..<156, with: field(String(sum, radix: 8).leftPad(6), 7) + [32])
                return h
            }
            var out: [UInt8] = []
            for (name, data) in files {
                if longName {
                    let n = Array(name.utf8) + [0]
                    out += header("././@LongLink", n.count, UInt8(ascii: "L")) + n + [UInt8](repeating: 0, count: (512 - n.count % 512) % 512)
                }
                out += header(name, data.count, UInt8(ascii: "0")) + data + [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
            }
            return out + [UInt8](repeating: 0, count: 1024)
        }
        try Data(tar([("a/b.txt", Array("hello".utf8)), ("c.bin", pattern(700, 11))])).write(to: URL(fileURLWithPath: path("tar", "two.tar")))
        try Data(tar([(String(repeating: "long/", count: 30) + "x", pattern(20, 12))], longName: true))
            .write(to: URL(fileURLWithPath: path("tar", "longname.tar")))
        // CIFAR-100 layout (record = coarse, fine, 3072 pixels); uncompressed, so mutations
        // reach the tar and record structure instead of the gzip checksum.
        let rec: (Int) -> [UInt8] = { i in [UInt8(i % 20), UInt8(i % 100)] + pattern(3072, 20 + i) }
        try Data(tar([("cifar-100-binary/train.bin", rec(0) + rec(1)), ("cifar-100-binary/test.bin", rec(2)),
                      ("cifar-100-binary/coarse_label_names.txt", Array("a\nb\n".utf8))]))
            .write(to: URL(fileURLWithPath: path("cifar", "cifar100.tar")))
        let rec10: (Int) -> [UInt8] = { i in [UInt8(i % 10)] + pattern(3072, 40 + i) }
        try Data(tar((1...5).map { ("data_batch_\($0).bin", rec10($0)) } + [("test_batch.bin", rec10(9))]))
            .write(to: URL(fileURLWithPath: path("cifar", "cifar10.tar")))

        // index.json and a shard matching FuzzTargets.shard's index (4 images, 2x2x1).
        let shard = URL(fileURLWithPath: path("shard", "train-00000.h5"))
        try writeShard(shard)
        try fm.createDirectory(at: root.appendingPathComponent("h5raw"), withIntermediateDirectories: true)
        try writeShard(URL(fileURLWithPath: path("h5raw", "shard.h5")))
        let index = DatasetIndex(
            dataset: "fuzz", source: "fuzz", imageSize: [2, 2, 1], channelMean: [0.5], channelStd: [0.25],
            labelSets: ["labels": ["a", "b"]],
            splits: ["train": .init(count: 4, shards: [.init(file: "train-00000.h5", count: 4, bytes: AtomicFile.size(of: shard) ?? 0,
                                                             sha256: try AtomicFile.sha256(of: shard))])],
            conversion: .init(command: "fuzz", val: 0, seed: 0, size: nil, shardBytes: 16, fingerprint: "fuzz"), skipped: [])
        try index.encoded().write(to: URL(fileURLWithPath: path("index", "index.json")))

        // A checkpoint with the run attributes of a real recipe.
        let config = try Recipes.named("asge-fmnist")
        let ck = Checkpoint(tensors: [("params/w", Tensor(shape: [2, 2], values: [1, -2, 0.5, 3])),
                                      ("optim/w.m", Tensor(shape: [2, 2], values: [0, 0, 0, 0]))],
                            attributes: ["recipe": config.name, "config": config.json(), "epoch": "1", "step": "2",
                                         "history": "[]", "input_shape": "1,28,28", "classes": "10"],
                            uint64Arrays: [("state/optimizer_steps", [2])])
        try ck.write(to: URL(fileURLWithPath: path("checkpoint", "run.h5")))
        // For h5raw: the same checkpoint without its integrity record (as written before it
        // existed; HDF5 addresses are relative to the user block, so it can be cut off).
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path("checkpoint", "run.h5")))
        let u = Checkpoint.userblockBytes(of: Array(bytes.prefix(4096)))
        try bytes.dropFirst(u).write(to: URL(fileURLWithPath: path("h5raw", "checkpoint-v1.h5")))
    }

    /// The shard seed: four 2x2 gray images, labels, and the attributes the loader checks.
    public static func writeShard(_ url: URL) throws {
        func pattern(_ n: Int, _ seed: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: ($0 * 37 + seed * 11 + ($0 / 7) * 3)) } }
        let f = try HDF5File(url, mode: .create)
        let images = try f.createDataset("images", type: .uint8, shape: [4, 2, 2, 1], chunk: [2, 2, 2, 1])
        try pattern(16, 13).withUnsafeBufferPointer { try images.write($0, start: nil, count: nil) }
        let labels: [Int32] = [0, 1, 1, 0]
        try labels.withUnsafeBufferPointer { try f.write("labels", shape: [4], values: $0) }
        try f.setAttribute("format", ShardFormat.name)
        try f.setAttribute("format_version", [Int64(ShardFormat.version)], scalar: true)
        try f.setAttribute("dataset", "fuzz")
        try f.setAttribute("split", "train")
        try f.close()
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
