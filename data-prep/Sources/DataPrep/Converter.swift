import FFEngine
import FFIO
import Foundation

/// Runs a conversion plan: shard by shard (resuming finished ones), then channel
/// statistics, checksums and index.json, which is written last.
enum Converter {
    static func run(_ plan: ConversionPlan, source: ItemSource, output: URL, options: PrepOptions) throws -> PrepResult {
        let start = Date()
        let fm = FileManager.default
        let imageSize = source.imageSize
        let imageBytes = imageSize.reduce(1, *)
        let fingerprint = plan.fingerprint(source: source)
        do {
            try fm.createDirectory(at: output, withIntermediateDirectories: true)
        } catch {
            throw FFError(.io, "Cannot create the output directory \(output.path): \(error.localizedDescription).", file: output)
        }
        if let done = try finishedBefore(output, fingerprint: fingerprint, options: options) {
            return PrepResult(directory: output, index: done, imagesWritten: 0, shardsResumed: done.splits.values.reduce(0) { $0 + $1.shards.count },
                              shardsWritten: 0, alreadyComplete: true, seconds: Date().timeIntervalSince(start))
        }
        try removeStaleFiles(output, plan: plan, imagesPerShard: plan.imagesPerShard(imageBytes: imageBytes))

        let perShard = plan.imagesPerShard(imageBytes: imageBytes)
        var summaries: [String: [(file: String, summary: ShardSummary)]] = [:]
        var written = 0, resumed = 0, imagesWritten = 0
        let decoder = ParallelDecoder(source: source, threads: options.threadCount, imageBytes: imageBytes)
        for split in plan.splits {
            let shardCount = (split.items.count + perShard - 1) / perShard
            let progress = Progress("\(plan.dataset) \(split.name)", total: split.items.count, unit: "img",
                                    enabled: options.progress)
            var list: [(file: String, summary: ShardSummary)] = []
            for k in 0..<shardCount {
                let lo = k * perShard, hi = min(lo + perShard, split.items.count)
                let file = ShardFormat.shardFileName(split: split.name, number: k)
                let url = output.appendingPathComponent(file)
                let meta = ShardWriter.Meta(plan: plan, fingerprint: fingerprint, imageSize: imageSize, split: split.name,
                                            number: k, shardCount: shardCount, firstItem: lo, plannedItems: hi - lo)
                if let s = ShardWriter.existing(url, meta: meta) {
                    list.append((file, s))
                    resumed += 1
                    progress.advance(by: hi - lo)
                    continue
                }
                if case .afterShards(let n)? = options.testingFailure, written == n {
                    throw FFError(.io, "Testing: conversion stopped after \(n) new shards.")
                }
                let items = Array(split.items[lo..<hi])
                let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, items.count * imageBytes))
                defer { buffer.deallocate() }
                let errors = decoder.decode(items, into: buffer) { progress.advance(by: $0) }
                // Keep decoded images in order, dropping failures.
                var labels = [[Int32]](repeating: [], count: plan.labelSets.count)
                var skipped: [DatasetIndex.Skipped] = []
                var n = 0
                for (i, item) in items.enumerated() {
                    if let reason = errors[i] {
                        skipped.append(.init(path: source.name(of: item), reason: reason))
                        continue
                    }
                    if n != i { (buffer + n * imageBytes).update(from: buffer + i * imageBytes, count: imageBytes) }
                    for (k, l) in source.labels(of: item).enumerated() { labels[k].append(l) }
                    n += 1
                }
                let c = imageSize[2]
                var sum = [UInt64](repeating: 0, count: c), sumSq = sum
                ffio_channel_sums(buffer, Int64(n * imageSize[0] * imageSize[1]), Int32(c), &sum, &sumSq)
                let summary = ShardSummary(count: n, sum: sum, sumSq: sumSq, skipped: skipped)
                try ShardWriter.write(url, meta: meta, pixels: buffer, labels: labels, summary: summary)
                list.append((file, summary))
                written += 1
                imagesWritten += n
            }
            progress.finish()
            summaries[split.name] = list
        }

        let all = summaries.values.flatMap { $0 }
        let skipped = plan.splits.flatMap { s in summaries[s.name]!.flatMap { $0.summary.skipped } }
        let planned = plan.splits.reduce(0) { $0 + $1.items.count }
        let report = BadFileReport(skipped: skipped, total: planned)
        if !skipped.isEmpty && options.progress { report.print() }
        if Double(skipped.count) > options.maxBad * Double(planned) {
            throw FFError(.quality, "\(skipped.count) of \(planned) images (\(report.percent)) could not be read, more than "
                + "--max-bad \(options.maxBad * 100)% allows; no index was written. Check the source (see the list below) "
                + "or raise --max-bad. The finished shards are kept, so a rerun only redoes the rest.\n" + report.text, file: output)
        }

        // Channel statistics over the train split, written into every shard.
        guard let train = summaries["train"], train.contains(where: { $0.summary.count > 0 }) else {
            throw FFError(.source, "The train split of \(plan.dataset) is empty; nothing to compute statistics from.", file: output)
        }
        let (mean, std) = channelStats(train.map(\.summary), pixelsPerImage: imageSize[0] * imageSize[1])
        var finalized = 0
        for (file, _) in all.sorted(by: { $0.file < $1.file }) {
            if case .afterFinalizing(let n)? = options.testingFailure, finalized == n {
                throw FFError(.io, "Testing: conversion stopped after finalizing \(n) shards.")
            }
            try ShardWriter.finalize(output.appendingPathComponent(file), mean: mean, std: std)
            finalized += 1
        }

        var splits: [String: DatasetIndex.Split] = [:]
        for s in plan.splits {
            var shards: [DatasetIndex.Shard] = []
            for (file, summary) in summaries[s.name]! {
                let url = output.appendingPathComponent(file)
                shards.append(.init(file: file, count: summary.count, bytes: AtomicFile.size(of: url) ?? 0,
                                    sha256: try AtomicFile.sha256(of: url)))
            }
            splits[s.name] = .init(count: shards.reduce(0) { $0 + $1.count }, shards: shards)
        }
        let index = DatasetIndex(
            dataset: plan.dataset, source: plan.source, imageSize: imageSize, channelMean: mean, channelStd: std,
            labelSets: Dictionary(uniqueKeysWithValues: plan.labelSets.map { ($0.key, $0.names) }), splits: splits,
            conversion: .init(command: plan.command, val: plan.val, seed: plan.seed, size: plan.size,
                              shardBytes: plan.shardBytes, fingerprint: fingerprint),
            skipped: skipped)
        try AtomicFile.write(index.encoded(), to: output.appendingPathComponent(ShardFormat.indexFileName))
        return PrepResult(directory: output, index: index, imagesWritten: imagesWritten, shardsResumed: resumed,
                          shardsWritten: written, alreadyComplete: false, seconds: Date().timeIntervalSince(start))
    }

    /// Mean and standard deviation of pixel/255 per channel, from exact integer sums.
    static func channelStats(_ shards: [ShardSummary], pixelsPerImage: Int) -> ([Double], [Double]) {
        let c = shards[0].sum.count
        let n = Double(shards.reduce(0) { $0 + $1.count } * pixelsPerImage)
        var mean = [Double](), std = [Double]()
        for ch in 0..<c {
            let s = Double(shards.reduce(UInt64(0)) { $0 + $1.sum[ch] })
            let q = Double(shards.reduce(UInt64(0)) { $0 + $1.sumSq[ch] })
            let m = s / n
            let variance = max(0, q / n - m * m)
            mean.append(m / 255)
            std.append(max(variance.squareRoot(), 1e-6) / 255)
        }
        return (mean, std)
    }

    /// The existing index if the directory already holds this exact conversion (files
    /// present with the recorded sizes). Throws if it holds a different one and not --force.
    static func finishedBefore(_ output: URL, fingerprint: String, options: PrepOptions) throws -> DatasetIndex? {
        let indexURL = output.appendingPathComponent(ShardFormat.indexFileName)
        guard FileManager.default.fileExists(atPath: indexURL.path) else { return nil }
        let existing = try? DatasetIndex.load(directory: output)
        if let idx = existing, idx.conversion.fingerprint == fingerprint {
            let intact = idx.splits.keys.allSatisfy { (try? idx.verify(split: $0, directory: output, checksums: false)) != nil }
            if intact { return idx }
        } else if !options.force {
            throw FFError(.invalidArgument, "\(output.path) already holds a conversion with different options or source "
                + "data (\(existing?.dataset ?? "unreadable index")). Choose another --out, or add --force to replace it.",
                file: output)
        }
        // Rewrite: drop the index first, so the directory never looks complete in between.
        try? FileManager.default.removeItem(at: indexURL)
        return nil
    }

    /// Removes leftovers of interrupted runs (temporary files) and shard files that the
    /// plan does not contain (from an earlier plan with more shards).
    static func removeStaleFiles(_ output: URL, plan: ConversionPlan, imagesPerShard: Int) throws {
        let fm = FileManager.default
        var wanted = Set<String>()
        for s in plan.splits {
            let n = (s.items.count + imagesPerShard - 1) / imagesPerShard
            for k in 0..<n { wanted.insert(ShardFormat.shardFileName(split: s.name, number: k)) }
        }
        for name in (try? fm.contentsOfDirectory(atPath: output.path)) ?? [] {
            let ours = ShardFormat.splits.contains { name.hasPrefix($0 + "-") } || name.hasPrefix(ShardFormat.indexFileName)
            guard ours else { continue }
            if AtomicFile.isTemporaryName(name) || (name.hasSuffix(".h5") && !wanted.contains(name)) {
                try? fm.removeItem(at: output.appendingPathComponent(name))
            }
        }
    }
}

/// Decodes items on all cores into fixed slots, so the output order never depends on
/// thread timing.
final class ParallelDecoder {
    let source: ItemSource
    let threads: Int
    let imageBytes: Int

    init(source: ItemSource, threads: Int, imageBytes: Int) {
        self.source = source
        self.threads = max(1, threads)
        self.imageBytes = imageBytes
    }

    /// Item i goes to buffer slot i; returns the failure reason per slot. `advance` is
    /// called on the calling thread with the number of finished items, every block.
    func decode(_ items: [Int], into buffer: UnsafeMutablePointer<UInt8>, advance: (Int) -> Void) -> [String?] {
        var errors = [String?](repeating: nil, count: items.count)
        let block = max(64, 16 * threads)
        var lo = 0
        while lo < items.count {
            let hi = min(lo + block, items.count)
            let lock = NSLock()
            var next = lo
            errors.withUnsafeMutableBufferPointer { errs in
                DispatchQueue.concurrentPerform(iterations: threads) { _ in
                    while true {
                        lock.lock()
                        let i = next
                        next += 1
                        lock.unlock()
                        if i >= hi { return }
                        errs[i] = source.decode(items[i], into: buffer + i * imageBytes)
                    }
                }
            }
            advance(hi - lo)
            lo = hi
        }
        return errors
    }
}
