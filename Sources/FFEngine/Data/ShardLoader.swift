import FFIO
import Foundation

/// Batches from a dataset directory made by `repro prep`: shuffled per epoch, augmented on
/// uint8 pixels, normalized to float NCHW, prepared ahead on a background thread.
///
/// Reproducibility: the batch `b` of epoch `e` is a pure function of (options, e, b): the
/// epoch order comes from SeededRandom(seed, "order", e) and each sample's augmentation from
/// SeededRandom(seed, "augment", e, row), where `row` is the sample's position in the split.
public final class ShardLoader: BatchProvider {
    public let directory: URL
    public let split: String
    public let options: LoaderOptions
    public let index: DatasetIndex
    public let classNames: [String]
    /// [channels, height, width] of the produced images.
    public let sampleShape: [Int]
    /// [height, width, channels] of the stored images.
    public let storedShape: [Int]
    /// Split rows used (ascending): all rows, or the subset.
    public var rows: [Int] { store.rows }
    /// Labels of the used samples, in `rows` order.
    public var labels: [Int32] { store.labels }
    /// True if the images are held in memory, false if streamed from the shards.
    public var isInMemory: Bool { store.inMemory }

    public var sampleCount: Int { store.count }
    public var classCount: Int { classNames.count }

    let store: ShardStore
    let renderer: SampleRenderer

    public init(directory: URL, split: String, options: LoaderOptions) throws {
        self.directory = directory
        self.split = split
        self.options = options
        index = try DatasetIndex.load(directory: directory)
        guard let names = index.labelSets[options.labelKey] else {
            throw FFError(.invalidArgument, "The dataset in \(directory.path) has no label set '\(options.labelKey)'; "
                + "use one of: " + index.labelSets.keys.sorted().joined(separator: ", ") + ".", file: directory)
        }
        classNames = names
        storedShape = index.imageSize
        let (h, w, c) = (index.imageSize[0], index.imageSize[1], index.imageSize[2])
        if let r = options.resize, r < 1 || r > 4096 {
            throw FFError(.invalidArgument, "Resize \(r) is not within 1...4096.", file: directory)
        }
        renderer = SampleRenderer(stored: [h, w, c], resize: options.resize, augmentation: options.augmentation,
                                  color: options.color, scaling: options.inputScaling,
                                  mean: index.channelMean, std: index.channelStd)
        try options.augmentation.check(height: renderer.augmentedInput.0, width: renderer.augmentedInput.1,
                                       directory: directory)
        sampleShape = renderer.outputShape

        let total = try index.split(split, directory: directory).count
        var selected: [Int]? = nil
        if let n = options.subset {
            guard n > 0 && n <= total else {
                throw FFError(.invalidArgument, "Subset \(n) is not within 1...\(total), the size of split '\(split)' "
                    + "in \(directory.path).", file: directory)
            }
            selected = ShardLoader.subsetRows(total: total, count: n, seed: options.subsetSeed ?? options.seed)
        }
        let limit = options.memoryLimit ?? ShardLoader.defaultMemoryLimit
        let verify: Bool
        switch options.checksums {
        case .always: verify = true
        case .sizesOnly: verify = false
        case .auto: verify = index.splits[split].map { $0.shards.reduce(0) { $0 + $1.bytes } <= 2 << 30 } ?? true
        }
        try index.verify(split: split, directory: directory, checksums: verify)
        store = try ShardStore(directory: directory, index: index, split: split, rows: selected,
                               labelKey: options.labelKey, memoryLimit: limit)
    }

    /// Per-channel (scale, bias) taking a uint8 pixel to (pixel/255 - mean) / std.
    public static func normalization(mean: [Double], std: [Double]) -> (scale: [Float], bias: [Float]) {
        (std.map { Float(1 / (255 * $0)) }, zip(mean, std).map { Float(-$0 / $1) })
    }

    /// A quarter of physical memory, at most 8 GiB.
    public static var defaultMemoryLimit: Int {
        min(8 << 30, Int(ProcessInfo.processInfo.physicalMemory / 4))
    }

    /// The subset: the first `count` entries of a fixed permutation of the split, ascending.
    public static func subsetRows(total: Int, count: Int, seed: UInt64) -> [Int] {
        var rng = SeededRandom(seed: seed, stream: "subset")
        return Array(rng.permutation(total).prefix(count)).sorted()
    }

    /// Local sample indices (into `rows`) in the order of `epoch`.
    public func order(epoch: Int) -> [Int] {
        guard options.shuffle else { return Array(0..<sampleCount) }
        var rng = SeededRandom(seed: options.seed, stream: "order", UInt64(epoch))
        return rng.permutation(sampleCount)
    }

    public func batches(epoch: Int, batchSize: Int) -> BatchStream {
        precondition(batchSize > 0, "batch size must be positive")
        let order = self.order(epoch: epoch)
        let n = batchCount(batchSize: batchSize, dropLast: options.dropLast)
        // Errors travel with the batch they belong to, through the prefetch thread, and are
        // thrown by `next()` on the consumer's side.
        let make: (Int) -> Result<Batch, Error> = { [self] b in
            let lo = b * batchSize
            let locals = Array(order[lo..<min(lo + batchSize, order.count)])
            return Result { try self.assemble(locals, epoch: epoch) }
        }
        if options.prefetch <= 0 {
            var b = 0
            return BatchStream {
                guard b < n else { return nil }
                defer { b += 1 }
                return try make(b).get()
            }
        }
        let pf = Prefetcher(count: n, depth: options.prefetch, name: "ffrepro.prefetch", make: make)
        return BatchStream { try pf.nextItem()?.get() }
    }

    /// Batch `b` of `epoch` on the calling thread (the same contents `batches` yields).
    public func batch(epoch: Int, index b: Int, batchSize: Int) throws -> Batch {
        let order = self.order(epoch: epoch)
        let lo = b * batchSize
        precondition(lo < order.count, "batch \(b) is past the end of the epoch")
        return try assemble(Array(order[lo..<min(lo + batchSize, order.count)]), epoch: epoch)
    }

    /// Augments and normalizes the given samples into one batch.
    func assemble(_ locals: [Int], epoch: Int) throws -> Batch {
        let out = Tensor(uninitialized: [locals.count] + sampleShape)
        let plane = sampleShape.reduce(1, *)
        var staging: UnsafeMutablePointer<UInt8>? = nil
        if !store.inMemory {
            staging = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, locals.count * store.imageBytes))
            try store.read(locals, into: staging!)
        }
        defer { staging?.deallocate() }
        var failed = false
        for (i, l) in locals.enumerated() {
            let src = staging.map { UnsafePointer($0 + i * store.imageBytes) } ?? store.image(l)
            var rng = SeededRandom(seed: options.seed, stream: "augment", UInt64(epoch), UInt64(store.rows[l]))
            if !renderer.render(src, rng: &rng, into: out.pointer + i * plane) { failed = true }
        }
        if failed {
            throw FFError(.io, "Cannot resample images of \(directory.path): \(String(cString: ffio_last_error())).", file: directory)
        }
        return Batch(images: out, labels: locals.map { store.labels[$0] })
    }
}
