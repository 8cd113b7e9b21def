import FFEngine
import FFIO
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One shard to write: its file, its metadata and the source items it covers.
struct ShardJob {
    let file: String
    let meta: ShardWriter.Meta
    let items: [Int]
}

extension Converter {
    /// Images decoded per block: enough to keep every thread busy, at most ~32 MiB.
    static func blockSize(imageBytes: Int, threads: Int) -> Int {
        max(1, min(max(16 * threads, 64), (32 << 20) / max(1, imageBytes)))
    }

    /// Decodes block after block on the decoding threads while a writer thread compacts,
    /// sums and appends the previous block to its shard file (two block buffers), so file
    /// writes and fsyncs overlap decoding. Memory: two blocks of pixels, whatever the shard
    /// size; the buffers are reused, so they are faulted in once.
    static func writeShards(_ work: [ShardJob], source: ItemSource, output: URL, imageBytes: Int, plan: ConversionPlan,
                            kept: [String: ShardSummary], options: PrepOptions) throws -> [String: ShardSummary] {
        guard !work.isEmpty else { return [:] }
        let block = blockSize(imageBytes: imageBytes, threads: options.threadCount)
        let buffers = (0..<2).map { _ in UnsafeMutablePointer<UInt8>.allocate(capacity: block * imageBytes) }
        defer { buffers.forEach { $0.deallocate() } }
        let slots = buffers.map { _ in DispatchSemaphore(value: 1) }
        let writer = DispatchQueue(label: "ffrepro.prep.writer")
        // fsync + rename of finished shards, off the writer's path: flushing hundreds of MiB
        // to disk would otherwise stall decoding.
        let committer = DispatchQueue(label: "ffrepro.prep.commit")
        let state = WriterState()
        let decoder = ParallelDecoder(source: source, threads: options.threadCount, imageBytes: imageBytes)
        var progressBySplit: [String: FFEngine.Progress] = [:]
        for split in plan.splits {
            let n = work.filter { $0.meta.split == split.name }.reduce(0) { $0 + $1.items.count }
            progressBySplit[split.name] = FFEngine.Progress("\(plan.dataset) \(split.name)", total: n, unit: "img",
                                                            enabled: options.progress && n > 0)
        }
        defer {
            writer.sync { state.abandon() }
            committer.sync {}
        }
        var lastSplit: String? = nil
        var slot = 0
        for (i, job) in work.enumerated() {
            if case .afterShards(let n)? = options.testingFailure, i == n {
                writer.sync {}
                if let e = state.failure { throw e }
                throw FFError(.io, "Testing: conversion stopped after \(n) new shards.")
            }
            if let last = lastSplit, last != job.meta.split { progressBySplit[last]?.finish() }
            lastSplit = job.meta.split
            writer.async {
                guard state.failure == nil else { return }
                do { state.open(try ShardStream(output.appendingPathComponent(job.file), job: job, source: source, plan: plan)) }
                catch { state.fail(error) }
            }
            var lo = 0
            repeat {
                let hi = min(lo + block, job.items.count)
                let items = Array(job.items[lo..<hi])
                slots[slot].wait()
                if let e = state.failure { slots[slot].signal(); throw e }
                let buffer = SendablePointer(pointer: buffers[slot])
                let errors = decoder.decode(items, into: buffer.pointer)
                progressBySplit[job.meta.split]?.advance(by: items.count)
                let done = slots[slot]
                writer.async {
                    defer { done.signal() }
                    guard state.failure == nil, let stream = state.stream else { return }
                    do { try stream.append(items, errors: errors, pixels: buffer.pointer) } catch { state.fail(error) }
                }
                slot = 1 - slot
                lo = hi
            } while lo < job.items.count
            writer.async {
                guard state.failure == nil, let stream = state.stream else { return }
                do {
                    let summary = try stream.finish()
                    state.close()
                    committer.async {
                        do {
                            try stream.commit()
                            state.record(job.file, summary)
                        } catch {
                            stream.abandon()
                            state.fail(error)
                        }
                    }
                } catch { state.fail(error) }
            }
        }
        writer.sync {}
        committer.sync {}
        if let last = lastSplit { progressBySplit[last]?.finish() }
        if let e = state.failure { throw e }
        return state.results
    }

    /// What the writer thread owns and reports back, behind a lock.
    final class WriterState: @unchecked Sendable {
        private let lock = NSLock()
        private var _results: [String: ShardSummary] = [:]
        private var _failure: Error?
        private var _stream: ShardStream?

        var results: [String: ShardSummary] { lock.lock(); defer { lock.unlock() }; return _results }
        var failure: Error? { lock.lock(); defer { lock.unlock() }; return _failure }
        var stream: ShardStream? { lock.lock(); defer { lock.unlock() }; return _stream }
        func open(_ s: ShardStream) { lock.lock(); _stream = s; lock.unlock() }
        func record(_ file: String, _ s: ShardSummary) { lock.lock(); _results[file] = s; lock.unlock() }
        /// The writer is done with the current stream (its commit may still be running).
        func close() { lock.lock(); _stream = nil; lock.unlock() }
        func fail(_ e: Error) {
            lock.lock()
            _failure = _failure ?? e
            let s = _stream
            _stream = nil
            lock.unlock()
            s?.abandon()
        }
        /// After a failure or an early stop: no temporary file is left behind.
        func abandon() {
            lock.lock()
            let s = _stream
            _stream = nil
            lock.unlock()
            s?.abandon()
        }
    }

    /// A block buffer handed to the writer thread; the semaphore of its slot orders access.
    struct SendablePointer: @unchecked Sendable { let pointer: UnsafeMutablePointer<UInt8> }
}

/// A shard being written block by block: images are appended as they are decoded (failures
/// dropped, order kept), the images dataset is cut to the images that decoded, labels and
/// attributes are written last, then the file is renamed into place.
final class ShardStream {
    let url: URL
    let temp: URL
    let job: ShardJob
    let source: ItemSource
    let plan: ConversionPlan
    let imageBytes: Int
    private var file: HDF5File?
    private var images: HDF5Dataset?
    private var count = 0
    private var labels: [[Int32]]
    private var skipped: [DatasetIndex.Skipped] = []
    private var sum: [UInt64]
    private var sumSq: [UInt64]
    /// A second descriptor of the temporary file, to start writing it to disk early.
    private var flushFD: Int32 = -1

    init(_ url: URL, job: ShardJob, source: ItemSource, plan: ConversionPlan) throws {
        self.url = url
        self.job = job
        self.source = source
        self.plan = plan
        temp = AtomicFile.temporaryURL(for: url)
        let size = source.imageSize
        imageBytes = size.reduce(1, *)
        labels = [[Int32]](repeating: [], count: plan.labelSets.count)
        sum = [UInt64](repeating: 0, count: size[2])
        sumSq = sum
        do {
            let f = try HDF5File(temp, mode: .create)
            file = f
            let planned = job.items.count
            // A chunked dataset needs a non-zero chunk; a shard without images is contiguous.
            let chunk = planned > 0 ? [ShardFormat.chunkRows(imageBytes: imageBytes, count: planned)] + size : nil
            images = try f.createDataset("images", type: .uint8, shape: [planned] + size, chunk: chunk)
            flushFD = open(temp.path, O_RDONLY | O_CLOEXEC)
        } catch {
            abandon()
            throw ShardStream.failure(url, error)
        }
    }

    static func failure(_ url: URL, _ error: Error) -> FFError {
        let why = (error as? FFError)?.message ?? "\(error)"
        return FFError(.io, "Cannot write shard \(url.path): \(why) Nothing was left under that name; free space (or "
            + "fix permissions) and run the same command again: the finished shards are kept.", file: url)
    }

    /// Appends the decoded ones of `items` (slot i of `pixels` holds items[i]).
    func append(_ items: [Int], errors: [String?], pixels: UnsafeMutablePointer<UInt8>) throws {
        var n = 0
        for (i, item) in items.enumerated() {
            if let reason = errors[i] {
                skipped.append(.init(path: source.name(of: item), reason: reason))
                continue
            }
            if n != i { (pixels + n * imageBytes).update(from: pixels + i * imageBytes, count: imageBytes) }
            for (k, l) in source.labels(of: item).enumerated() where k < labels.count { labels[k].append(l) }
            n += 1
        }
        guard n > 0, let images = images else { return }
        let size = source.imageSize
        ffio_channel_sums(pixels, Int64(n * size[0] * size[1]), Int32(size[2]), &sum, &sumSq)
        do {
            try images.writeRows(UnsafeBufferPointer(start: pixels, count: n * imageBytes), row: count, count: n)
        } catch {
            abandon()
            throw ShardStream.failure(url, error)
        }
        count += n
        // Start writeback of what is written so far (no waiting): the fsync at commit then
        // finds little left, and the disk works while the next blocks decode.
        if flushFD >= 0 { _ = ffio_start_writeback(flushFD) }
    }

    /// Writes labels and attributes and closes the file; returns its summary. `commit`
    /// then puts it in place.
    func finish() throws -> ShardSummary {
        let summary = ShardSummary(count: count, sum: sum, sumSq: sumSq, skipped: skipped)
        do {
            guard let f = file, let images = images else { throw FFError(.io, "the shard was abandoned") }
            if count < job.items.count { try images.setExtent([count] + source.imageSize) }
            self.images = nil
            try ShardWriter.writeLabelsAndAttributes(f, meta: job.meta, labels: labels, summary: summary)
            try f.close()
            file = nil
        } catch {
            abandon()
            throw ShardStream.failure(url, error)
        }
        return summary
    }

    /// fsync, rename to the final name, fsync the directory.
    func commit() throws {
        closeFlush()
        do { try AtomicFile.commit(temp, to: url) } catch { throw ShardStream.failure(url, error) }
    }

    private func closeFlush() {
        if flushFD >= 0 { close(flushFD) }
        flushFD = -1
    }

    deinit { closeFlush() }

    /// Drops the temporary file (after an error, or when the conversion stops early).
    func abandon() {
        closeFlush()
        images = nil
        if let f = file { try? f.close() }
        file = nil
        try? FileManager.default.removeItem(at: temp)
    }
}
