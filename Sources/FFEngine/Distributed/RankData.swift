import Foundation

/// The part of the data one rank loads: under data parallelism a replica decodes and
/// augments only its rows of each global batch (the global order and each sample's
/// augmentation are those of the 1-process run: both are functions of the seed, the epoch
/// and the sample), and an evaluation split is cut into one contiguous range per rank.
enum RankData {
    /// A batch part and the size of the global batch it belongs to.
    struct Part {
        var batch: Batch
        var globalCount: Int
    }

    /// The batches of `epoch`, each cut to `rows(globalCount)`.
    static func parts(_ provider: BatchProvider, epoch: Int, batchSize: Int,
                      rows: @escaping (Int) -> Range<Int>) -> () throws -> Part? {
        if let loader = provider as? ShardLoader {
            let order = loader.order(epoch: epoch)
            let n = loader.batchCount(batchSize: batchSize, dropLast: loader.options.dropLast)
            let make: (Int) -> Result<Part, Error> = { b in
                let lo = b * batchSize
                let locals = Array(order[lo..<min(lo + batchSize, order.count)])
                let mine = rows(locals.count)
                return Result {
                    Part(batch: try loader.assemble(Array(locals[mine]), epoch: epoch), globalCount: locals.count)
                }
            }
            return stream(count: n, prefetch: loader.options.prefetch, make)
        }
        let batches = provider.batches(epoch: epoch, batchSize: batchSize)
        return {
            guard let b = try batches.next() else { return nil }
            let r = rows(b.count)
            return Part(batch: Batch(images: b.images.slice(r.lowerBound, r.count), labels: Array(b.labels[r])),
                        globalCount: b.count)
        }
    }

    /// Rows `range` of an evaluation split (the provider's epoch-0 order), in batches.
    static func rows(_ provider: BatchProvider, _ range: Range<Int>, batchSize: Int) -> () throws -> Batch? {
        if let loader = provider as? ShardLoader {
            let order = loader.order(epoch: 0)
            let n = (range.count + batchSize - 1) / batchSize
            let make: (Int) -> Result<Part, Error> = { b in
                let lo = range.lowerBound + b * batchSize
                let locals = Array(order[lo..<min(lo + batchSize, range.upperBound)])
                return Result { Part(batch: try loader.assemble(locals, epoch: 0), globalCount: locals.count) }
            }
            let next = stream(count: n, prefetch: loader.options.prefetch, make)
            return { try next()?.batch }
        }
        // Other providers: whole batches, cut to the range.
        let batches = provider.batches(epoch: 0, batchSize: batchSize)
        var start = 0
        return {
            while let b = try batches.next() {
                defer { start += b.count }
                let lo = max(start, range.lowerBound), hi = min(start + b.count, range.upperBound)
                if lo < hi {
                    return Batch(images: b.images.slice(lo - start, hi - lo), labels: Array(b.labels[(lo - start)..<(hi - start)]))
                }
                if start >= range.upperBound { return nil }
            }
            return nil
        }
    }

    /// Items 0..<count, prepared ahead on a thread when `prefetch` > 0 (as the loader does).
    private static func stream(count: Int, prefetch: Int, _ make: @escaping (Int) -> Result<Part, Error>) -> () throws -> Part? {
        if prefetch <= 0 {
            var b = 0
            return {
                guard b < count else { return nil }
                defer { b += 1 }
                return try make(b).get()
            }
        }
        let pf = Prefetcher(count: count, depth: prefetch, name: "ffrepro.rank-prefetch", make: make)
        return { try pf.nextItem()?.get() }
    }
}
