import Foundation

/// A projection of multi-node training throughput from one node's measured per-block
/// compute times and the bytes each layout communicates. It is a model, not a measurement:
///
/// - compute: block b takes `blockSeconds[b] * (B / D) / B` on a node that trains B / D images
///   of each global batch of B (linear in the batch, which is optimistic for small local
///   batches); the head likewise; the optimizer step (`otherSeconds`) is not divided, every
///   replica runs it, split over stages in proportion to their parameters;
/// - data-parallel gradient sums: a ring allreduce of P bytes over D replicas takes
///   2 (D - 1) / D * P / bandwidth + 2 (D - 1) * latency; block b's sum starts when its backward
///   ends and the sums use the link one after another, so the step ends at
///   max(compute end, last sum end) + optimizer;
/// - pipeline: stage s sends each step its replica's B / D boundary activations (and the
///   head's GAP features) to the next stage, non-blocking, over a full-duplex link, so a
///   stage's period is max(compute + unhidden sums, send time, receive time) and the
///   pipeline runs at the slowest stage's period (steady state; the fill at each epoch start
///   is ignored);
/// - blocks are assigned to stages by counted FLOPs, as the runtime does.
public struct ScalingModel: Codable {
    public var batch: Int
    /// Seconds per step of a full batch on one node.
    public var blockSeconds: [Double]
    public var headSeconds: Double
    public var otherSeconds: Double
    /// Counted training MACs per image (the stage assignment).
    public var blockCosts: [Int]
    public var blockParameterBytes: [Int]
    public var headParameterBytes: Int
    /// Per image: what each block passes on, and the head features its units provide.
    public var blockOutputBytes: [Int]
    public var headFeatureBytes: [Int]

    public init(batch: Int, blockSeconds: [Double], headSeconds: Double, otherSeconds: Double, blockCosts: [Int],
                blockParameterBytes: [Int], headParameterBytes: Int, blockOutputBytes: [Int], headFeatureBytes: [Int]) {
        self.batch = batch
        self.blockSeconds = blockSeconds
        self.headSeconds = headSeconds
        self.otherSeconds = otherSeconds
        self.blockCosts = blockCosts
        self.blockParameterBytes = blockParameterBytes
        self.headParameterBytes = headParameterBytes
        self.blockOutputBytes = blockOutputBytes
        self.headFeatureBytes = headFeatureBytes
    }

    public struct Link {
        public var name: String
        public var bitsPerSecond: Double
        /// One message's fixed cost (seconds).
        public var latency: Double
        public init(name: String, bitsPerSecond: Double, latency: Double) {
            self.name = name
            self.bitsPerSecond = bitsPerSecond
            self.latency = latency
        }
        var bytesPerSecond: Double { bitsPerSecond / 8 }
    }

    public static let links = [
        Link(name: "10 Gbit/s", bitsPerSecond: 10e9, latency: 25e-6),   // Ethernet, TCP
        Link(name: "100 Gbit/s", bitsPerSecond: 100e9, latency: 2e-6),  // InfiniBand / RoCE
    ]

    public struct Projection {
        public var nodes: Int
        public var stages: Int
        public var imagesPerSecond: Double
        /// Largest number of bytes one node sends per step.
        public var bytesPerStep: Double
    }

    public var singleNodeImagesPerSecond: Double {
        Double(batch) / (blockSeconds.reduce(0, +) + headSeconds + otherSeconds)
    }

    public func project(nodes: Int, stages: Int, link: Link) -> Projection {
        precondition(nodes % stages == 0 && stages <= blockSeconds.count, "layout \(stages) x \(nodes / stages)")
        let d = Double(nodes / stages), f = 1 / d
        let ranges = ParallelLayout.balance(blockCosts, parts: stages)
        let totalParams = Double(blockParameterBytes.reduce(0, +) + headParameterBytes)
        func ring(_ bytes: Int) -> Double {
            d > 1 ? 2 * (d - 1) / d * Double(bytes) / link.bytesPerSecond + 2 * (d - 1) * link.latency : 0
        }
        var worst = 0.0, maxBytes = 0.0
        let images = Double(batch) * f
        for (s, r) in ranges.enumerated() {
            let last = s == stages - 1
            var groups = r.map { (blockSeconds[$0] * f, blockParameterBytes[$0]) }
            if last { groups.append((headSeconds * f, headParameterBytes)) }
            var end = 0.0, done = 0.0
            for (c, p) in groups {
                end += c
                if d > 1 { done = max(end, done) + ring(p) }
            }
            let params = Double(groups.reduce(0) { $0 + $1.1 })
            let compute = max(end, done) + otherSeconds * (totalParams > 0 ? params / totalParams : 1 / Double(stages))
            let features = Double(r.reduce(0) { $0 + headFeatureBytes[$1] })
            let sent = last ? 0 : images * (Double(blockOutputBytes[r.upperBound - 1]) + features)
            var received = s == 0 ? 0 : images * Double(blockOutputBytes[r.lowerBound - 1])
            if last { received += images * Double(headFeatureBytes[0..<r.lowerBound].reduce(0, +)) }
            let send = sent > 0 ? sent / link.bytesPerSecond + 2 * link.latency : 0
            let receive = received > 0 ? received / link.bytesPerSecond + 2 * link.latency : 0
            worst = max(worst, compute, send, receive)
            let reduced = d > 1 ? 2 * (d - 1) / d * params : 0
            maxBytes = max(maxBytes, sent + reduced)
        }
        return Projection(nodes: nodes, stages: stages, imagesPerSecond: Double(batch) / worst, bytesPerStep: maxBytes)
    }

    /// Pure data parallelism and the best pipeline of data-parallel stages (S > 1 dividing
    /// the node count, at most one stage per block).
    public func layouts(nodes: Int) -> [Int] {
        [1] + (2...max(2, min(nodes, blockSeconds.count))).filter { nodes % $0 == 0 && $0 <= blockSeconds.count }
    }
}
