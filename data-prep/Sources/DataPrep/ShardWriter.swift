import FFEngine
import Foundation

/// Per-shard facts the converter needs: counts, exact pixel sums (for the train split's
/// mean/std) and the items that could not be decoded.
struct ShardSummary {
    var count: Int
    var sum: [UInt64]
    var sumSq: [UInt64]
    var skipped: [DatasetIndex.Skipped]
}

/// The layout of one shard file (written by ShardStream) and recognition of finished ones.
enum ShardWriter {
    struct Meta {
        let plan: ConversionPlan
        let fingerprint: String
        let imageSize: [Int]
        let split: String
        let number: Int
        let shardCount: Int
        let firstItem: Int
        let plannedItems: Int
    }

    static func classNamesKey(_ labelKey: String) -> String {
        labelKey == "labels" ? "class_names" : labelKey.replacingOccurrences(of: "_labels", with: "") + "_class_names"
    }

    static func json<T: Encodable>(_ value: T) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? enc.encode(value)) ?? Data(), as: UTF8.self)
    }

    /// Labels (one array per label key) and every attribute of a shard whose images are
    /// written (ShardStream).
    static func writeLabelsAndAttributes(_ f: HDF5File, meta: Meta, labels: [[Int32]], summary: ShardSummary) throws {
        let n = summary.count
        for (k, set) in meta.plan.labelSets.enumerated() {
            let d = try f.createDataset(set.key, type: .int32, shape: [n])
            if n > 0 { try labels[k].withUnsafeBufferPointer { try d.write($0, start: nil, count: nil) } }
        }
        let c = meta.imageSize[2]
        try f.setAttribute("format", ShardFormat.name)
        try f.setAttribute("format_version", [Int64(ShardFormat.version)], scalar: true)
        try f.setAttribute("dataset", meta.plan.dataset)
        try f.setAttribute("split", meta.split)
        try f.setAttribute("source", meta.plan.source)
        try f.setAttribute("image_size", meta.imageSize.map(Int64.init))
        for set in meta.plan.labelSets { try f.setAttribute(classNamesKey(set.key), json(set.names)) }
        // Filled in by `finalize` once the whole train split is known.
        try f.setAttribute("channel_mean", [Double](repeating: .nan, count: c))
        try f.setAttribute("channel_std", [Double](repeating: .nan, count: c))
        try f.setAttribute("pixel_sum", summary.sum)
        try f.setAttribute("pixel_sum_sq", summary.sumSq)
        try f.setAttribute("shard_index", [Int64(meta.number)], scalar: true)
        try f.setAttribute("shard_count", [Int64(meta.shardCount)], scalar: true)
        try f.setAttribute("first_item", [Int64(meta.firstItem)], scalar: true)
        try f.setAttribute("planned_items", [Int64(meta.plannedItems)], scalar: true)
        try f.setAttribute("skipped", json(summary.skipped))
        try f.setAttribute("conversion_fingerprint", meta.fingerprint)
    }

    /// The summary of a finished shard from an earlier run with the same plan, or nil if
    /// the file is absent, unreadable or from another plan (it is then rewritten).
    static func existing(_ url: URL, meta: Meta) -> ShardSummary? {
        guard FileManager.default.fileExists(atPath: url.path), let f = try? HDF5File(url) else { return nil }
        guard (try? f.stringAttribute("conversion_fingerprint")) == meta.fingerprint,
              (try? f.stringAttribute("split")) == meta.split,
              (try? f.attribute("shard_index", as: Int64.self)) == [Int64(meta.number)],
              let images = try? f.dataset("images"), images.shape.dropFirst().elementsEqual(meta.imageSize),
              let sum = try? f.attribute("pixel_sum", as: UInt64.self),
              let sumSq = try? f.attribute("pixel_sum_sq", as: UInt64.self),
              let skippedText = try? f.stringAttribute("skipped"),
              let skipped = try? JSONDecoder().decode([DatasetIndex.Skipped].self, from: Data(skippedText.utf8))
        else { return nil }
        return ShardSummary(count: images.shape[0], sum: sum, sumSq: sumSq, skipped: skipped)
    }

    /// Writes the dataset's channel statistics into a finished shard, in place (same type
    /// and length as the placeholders, so nothing moves and reruns give identical bytes).
    static func finalize(_ url: URL, mean: [Double], std: [Double]) throws {
        let f = try HDF5File(url, mode: .readWrite)
        try f.setAttribute("channel_mean", mean)
        try f.setAttribute("channel_std", std)
        try f.close()
        try AtomicFile.fsync(url)
    }
}
