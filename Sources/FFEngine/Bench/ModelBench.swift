import Foundation

/// Whole-model throughput and memory of a recipe's training and inference steps on
/// synthetic data of the recipe's shape (no I/O in the timed loop).
public struct ModelBenchResult: Codable {
    public var name: String
    public var batch: Int
    public var accumulate: Int
    public var trainImagesPerSecond: Double
    public var inferImagesPerSecond: Double
    public var trainGFLOPs: Double
    public var inferGFLOPs: Double
    /// Peak RSS of the process during the training phase (bytes).
    public var trainPeakRSS: Int
    /// High-water mark of the engine's own tensor allocations during training (bytes).
    public var trainEngineHighWater: Int
    public var inferPeakRSS: Int
    public var inferEngineHighWater: Int
    public var scratchBytes: Int
}

public enum ModelBench {
    /// Times `steps` training steps and `steps` inference passes after one warm-up each.
    /// FLOPs count the conv and linear layers of the backbone: forward 2*MACs; training adds
    /// the weight gradient and, except at the first layer of each block, the input gradient.
    public static func run(_ ctx: ComputeContext, config: RecipeConfig, inputShape: [Int], classes: Int,
                           steps: Int = 3, label: String? = nil) throws -> ModelBenchResult {
        let net = try Network(ctx, config: config, inputShape: inputShape, classes: classes)
        let trainer = Trainer(ctx, net: net)
        let batchSize = config.batchSize
        let data = InMemoryProvider.synthetic(count: batchSize, classes: classes, shape: inputShape, seed: 1)
        guard let batch = try data.batches(epoch: 0, batchSize: batchSize).next() else {
            throw FFError("benchmark batch is empty")
        }
        var tally = Tally(units: net.readouts.count)

        // Training: one warm-up step grows scratch arenas and the allocator's pools.
        try trainer.trainStep(batch, lr: config.lr, tally: &tally)
        MemoryMeter.resetPeakRSS()
        MemoryMeter.shared.resetPeak()
        let t0 = Date()
        for _ in 0..<steps { try trainer.trainStep(batch, lr: config.lr, tally: &tally) }
        let trainTime = Date().timeIntervalSince(t0)
        let trainRSS = MemoryMeter.peakRSS()
        let trainHigh = MemoryMeter.shared.peakBytes

        var evalTally = Tally(units: net.readouts.count)
        trainer.evaluateBatch(batch, tally: &evalTally)
        MemoryMeter.resetPeakRSS()
        MemoryMeter.shared.resetPeak()
        let t1 = Date()
        for _ in 0..<steps { trainer.evaluateBatch(batch, tally: &evalTally) }
        let inferTime = Date().timeIntervalSince(t1)

        let macs = Double(net.forwardMACs)
        let images = Double(batchSize * steps)
        return ModelBenchResult(
            name: label ?? config.name, batch: batchSize, accumulate: config.accumulate,
            trainImagesPerSecond: images / trainTime, inferImagesPerSecond: images / inferTime,
            trainGFLOPs: 2 * Double(net.trainMACs) * images / trainTime / 1e9,
            inferGFLOPs: 2 * macs * images / inferTime / 1e9,
            trainPeakRSS: trainRSS, trainEngineHighWater: trainHigh,
            inferPeakRSS: MemoryMeter.peakRSS(), inferEngineHighWater: MemoryMeter.shared.peakBytes,
            scratchBytes: ctx.scratchBytes)
    }

    public static func format(_ r: [ModelBenchResult]) -> String {
        func mib(_ b: Int) -> String { String(format: "%.0f", Double(b) / 1_048_576) }
        func f(_ x: Double) -> String { String(format: "%.1f", x) }
        let header = ["model", "batch", "train im/s", "GFLOP/s", "infer im/s", "GFLOP/s", "RSS MiB", "engine MiB"]
        return TextTable.render([header] + r.map { x in
            [x.name, x.accumulate > 1 ? "\(x.batch)/\(x.accumulate)" : "\(x.batch)", f(x.trainImagesPerSecond),
             f(x.trainGFLOPs), f(x.inferImagesPerSecond), f(x.inferGFLOPs), mib(x.trainPeakRSS), mib(x.trainEngineHighWater)]
        }, rightAligned: Set(1...7))
    }
}
