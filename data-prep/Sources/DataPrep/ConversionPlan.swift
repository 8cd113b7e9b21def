import FFEngine
import FFIO
import Foundation

/// Items (images) of a source distribution that the converter can decode by number.
/// `decode` is called from several threads at once.
protocol ItemSource: AnyObject {
    /// Stored [height, width, channels].
    var imageSize: [Int] { get }
    /// Label dataset names, e.g. ["labels"] or ["labels", "coarse_labels"].
    var labelKeys: [String] { get }
    /// Labels of `item`, one per label key.
    func labels(of item: Int) -> [Int32]
    /// Stable name of the item for reports and the fingerprint (relative path, file#record).
    func name(of item: Int) -> String
    /// Writes the item's pixels (HWC uint8) to `out`; returns nil, or why it failed.
    func decode(_ item: Int, into out: UnsafeMutablePointer<UInt8>) -> String?
}

/// Everything that determines the output of a conversion.
struct ConversionPlan {
    var dataset: String
    var source: String
    /// `repro prep ...` without --out (paths as given by the user).
    var command: String
    var labelSets: [(key: String, names: [String])]
    /// (split name, item numbers) in train, val, test order.
    var splits: [(name: String, items: [Int])]
    var val: Int
    var seed: UInt64
    var size: Int?
    var shardBytes: Int

    /// Hash of the plan and its item list: a resumed run only reuses shards with the same one.
    func fingerprint(source: ItemSource) -> String {
        var ctx = ffio_sha256_ctx()
        ffio_sha256_init(&ctx)
        func add(_ s: String) {
            var bytes = Array(s.utf8)
            bytes.append(10)
            ffio_sha256_update(&ctx, bytes, bytes.count)
        }
        add("ffrepro-shard v\(ShardFormat.version)")
        add("dataset=\(dataset) size=\(source.imageSize) val=\(val) seed=\(seed) shard_bytes=\(shardBytes)")
        for set in labelSets { add("\(set.key)=\(set.names.joined(separator: "|"))") }
        for split in splits {
            add("split \(split.name) \(split.items.count)")
            for i in split.items { add("\(source.name(of: i))\t\(source.labels(of: i))") }
        }
        var digest = [UInt8](repeating: 0, count: 32)
        ffio_sha256_final(&ctx, &digest)
        return digest.map { String(format: "%02x", $0) }.joined()
    }

    /// Images per shard for the shard size bound.
    func imagesPerShard(imageBytes: Int) -> Int { max(1, shardBytes / max(1, imageBytes)) }
}

enum Holdout {
    /// Splits `items` into (train, val): `val` of them held out, stratified by class (each
    /// class gives its share of `val`, largest remainders rounded up, and keeps at least one
    /// training image while another class can give instead), chosen within each class by a
    /// seeded permutation; both lists keep the original order.
    static func split(_ items: [Int], val: Int, seed: UInt64, dataset: String,
                      label: (Int) -> Int32) throws -> (train: [Int], val: [Int]) {
        guard val >= 0 && val < items.count else {
            throw FFError(.invalidArgument, "--val \(val) is not possible for \(dataset): the training set has "
                + "\(items.count) images; choose 0...\(max(0, items.count - 1)).")
        }
        var byClass: [Int32: [Int]] = [:]   // class -> positions in `items`
        for (i, item) in items.enumerated() { byClass[label(item), default: []].append(i) }
        let classes = byClass.keys.sorted()
        let n = Double(items.count)
        var quota: [Int32: Int] = [:]
        var fraction: [(Int32, Double)] = []
        for c in classes {
            let exact = Double(val) * Double(byClass[c]!.count) / n
            quota[c] = min(Int(exact), max(0, byClass[c]!.count - 1))
            fraction.append((c, exact - Double(quota[c]!)))
        }
        let order = fraction.sorted { $0.1 > $1.1 || $0.1 == $1.1 && $0.0 < $1.0 }.map(\.0)
        var left = val - quota.values.reduce(0, +)
        // Largest remainders first; a class gives its last image only when nothing else can.
        for keepOne in [true, false] where left > 0 {
            var progressed = true
            while left > 0 && progressed {
                progressed = false
                for c in order where left > 0 && quota[c]! < byClass[c]!.count - (keepOne ? 1 : 0) {
                    quota[c]! += 1
                    left -= 1
                    progressed = true
                }
            }
        }
        var isVal = [Bool](repeating: false, count: items.count)
        for c in classes {
            var rng = SeededRandom(seed: seed, stream: "holdout", UInt64(bitPattern: Int64(c)))
            let members = byClass[c]!
            for p in rng.permutation(members.count).prefix(quota[c]!) { isVal[members[p]] = true }
        }
        var train: [Int] = [], held: [Int] = []
        train.reserveCapacity(items.count - val)
        held.reserveCapacity(val)
        for (i, item) in items.enumerated() {
            if isVal[i] { held.append(item) } else { train.append(item) }
        }
        return (train, held)
    }
}

/// Description of a wrong --src: what was expected and what is there.
enum SourceProblem {
    static func error(_ dataset: String, _ src: URL, expected: String, hint: String = "") -> FFError {
        FFError(.source, "\(src.path) is not a \(dataset) source. Expected: \(expected) Found: \(found(src))."
            + (hint.isEmpty ? "" : " \(hint)"), file: src)
    }

    static func found(_ url: URL) -> String {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else { return "nothing (the path does not exist)" }
        if !isDir.boolValue {
            return "a file of \(AtomicFile.size(of: url) ?? 0) bytes"
        }
        let entries = ((try? fm.contentsOfDirectory(atPath: url.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        if entries.isEmpty { return "an empty directory" }
        let shown = entries.prefix(12).map { name -> String in
            var d: ObjCBool = false
            _ = fm.fileExists(atPath: url.appendingPathComponent(name).path, isDirectory: &d)
            return d.boolValue ? name + "/" : name
        }
        return "a directory with " + shown.joined(separator: ", ") + (entries.count > 12 ? ", ... (\(entries.count) entries)" : "")
    }
}
