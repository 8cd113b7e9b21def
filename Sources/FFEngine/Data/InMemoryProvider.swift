/// Batches from float images already in memory (tests, benchmarks, small synthetic
/// tasks). Shuffles with a seeded permutation per epoch when `shuffle` is set.
public final class InMemoryProvider: BatchProvider {
    public let images: Tensor   // (n, c, h, w)
    public let labels: [Int32]
    public let classCount: Int
    public let seed: UInt64
    public let shuffle: Bool

    public init(images: Tensor, labels: [Int32], classes: Int, seed: UInt64 = 0, shuffle: Bool = false) {
        precondition(images.rank == 4 && images.shape[0] == labels.count, "images \(images.shape) vs \(labels.count) labels")
        self.images = images
        self.labels = labels
        classCount = classes
        self.seed = seed
        self.shuffle = shuffle
    }

    public var sampleCount: Int { labels.count }
    public var classNames: [String] { (0..<classCount).map { "class\($0)" } }
    public var sampleShape: [Int] { Array(images.shape.dropFirst()) }

    public func batches(epoch: Int, batchSize: Int) -> BatchStream {
        let n = sampleCount
        var order: [Int32]
        if shuffle {
            var rng = RNG(seed: seed, stream: UInt64(epoch))
            order = rng.permutation(n)
        } else {
            order = (0..<Int32(n)).map { $0 }
        }
        let per = sampleShape.reduce(1, *)
        var start = 0
        return BatchStream {
            guard start < n else { return nil }
            let len = min(batchSize, n - start)
            let out = Tensor(uninitialized: [len] + self.sampleShape)
            var lab = [Int32](repeating: 0, count: len)
            for i in 0..<len {
                let j = Int(order[start + i])
                (out.pointer + i * per).update(from: self.images.pointer + j * per, count: per)
                lab[i] = self.labels[j]
            }
            start += len
            return Batch(images: out, labels: lab)
        }
    }

    /// A learnable synthetic task: each class is a fixed random template; samples are the
    /// template plus Gaussian noise. Used by tests and by `repro bench`.
    public static func synthetic(count: Int, classes: Int, shape: [Int], noise: Float = 1, seed: UInt64) -> InMemoryProvider {
        let per = shape.reduce(1, *)
        let templates = Tensor(uninitialized: [classes, per])
        var rng = RNG(seed: seed, stream: 1)
        rng.fillNormal(templates, std: 1)
        let images = Tensor(uninitialized: [count] + shape)
        rng.fillNormal(images, std: noise)
        var labels = [Int32](repeating: 0, count: count)
        for i in 0..<count {
            let c = rng.below(classes)
            labels[i] = Int32(c)
            let dst = images.pointer + i * per, src = templates.pointer + c * per
            for j in 0..<per { dst[j] += src[j] }
        }
        return InMemoryProvider(images: images, labels: labels, classes: classes, seed: seed, shuffle: true)
    }
}
