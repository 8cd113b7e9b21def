import FFEngine
import FFIO
import Foundation

/// Runs a conversion plan: shard by shard (resuming finished ones), then channel
/// statistics, checksums and index.json, which is written last.
enum Converter {
    static func run(_ plan: ConversionPlan, source: ItemSource, output: URL, options: PrepOptions) throws -> PrepResult {
        let start = Date()
        try options.validate()
        let imageSize = source.imageSize
        let imageBytes = imageSize.reduce(1, *)
        let fingerprint = plan.fingerprint(source: source)
        // One conversion per directory at a time; leftovers of dead processes go.
        let lock = try DirectoryLock(output, purpose: "repro prep \(plan.dataset)")
        defer { lock.release() }
        AtomicFile.removeStaleTemporaries(in: output)
        if let done = try finishedBefore(output, fingerprint: fingerprint, options: options) {
            return PrepResult(directory: output, index: done, imagesWritten: 0, shardsResumed: done.splits.values.reduce(0) { $0 + $1.shards.count },
                              shardsWritten: 0, alreadyComplete: true, seconds: Date().timeIntervalSince(start))
        }
        let perShard = plan.imagesPerShard(imageBytes: imageBytes)
        try removeStaleFiles(output, plan: plan, imagesPerShard: perShard)

        // Shards to keep from an earlier run (same plan, nothing skipped: a skipped image is
        // retried, since its file may have been fixed) and shards to write.
        var kept: [String: ShardSummary] = [:]
        var work: [ShardJob] = []
        for split in plan.splits {
            let shardCount = (split.items.count + perShard - 1) / perShard
            for k in 0..<shardCount {
                let lo = k * perShard, hi = min(lo + perShard, split.items.count)
                let file = ShardFormat.shardFileName(split: split.name, number: k)
                let meta = ShardWriter.Meta(plan: plan, fingerprint: fingerprint, imageSize: imageSize, split: split.name,
                                            number: k, shardCount: shardCount, firstItem: lo, plannedItems: hi - lo)
                if !options.force, let s = ShardWriter.existing(output.appendingPathComponent(file), meta: meta),
                   s.skipped.isEmpty {
                    kept[file] = s
                } else {
                    work.append(ShardJob(file: file, meta: meta, items: Array(split.items[lo..<hi])))
                }
            }
        }
        let written = try writeShards(work, source: source, output: output, imageBytes: imageBytes, plan: plan,
                                      kept: kept, options: options)
        var summaries: [String: [(file: String, summary: ShardSummary)]] = [:]
        for split in plan.splits {
            let shardCount = (split.items.count + perShard - 1) / perShard
            summaries[split.name] = (0..<shardCount).compactMap { k in
                let file = ShardFormat.shardFileName(split: split.name, number: k)
                return (kept[file] ?? written[file]).map { (file, $0) }
            }
        }
        let imagesWritten = written.values.reduce(0) { $0 + $1.count }

        let skipped = plan.splits.flatMap { s in (summaries[s.name] ?? []).flatMap { $0.summary.skipped } }
        let planned = plan.splits.reduce(0) { $0 + $1.items.count }
        let report = BadFileReport(skipped: skipped, total: planned)
        // Over the limit the list goes into the error (printed once, by the CLI); else here.
        let tooMany = Double(skipped.count) > options.maxBad * Double(planned)
        if !skipped.isEmpty && options.progress && !tooMany { report.print() }
        if tooMany {
            throw FFError(.quality, "\(skipped.count) of \(planned) images (\(report.percent)) could not be read, more than "
                + "--max-bad \(options.maxBad * 100)% allows; no index was written. Check the source (see the list below) "
                + "or raise --max-bad. The finished shards are kept, so a rerun only redoes the shards with bad images.\n"
                + report.text, file: output)
        }

        // Channel statistics over the train split, written into every shard.
        guard let train = summaries["train"], train.contains(where: { $0.summary.count > 0 }) else {
            throw FFError(.source, "The train split of \(plan.dataset) is empty; nothing to compute statistics from.", file: output)
        }
        let (mean, std) = channelStats(train.map(\.summary), pixelsPerImage: imageSize[0] * imageSize[1])
        let files = summaries.values.flatMap { $0.map(\.file) }.sorted()
        if case .afterFinalizing(let n)? = options.testingFailure, n < files.count {
            for f in files.prefix(n) { try ShardWriter.finalize(output.appendingPathComponent(f), mean: mean, std: std) }
            throw FFError(.io, "Testing: conversion stopped after finalizing \(n) shards.")
        }
        // Finalizing and checksumming are independent per shard (HDF5 calls are serialised
        // inside FFIO; the SHA-256 pass is not).
        let sums = try parallelMap(files, threads: options.threadCount) { f -> String in
            let url = output.appendingPathComponent(f)
            try ShardWriter.finalize(url, mean: mean, std: std)
            return try AtomicFile.sha256(of: url)
        }
        let digest = Dictionary(uniqueKeysWithValues: zip(files, sums))

        var splits: [String: DatasetIndex.Split] = [:]
        for s in plan.splits {
            var shards: [DatasetIndex.Shard] = []
            for (file, summary) in summaries[s.name] ?? [] {
                let url = output.appendingPathComponent(file)
                shards.append(.init(file: file, count: summary.count, bytes: AtomicFile.size(of: url) ?? 0,
                                    sha256: digest[file] ?? ""))
            }
            splits[s.name] = .init(count: shards.reduce(0) { $0 + $1.count }, shards: shards)
        }
        let index = DatasetIndex(
            dataset: plan.dataset, source: plan.source, imageSize: imageSize, channelMean: mean, channelStd: std,
            labelSets: Dictionary(plan.labelSets.map { ($0.key, $0.names) }, uniquingKeysWith: { a, _ in a }), splits: splits,
            conversion: .init(command: plan.command, val: plan.val, seed: plan.seed, size: plan.size,
                              shardBytes: plan.shardBytes, fingerprint: fingerprint),
            skipped: skipped)
        try AtomicFile.write(index.encoded(), to: output.appendingPathComponent(ShardFormat.indexFileName))
        return PrepResult(directory: output, index: index, imagesWritten: imagesWritten, shardsResumed: kept.count,
                          shardsWritten: written.count, alreadyComplete: false, seconds: Date().timeIntervalSince(start))
    }

    /// `body` over `items` on up to `threads` threads, results in order; the first error wins.
    static func parallelMap<T>(_ items: [String], threads: Int, _ body: (String) throws -> T) throws -> [T] {
        var results = [T?](repeating: nil, count: items.count)
        var firstError: Error? = nil
        let lock = NSLock()
        var next = 0
        results.withUnsafeMutableBufferPointer { out in
            DispatchQueue.concurrentPerform(iterations: max(1, min(threads, items.count))) { _ in
                while true {
                    lock.lock()
                    let i = next
                    next += 1
                    let stop = firstError != nil
                    lock.unlock()
                    if i >= items.count || stop { return }
                    do {
                        out[i] = try body(items[i])
                    } catch {
                        lock.lock()
                        firstError = firstError ?? error
                        lock.unlock()
                    }
                }
            }
        }
        if let e = firstError { throw e }
        return results.compactMap { $0 }
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

    /// The existing index if the directory already holds this exact conversion, every shard
    /// intact (size and SHA-256, as `prep check` verifies). A damaged shard is deleted so it
    /// is written again. Throws if the directory holds a different conversion and not --force.
    static func finishedBefore(_ output: URL, fingerprint: String, options: PrepOptions) throws -> DatasetIndex? {
        let indexURL = output.appendingPathComponent(ShardFormat.indexFileName)
        guard FileManager.default.fileExists(atPath: indexURL.path) else { return nil }
        let existing = try? DatasetIndex.load(directory: output)
        if let idx = existing, idx.conversion.fingerprint == fingerprint, !options.force {
            let shards = idx.splits.values.flatMap(\.shards)
            let damaged = try parallelMap(shards.map(\.file), threads: options.threadCount) { file -> Bool in
                let url = output.appendingPathComponent(file)
                guard let shard = shards.first(where: { $0.file == file }), AtomicFile.size(of: url) == shard.bytes else { return true }
                return (try? AtomicFile.sha256(of: url)) != shard.sha256
            }
            let bad = zip(shards, damaged).filter(\.1).map(\.0.file)
            if bad.isEmpty { return idx }
            if options.progress {
                FileHandle.standardError.write(Data(("\(bad.count) shard(s) do not match index.json (damaged or replaced): "
                    + bad.prefix(5).joined(separator: ", ") + "; writing them again.\n").utf8))
            }
            for f in bad { try? FileManager.default.removeItem(at: output.appendingPathComponent(f)) }
        } else if existing?.conversion.fingerprint != fingerprint, !options.force {
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
            // Temporary files of live processes cannot exist here (the directory is locked).
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

    /// Item i goes to buffer slot i; returns the failure reason per slot.
    func decode(_ items: [Int], into buffer: UnsafeMutablePointer<UInt8>) -> [String?] {
        var errors = [String?](repeating: nil, count: items.count)
        let lock = NSLock()
        var next = 0
        errors.withUnsafeMutableBufferPointer { errs in
            DispatchQueue.concurrentPerform(iterations: min(threads, max(1, items.count))) { _ in
                while true {
                    lock.lock()
                    let i = next
                    next += 1
                    lock.unlock()
                    if i >= items.count { return }
                    errs[i] = source.decode(items[i], into: buffer + i * imageBytes)
                }
            }
        }
        return errors
    }
}
