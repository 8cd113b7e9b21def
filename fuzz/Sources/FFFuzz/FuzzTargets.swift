import DataPrep
import FFEngine
import FFIO
import Foundation

/// One fuzz target per decoder or parser that reads user files. Each takes arbitrary bytes;
/// returning (success or a thrown, caught FFError) is fine, a trap, a hang or a sanitizer
/// report is a bug. Files that must be on disk go to a per-process scratch directory.
///
/// `checkpoint` and `shard` read files the way repro does, integrity checks first (the
/// checkpoint's own record, the index's SHA-256 of the shard), so damage is refused before
/// libhdf5 parses anything. `h5raw` hands the same readers files nothing vouches for
/// (checkpoints from before the integrity record, shards of splits too large for checksums
/// at load): what it finds is in libhdf5 itself (fuzz/README.md).
public enum FuzzTargets {
    /// The targets that must never fail (CI's smoke pass runs these).
    public static let all = ["png", "jpeg", "idx", "cifar", "tar", "index", "checkpoint", "shard"]
    /// Also run by `make fuzz`, where findings are reported rather than fatal.
    public static let libraryTargets = ["h5raw"]

    /// Bound on declared image pixels while fuzzing (keeps each execution fast).
    static var limits = ffio_image_limits(max_pixels: 1 << 22, max_file_bytes: 0)

    public static let scratch: URL = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? URL(fileURLWithPath: "/dev/shm")
            : FileManager.default.temporaryDirectory
        let url = base.appendingPathComponent("ffrepro-fuzz-\(getpid())", isDirectory: true)
        try? FileManager.default.createDirectory(at: url.appendingPathComponent("shard"), withIntermediateDirectories: true)
        return url
    }()

    /// Removes the scratch directory (call once at the end).
    public static func cleanUp() { try? FileManager.default.removeItem(at: scratch) }

    public static func run(_ target: String, _ bytes: [UInt8]) {
        switch target {
        case "png", "jpeg": image(bytes)
        case "idx": DataPrepFuzz.idx(bytes)
        case "tar": DataPrepFuzz.tar(bytes)
        case "cifar":
            let url = scratch.appendingPathComponent("cifar.tar")
            guard write(bytes, url) else { return }
            DataPrepFuzz.cifar(archive: url)
        case "index":
            if let idx = try? DatasetIndex.decode(Data(bytes), url: scratch.appendingPathComponent("index.json")) {
                _ = try? idx.split("train", directory: scratch)
                _ = try? idx.encoded()
            }
        case "checkpoint":
            // HDF5 at byte 0 is a file without an integrity record (version 1 before the
            // record existed): libhdf5 parses it unchecked, so it belongs to h5raw.
            if bytes.starts(with: [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]) { return }
            let url = scratch.appendingPathComponent("ck.h5")
            guard write(bytes, url) else { return }
            if let c = try? Checkpoint.read(from: url) {
                _ = c.problems(expected: [("params/w", [2, 2])], allowExtra: false)
            }
            _ = try? RunCheckpoint.describe(url)
            _ = try? Checkpoint.read(from: url, allowForeign: true)
        case "shard": shard(bytes, vouched: false)
        case "h5raw":
            let url = scratch.appendingPathComponent("raw.h5")
            guard write(bytes, url) else { return }
            _ = try? Checkpoint.read(from: url)
            _ = try? Checkpoint.read(from: url, allowForeign: true)
            shard(bytes, vouched: true)
        default: break
        }
    }

    static func write(_ bytes: [UInt8], _ url: URL) -> Bool {
        (try? Data(bytes).write(to: url)) != nil
    }

    static func image(_ bytes: [UInt8]) {
        var err = [CChar](repeating: 0, count: 512)
        for minShort: Int32 in [0, 16] {
            var img = ffio_image()
            if ffio_image_decode(bytes, bytes.count, minShort, &limits, &img, &err, err.count) == 0 {
                let n = Int(img.width) * Int(img.height) * 3
                if n > 0 { _ = img.pixels[n - 1] }
                ffio_free(img.pixels)
            }
        }
        for size in [8, 37] {
            var out = [UInt8](repeating: 0, count: size * size * 3)
            _ = ffio_image_prepare_mem(bytes, bytes.count, Int32(size), &limits, &out, nil, nil, &err, err.count)
        }
    }

    /// Size and SHA-256 of the shard seed (as Corpus writes it) that the index of `shard`
    /// describes.
    static let seedShard: (bytes: Int, sha256: String) = {
        let url = scratch.appendingPathComponent("seed-shard.h5")
        guard (try? Corpus.writeShard(url)) != nil, let sum = try? AtomicFile.sha256(of: url) else { return (0, "") }
        return (AtomicFile.size(of: url) ?? 0, sum)
    }()

    /// The bytes as the only shard of a split of four 2x2 gray images. Not `vouched`: the
    /// index describes the corpus seed, as after a damaging copy (the loader must refuse
    /// the file before parsing it). `vouched`: the index matches the bytes, so the HDF5
    /// reader parses whatever they are.
    static func shard(_ bytes: [UInt8], vouched: Bool) {
        let dir = scratch.appendingPathComponent("shard")
        let file = dir.appendingPathComponent("train-00000.h5")
        guard write(bytes, file) else { return }
        var (size, sum) = seedShard
        if vouched {
            guard let s = try? AtomicFile.sha256(of: file) else { return }
            (size, sum) = (bytes.count, s)
        }
        let index = DatasetIndex(
            dataset: "fuzz", source: "fuzz", imageSize: [2, 2, 1], channelMean: [0.5], channelStd: [0.25],
            labelSets: ["labels": ["a", "b"]],
            splits: ["train": .init(count: 4, shards: [.init(file: "train-00000.h5", count: 4, bytes: size, sha256: sum)])],
            conversion: .init(command: "fuzz", val: 0, seed: 0, size: nil, shardBytes: 16, fingerprint: "fuzz"), skipped: [])
        guard let data = try? index.encoded(), (try? data.write(to: dir.appendingPathComponent("index.json"))) != nil else { return }
        for memory in [0, 1 << 20] {
            let opts = LoaderOptions(shuffle: false, prefetch: 0, checksums: .always, memoryLimit: memory)
            if let loader = try? ShardLoader(directory: dir, split: "train", options: opts) {
                _ = try? loader.batch(epoch: 0, index: 0, batchSize: 4)
            }
        }
    }
}
