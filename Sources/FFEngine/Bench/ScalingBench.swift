import Foundation

/// One measurement of `repro bench scaling`: training steps of a recipe on synthetic data
/// of its shape, in one process (per-block times for the projection) or on the ranks of an
/// MPI job in one layout.
public struct ScalingResult: Codable {
    public var recipe: String
    public var mode: String
    public var ranks: Int
    public var stages: Int
    public var replicas: Int
    /// The stages' blocks (ParallelLayout.description), empty for one process.
    public var layout: String = ""
    public var batch: Int
    public var steps: Int
    public var threads: Int
    /// Steady-state seconds per step: from the end of the first timed step to the end of
    /// the last, over the steps between (the slowest rank; a pipeline's fill is excluded).
    public var secondsPerStep: Double
    public var imagesPerSecond: Double
    /// The most any rank sent per step: point-to-point bytes, plus 2 (D - 1) / D of the
    /// bytes it reduced with MPI's allreduce (what a ring allreduce sends).
    public var bytesSentPerStep: Double
    /// Seconds per step the rank that waited most spent waiting for other ranks.
    public var waitSecondsPerStep: Double
    /// One-process runs: the inputs of the projection.
    public var model: ScalingModel?
}

/// Times each block of a 1-process step (between the hooks called after each block's
/// backward) without changing what the step computes.
final class BlockTimer: TrainerHooks {
    let blocks: Range<Int>
    let trainsHead = true
    var seconds: [Double]
    private var mark = DispatchTime.now().uptimeNanoseconds

    init(_ net: Network) {
        blocks = net.blocks.indices
        seconds = Array(repeating: 0, count: net.blocks.count + 1)
    }

    func begin() { mark = DispatchTime.now().uptimeNanoseconds }

    func passOn(_ x: Tensor, _ batch: Batch, features: inout HeadFeatures, scores: inout [Tensor]) throws -> Bool { true }

    func gradientsReady(_ g: Int, _ parameters: [Parameter]) throws {
        let now = DispatchTime.now().uptimeNanoseconds
        seconds[g] += Double(now - mark) / 1e9
        mark = now
    }

    func awaitGradients(_ g: Int, _ parameters: [Parameter]) throws {}
}

public enum ScalingBench {
    /// `steps` timed steps after one warm-up step. With `parallel` every rank of the job
    /// must call it; the result is complete on rank 0.
    public static func measure(_ ctx: ComputeContext, config: RecipeConfig, inputShape: [Int], classes: Int, steps: Int,
                               parallel: ParallelTraining?) throws -> ScalingResult {
        let net = try Network(ctx, config: config, inputShape: inputShape, classes: classes)
        let trainer = Trainer(ctx, net: net)
        let b = config.batchSize
        let warm = InMemoryProvider.synthetic(count: b, classes: classes, shape: inputShape, seed: 1)
        let data = InMemoryProvider.synthetic(count: b * steps, classes: classes, shape: inputShape, seed: 2)
        let progress = Progress("", total: 1, unit: "img", enabled: false)
        var result = ScalingResult(recipe: config.name, mode: parallel?.mode.rawValue ?? "1 process", ranks: 1, stages: 1,
                                   replicas: 1, batch: b, steps: steps, threads: ctx.threads, secondsPerStep: 0,
                                   imagesPerSecond: 0, bytesSentPerStep: 0, waitSecondsPerStep: 0, model: nil)
        guard let parallel else {
            let timer = BlockTimer(net)
            var tally = Tally(units: net.readouts.count)
            for batch in try warm.batches(epoch: 0, batchSize: b).collect() { try trainer.trainStep(batch, lr: config.lr, tally: &tally) }
            trainer.hooks = timer
            var total = 0.0
            for batch in try data.batches(epoch: 0, batchSize: b).collect() {
                let t0 = DispatchTime.now().uptimeNanoseconds
                timer.begin()
                try trainer.trainStep(batch, lr: config.lr, tally: &tally)
                total += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            }
            trainer.hooks = nil
            let n = Double(steps)
            let blockSeconds = timer.seconds.dropLast().map { $0 / n }, head = timer.seconds.last! / n
            result.secondsPerStep = total / n
            result.imagesPerSecond = Double(b) / result.secondsPerStep
            result.model = ScalingModel(
                batch: b, blockSeconds: blockSeconds, headSeconds: head,
                otherSeconds: max(0, total / n - blockSeconds.reduce(0, +) - head),
                blockCosts: ParallelLayout.blockCosts(net),
                blockParameterBytes: net.blocks.map { 4 * net.trainedParameters($0).reduce(0) { $0 + $1.value.count } },
                headParameterBytes: net.headBlock == nil ? 4 * (net.head?.parameters.reduce(0) { $0 + $1.value.count } ?? 0) : 0,
                blockOutputBytes: net.blocks.map { 4 * $0.outputShape.reduce(1, *) },
                headFeatureBytes: net.blocks.map { blk in
                    guard let h = net.head, net.headBlock == nil else { return 0 }
                    return 4 * blk.units.filter { h.taps.contains($0.index) }.reduce(0) { sum, u in
                        sum + (h.point == .tap ? u.tapShape[0] : u.outputShape[0])
                    }
                })
            return result
        }
        try parallel.attach(trainer)
        let layout = parallel.layout!
        let world = parallel.world
        var tally = Tally(units: net.readouts.count)
        try parallel.trainEpoch(0, trainer: trainer, data: warm, lr: config.lr, tally: &tally, progress: progress)
        try world.wait([world.all.barrier(what: "the start of the timed steps", in: world)])
        let sent0 = world.bytesSent, reduced0 = world.bytesReduced, wait0 = world.waitSeconds
        var ends: [UInt64] = []
        try parallel.trainEpoch(1, trainer: trainer, data: data, lr: config.lr, tally: &tally, progress: progress) {
            ends.append(DispatchTime.now().uptimeNanoseconds)
        }
        let period = ends.count > 1 ? Double(ends.last! - ends.first!) / 1e9 / Double(ends.count - 1) : .infinity
        let d = Double(layout.replicas)
        let mine = (Double(world.bytesSent - sent0) + 2 * (d - 1) / d * Double(world.bytesReduced - reduced0)) / Double(steps)
        let waited = (world.waitSeconds - wait0) / Double(steps)
        // Per rank: bytes sent, seconds and waiting per step; the busiest, slowest, most waiting count.
        let send = Bytes(count: 24), all = Bytes(count: 24 * world.size)
        for (i, v) in [mine, period, waited].enumerated() { send.pointer.storeBytes(of: v, toByteOffset: 8 * i, as: Double.self) }
        try world.wait([world.all.allgather(send, into: all, what: "every rank's bytes and step times", in: world)])
        func column(_ i: Int) -> Double {
            (0..<world.size).map { all.pointer.loadUnaligned(fromByteOffset: 24 * $0 + 8 * i, as: Double.self) }.max()!
        }
        result.bytesSentPerStep = column(0)
        result.secondsPerStep = column(1)
        result.waitSecondsPerStep = column(2)
        result.ranks = world.size
        result.stages = layout.stages
        result.replicas = layout.replicas
        result.layout = layout.description
        result.imagesPerSecond = Double(b) / result.secondsPerStep
        return result
    }
}
