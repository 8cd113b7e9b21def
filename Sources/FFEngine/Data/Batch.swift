/// One mini-batch as the trainers consume it.
public struct Batch {
    /// (n, c, h, w) float32, already augmented and normalized.
    public var images: Tensor
    /// (n) class indices in [0, classCount).
    public var labels: [Int32]

    public init(images: Tensor, labels: [Int32]) {
        precondition(images.shape.first == labels.count, "batch: \(images.shape) vs \(labels.count) labels")
        self.images = images
        self.labels = labels
    }

    public var count: Int { labels.count }
}

/// Anything that yields batches in a deterministic order: the HDF5 shard loader, an
/// in-memory dataset (tests), a synthetic source (benchmarks).
public protocol BatchProvider: AnyObject {
    var sampleCount: Int { get }
    var classCount: Int { get }
    var classNames: [String] { get }
    /// [c, h, w] of the produced images.
    var sampleShape: [Int] { get }
    /// The batches of one epoch. The order (and any augmentation) is a pure function of
    /// the provider's seed and `epoch`, so a resumed run sees exactly the same data.
    func batches(epoch: Int, batchSize: Int) -> BatchStream
}

/// Batches one at a time; `next()` throws when reading fails (a shard changed or the
/// disk failed under a running job), so the caller can stop with a message instead of
/// crashing.
public final class BatchStream {
    private let pull: () throws -> Batch?

    public init(_ pull: @escaping () throws -> Batch?) { self.pull = pull }

    public func next() throws -> Batch? { try pull() }

    /// All remaining batches (tests, small data).
    public func collect() throws -> [Batch] {
        var out: [Batch] = []
        while let b = try next() { out.append(b) }
        return out
    }
}

extension BatchProvider {
    public func batchCount(batchSize: Int, dropLast: Bool = false) -> Int {
        dropLast ? sampleCount / batchSize : (sampleCount + batchSize - 1) / batchSize
    }
}
