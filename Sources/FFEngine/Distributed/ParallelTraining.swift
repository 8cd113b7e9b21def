import Foundation

/// What a multi-process run changes in `Trainer`: the blocks this process trains, where
/// their outputs go, and the sum of each block's gradients over the replicas. nil hooks
/// (every plain run) train the whole network in this process.
protocol TrainerHooks: AnyObject {
    /// Blocks this process trains (a pipeline stage owns a contiguous range).
    var blocks: Range<Int> { get }
    /// Whether the detached head (and the readout-average prediction) is computed here.
    var trainsHead: Bool { get }
    /// After this process's last block of a micro-batch: sends `x` and the head's features
    /// on and returns false, or (last stage) completes `features` and `scores` with what
    /// the earlier stages sent and returns true.
    func passOn(_ x: Tensor, _ batch: Batch, features: inout HeadFeatures, scores: inout [Tensor]) throws -> Bool
    /// Group `g`'s gradients (block g; the block count: the detached head) are complete.
    func gradientsReady(_ g: Int, _ parameters: [Parameter]) throws
    /// Before group `g`'s optimizer step: its gradients become the sum over the replicas.
    func awaitGradients(_ g: Int, _ parameters: [Parameter]) throws
}

/// Training and evaluation on the processes of an MPI job (mpirun or srun): what
/// `TrainingRun` and `repro eval` call where a multi-process run differs. Rank 0 reads and
/// writes every file; the others read only the dataset.
///
/// What equals the 1-process run:
/// - pipeline (S stages, one replica each): bit-identical weights. A 1-process step
///   computes every block's input with the weights before the step's updates (the
///   optimizers step after all micro-batches), which is exactly what a stage receives: the
///   previous stage computed it before its own update. Same kernels, same order, same bits.
/// - data (D replicas): the step sums the micro-batch gradients of the 1-process step with
///   accumulate = D x accumulate (same rows, same micro-batches), in another summation order:
///   equal within float rounding. Without BatchNorm that is the 1-process run at the same
///   batch (accumulate does not change the math); with BatchNorm each replica's part is a
///   separate BN batch, as with accumulate = D. Running statistics are averaged over the
///   replicas after each epoch (used only for evaluation).
public final class ParallelTraining: TrainerHooks {
    public let world: MPIWorld
    public let mode: ParallelLayout.Mode
    public let order: String
    let requestedStages: Int?
    let reduceOrder: GradientReducer.Order
    public private(set) var layout: ParallelLayout?
    private var stageComm: Comm?
    private var reducer: GradientReducer?
    private var link: PipelineLink?
    private var stage = 0, replica = 0

    public static let orders = GradientReducer.Order.allCases.map(\.rawValue)

    public init(world: MPIWorld, mode: ParallelLayout.Mode = .data, stages: Int? = nil, order: String = "mpi") throws {
        guard let o = GradientReducer.Order(rawValue: order) else {
            throw FFError(.invalidArgument, "--reduce \(order): choose mpi (MPI's allreduce) or ordered (a fixed "
                + "summation order, the same bits on every run).")
        }
        self.world = world
        self.mode = mode
        self.order = order
        requestedStages = stages
        reduceOrder = o
    }

    public var isRoot: Bool { world.rank == 0 }

    /// Prepares `trainer` for this job's layout (every rank calls it); `checkpoints` are
    /// the files rank 0 writes, whose half-written temporary copies a stopped rank 0 removes.
    /// Returns a line for the run log.
    @discardableResult
    public func attach(_ trainer: Trainer, checkpoints: [URL] = []) throws -> String {
        let net = trainer.net
        let layout = try ParallelLayout.make(mode, ranks: world.size, stages: requestedStages, net: net)
        self.layout = layout
        stage = layout.stage(ofRank: world.rank)
        replica = layout.replica(ofRank: world.rank)
        stageComm = try world.split { layout.stage(ofRank: $0) }
        if layout.replicas > 1 { reducer = GradientReducer(world: world, comm: stageComm!, order: reduceOrder) }
        if layout.stages > 1 {
            link = PipelineLink(world: world, net: net, layout: layout, accumulate: trainer.config.accumulate)
        }
        trainer.hooks = self
        if isRoot { world.setTemporaryFiles(checkpoints.map { AtomicFile.temporaryURL(for: $0).path }) }
        let nodes = Set(world.hosts).count
        return "parallel: \(mode.rawValue) on \(world.size) ranks (\(nodes) node\(nodes == 1 ? "" : "s")), \(layout)"
            + (layout.replicas > 1 ? ", gradient sum: \(order)" : "") + "; \(world.library)"
    }

    // MARK: TrainerHooks

    var blocks: Range<Int> { layout!.stageBlocks[stage] }
    var trainsHead: Bool { stage == layout!.stages - 1 }

    func passOn(_ x: Tensor, _ batch: Batch, features: inout HeadFeatures, scores: inout [Tensor]) throws -> Bool {
        try link?.passOn(x, batch, features: &features, scores: &scores) ?? true
    }

    func gradientsReady(_ g: Int, _ parameters: [Parameter]) throws { try reducer?.start(g, parameters) }
    func awaitGradients(_ g: Int, _ parameters: [Parameter]) throws { try reducer?.finish(g, parameters) }

    // MARK: Training

    /// One epoch on this rank: the first stage loads its replica's part of every global
    /// batch; later stages train on what the stage before sends. `stepDone` is called after
    /// each step (benchmarks).
    public func trainEpoch(_ epoch: Int, trainer: Trainer, data: BatchProvider, lr: Double, tally: inout Tally,
                           progress: Progress, stepDone: (() -> Void)? = nil) throws {
        guard let layout else { preconditionFailure("ParallelTraining.attach was not called") }
        let c = trainer.config
        let d = layout.replicas, a = c.accumulate, me = replica
        if stage == 0 {
            let next = RankData.parts(data, epoch: epoch, batchSize: c.batchSize) {
                ParallelLayout.share(count: $0, replicas: d, replica: me, accumulate: a).rows
            }
            var rows = 0   // the progress line shows this replica's own statistics
            while let part = try next() {
                let share = ParallelLayout.share(count: part.globalCount, replicas: d, replica: me, accumulate: a)
                let micro = share.micro
                let b = part.batch
                rows += b.count
                let starts = Array(stride(from: 0, to: b.count, by: micro))
                let sizes = starts.map { min(micro, b.count - $0) }
                world.stepLabel = trainer.step + 1
                try link?.begin(globalCount: part.globalCount, sizes: sizes,
                                labels: zip(starts, sizes).map { Array(b.labels[$0..<$0 + $1]) })
                try trainer.trainStep(count: part.globalCount, micros: starts.count, lr: lr, tally: &tally,
                                      firstSample: share.rows.lowerBound) { i in
                    Batch(images: b.images.slice(starts[i], sizes[i]), labels: Array(b.labels[starts[i]..<starts[i] + sizes[i]]))
                }
                var own = tally
                own.count = rows
                progress.advance(by: part.globalCount, fields: Report.progressFields(own, config: c, runETA: nil))
                stepDone?()
            }
        } else {
            while let h = try link!.receiveHeader() {
                world.stepLabel = trainer.step + 1
                let first = ParallelLayout.share(count: h.globalCount, replicas: d, replica: me, accumulate: a).rows.lowerBound
                try trainer.trainStep(count: h.globalCount, micros: h.micros, lr: lr, tally: &tally,
                                      firstSample: first) { try self.link!.input($0) }
                progress.advance(by: h.globalCount, fields: Report.progressFields(tally, config: c, runETA: nil))
                stepDone?()
            }
        }
        try link?.endEpoch()
    }

    /// After an epoch: the statistics of all ranks, and the same full model on every rank
    /// (running statistics averaged over replicas, each stage's blocks from the stage).
    public func finishEpoch(_ trainer: Trainer, tally: inout Tally) throws {
        let send = Bytes(count: 8), all = Bytes(count: 8 * world.size)
        send.pointer.storeBytes(of: Int64(trainer.step), as: Int64.self)
        try world.wait([world.all.allgather(send, into: all, what: "every rank's step count", in: world)])
        let steps = (0..<world.size).map { all.pointer.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self) }
        if let r = steps.firstIndex(where: { $0 != steps[0] }) {
            throw world.failure("after the epoch rank \(r) is at step \(steps[r]) but rank 0 at step \(steps[0]); the "
                + "ranks saw different batches (is the dataset the same on every node?).")
        }
        try sum(&tally, count: false)
        try synchronize(trainer)
    }

    /// Accuracy over `provider` split into one contiguous range of rows per rank (every rank
    /// holds the full model); the counts are summed.
    public func evaluate(_ trainer: Trainer, _ provider: BatchProvider, batchSize: Int,
                         progress: Progress? = nil) throws -> Tally {
        let n = provider.sampleCount, k = world.size, r = world.rank
        var tally = Tally(units: trainer.net.readouts.count, classes: trainer.net.classes)
        let next = RankData.rows(provider, (r * n / k)..<((r + 1) * n / k), batchSize: batchSize)
        while let b = try next() {
            trainer.evaluateBatch(b, tally: &tally)
            progress?.advance(by: b.count * k)
        }
        try sum(&tally, count: true)
        return tally
    }

    /// Sums a tally over all ranks (a training tally's count is the global one on every rank).
    func sum(_ t: inout Tally, count: Bool) throws {
        let r = t.unitLoss.count
        let v = Bytes(count: 8 * (3 * r + 4))
        let p = v.pointer.assumingMemoryBound(to: Double.self)
        for i in 0..<r {
            p[i] = t.unitLoss[i]
            p[r + i] = Double(t.unitCorrect[i])
            p[2 * r + i] = Double(t.unitTop5[i])
        }
        (p[3 * r], p[3 * r + 1], p[3 * r + 2], p[3 * r + 3]) = (t.headLoss, Double(t.headCorrect), Double(t.headTop5), Double(t.count))
        try world.wait([world.all.allreduceSum(p, count: 3 * r + 4, what: "the statistics of all ranks", keep: v, in: world)])
        for i in 0..<r {
            t.unitLoss[i] = p[i]
            t.unitCorrect[i] = Int(p[r + i])
            t.unitTop5[i] = Int(p[2 * r + i])
        }
        (t.headLoss, t.headCorrect, t.headTop5) = (p[3 * r], Int(p[3 * r + 1]), Int(p[3 * r + 2]))
        if count { t.count = Int(p[3 * r + 3]) }
        // Confusion counts (evaluation tallies): summed as exact integers in doubles.
        let cells = t.confusion.reduce(0) { $0 + $1.count }
        if cells > 0 {
            let c = Bytes(count: 8 * cells)
            let q = c.pointer.assumingMemoryBound(to: Double.self)
            var i = 0
            for m in t.confusion { for x in m { q[i] = Double(x); i += 1 } }
            try world.wait([world.all.allreduceSum(q, count: cells, what: "the confusion counts of all ranks", keep: c, in: world)])
            i = 0
            for s in t.confusion.indices { for j in t.confusion[s].indices { t.confusion[s][j] = Int(q[i]); i += 1 } }
        }
    }

    // MARK: State

    /// A block's trained tensors and optimizer (the last group: the detached head).
    struct Group {
        var parameters: [Parameter]
        var buffers: [Buffer]
        var optimizer: Optimizer
        var block: Int?
    }

    func groups(_ trainer: Trainer) -> [Group] {
        let net = trainer.net
        var out = net.blocks.map { b in
            Group(parameters: net.trainedParameters(b),
                  buffers: b.buffers + (net.headBlock == b.index ? net.head?.buffers ?? [] : []),
                  optimizer: trainer.blockOptimizers[b.index], block: b.index)
        }
        if let opt = trainer.headOptimizer {   // the detached head, or the Logistic Fusion gates
            out.append(Group(parameters: net.detachedPredictorParameters, buffers: net.head?.buffers ?? [], optimizer: opt,
                             block: nil))
        }
        return out
    }

    private func stage(of g: Group) -> Int {
        guard let layout else { return 0 }
        return g.block.map { layout.stage(ofBlock: $0) } ?? layout.stages - 1
    }

    private func tensors(_ g: Group) -> [Tensor] {
        g.parameters.map(\.value) + g.buffers.map(\.value) + g.optimizer.stateTensors(g.parameters).map(\.value)
    }

    /// Group tensors and the optimizer's step count, as bytes.
    private func pack(_ g: Group) -> Bytes {
        let ts = tensors(g)
        let floats = ts.reduce(0) { $0 + $1.count }
        let b = Bytes(count: 4 * floats + 8)
        var off = 0
        for t in ts {
            b.floats(4 * off).update(from: t.pointer, count: t.count)
            off += t.count
        }
        b.pointer.storeBytes(of: Int64(g.optimizer.steps), toByteOffset: 4 * floats, as: Int64.self)
        return b
    }

    private func unpack(_ g: Group, _ b: Bytes) {
        var off = 0
        for t in tensors(g) {
            t.pointer.update(from: b.floats(4 * off), count: t.count)
            off += t.count
        }
        g.optimizer.steps = Int(b.pointer.loadUnaligned(fromByteOffset: 4 * off, as: Int64.self))
    }

    /// Every group from the world rank `owner(group)`, to all ranks.
    private func broadcast(_ trainer: Trainer, owner: (Group) -> Int, what: String) throws {
        var work: [(Group, Bytes, [Pending])] = []
        for g in groups(trainer) {
            let root = owner(g)
            let b = root == world.rank ? pack(g) : Bytes(count: 4 * tensors(g).reduce(0) { $0 + $1.count } + 8)
            work.append((g, b, try world.all.broadcast(b, root: root, what: what, in: world)))
        }
        try world.wait(work.flatMap(\.2))
        for (g, b, _) in work where owner(g) != world.rank { unpack(g, b) }
    }

    /// Replicas' running statistics averaged (fixed order, double precision, so identical
    /// copies stay bit-identical), a check that the replicas' weights agree, then each
    /// stage's groups from its first replica to every rank.
    func synchronize(_ trainer: Trainer) throws {
        guard let layout, let comm = stageComm else { return }
        let mine = groups(trainer).filter { stage(of: $0) == stage }
        if layout.replicas > 1 {
            let stats = mine.flatMap(\.buffers).filter { $0.name.hasSuffix(".running_mean") || $0.name.hasSuffix(".running_var") }
                .map(\.value)
            let n = stats.reduce(0) { $0 + $1.count }
            if n > 0 {
                let send = Bytes(count: 4 * n), all = Bytes(count: 4 * n * comm.size)
                var off = 0
                for t in stats { send.floats(4 * off).update(from: t.pointer, count: t.count); off += t.count }
                try world.wait([comm.allgather(send, into: all, what: "the replicas' running statistics", in: world)])
                for i in 0..<n {
                    var s = 0.0
                    for j in 0..<comm.size { s += Double(all.floats(4 * n * j)[i]) }
                    send.floats()[i] = Float(s / Double(comm.size))
                }
                off = 0
                for t in stats { t.pointer.update(from: send.floats(4 * off), count: t.count); off += t.count }
            }
            try checkReplicasAgree(mine.flatMap(\.parameters).map(\.value), comm)
        }
        if layout.stages > 1 {
            try broadcast(trainer, owner: { layout.rank(stage: self.stage(of: $0), replica: 0) },
                          what: "the weights of every pipeline stage")
        }
    }

    /// The replicas of a stage apply the same updates to the same weights: their weights
    /// must be identical. A difference means the reduction gave different sums on
    /// different ranks (then use --reduce ordered).
    private func checkReplicasAgree(_ tensors: [Tensor], _ comm: Comm) throws {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for t in tensors {
            let words = UnsafeRawPointer(t.pointer).assumingMemoryBound(to: UInt32.self)
            for i in 0..<t.count { h = (h ^ UInt64(words[i])) &* 0x100_0000_01b3 }
        }
        let send = Bytes(count: 8), all = Bytes(count: 8 * comm.size)
        send.pointer.storeBytes(of: h, as: UInt64.self)
        try world.wait([comm.allgather(send, into: all, what: "the replicas' weight checksums", in: world)])
        let hashes = (0..<comm.size).map { all.pointer.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self) }
        if let bad = hashes.firstIndex(where: { $0 != hashes[0] }) {
            throw world.failure("the weights of rank \(comm.members[bad]) differ from rank \(comm.members[0])'s although "
                + "both applied the same summed gradients: MPI's reduction gave them different sums. Rerun with "
                + "--reduce ordered.")
        }
    }

    /// Rank 0's trainer (read from a checkpoint) on every rank; returns rank 0's run state.
    public func shareState(_ trainer: Trainer, _ state: RunState?, from url: URL) throws -> RunState {
        world.setLastGood("The last good checkpoint is \(url.path), which this run resumed from.")
        try broadcast(trainer, owner: { _ in 0 }, what: "the resumed checkpoint from rank 0")
        var blob = Data()
        if let state {
            let history = try EpochRecord.encoder.encode(state.history)
            var head = [Int64(state.epoch), Int64(state.step), Int64(trainer.step)]
            blob = Data(bytes: &head, count: 24) + history
        }
        let size = Bytes(count: 8)
        size.pointer.storeBytes(of: Int64(blob.count), as: Int64.self)
        try world.wait(world.all.broadcast(size, root: 0, what: "the resumed run state from rank 0", in: world))
        let n = Int(size.pointer.load(as: Int64.self))
        let b = Bytes(count: n)
        if isRoot { blob.withUnsafeBytes { b.pointer.copyMemory(from: $0.baseAddress!, byteCount: n) } }
        try world.wait(world.all.broadcast(b, root: 0, what: "the resumed run state from rank 0", in: world))
        let epoch = Int(b.pointer.load(fromByteOffset: 0, as: Int64.self))
        let step = Int(b.pointer.load(fromByteOffset: 8, as: Int64.self))
        trainer.restore(step: Int(b.pointer.load(fromByteOffset: 16, as: Int64.self)))
        let history = try EpochRecord.decoder.decode([EpochRecord].self, from: Data(bytes: b.pointer + 24, count: n - 24))
        return RunState(epoch: epoch, step: step, history: history)
    }

    /// Rank 0's `url` on every rank (a default run folder is named by the clock of each rank).
    public func agree(on url: URL) throws -> URL {
        let path = Array(url.path.utf8)
        let size = Bytes(count: 8)
        size.pointer.storeBytes(of: Int64(path.count), as: Int64.self)
        try world.wait(world.all.broadcast(size, root: 0, what: "the run folder of rank 0", in: world))
        let n = Int(size.pointer.load(as: Int64.self))
        let b = Bytes(count: n)
        if isRoot { b.pointer.copyMemory(from: path, byteCount: n) }
        try world.wait(world.all.broadcast(b, root: 0, what: "the run folder of rank 0", in: world))
        return URL(fileURLWithPath: String(decoding: Data(bytes: b.pointer, count: n), as: UTF8.self), isDirectory: true)
    }

    /// Rank 0's model (for instance the best checkpoint it loaded) on every rank.
    public func shareModel(_ trainer: Trainer) throws {
        try broadcast(trainer, owner: { _ in 0 }, what: "the selected checkpoint from rank 0")
    }

    /// After rank 0 has written the checkpoint of `epoch`: every rank learns the last good one
    /// (rank 0 at once, the others when rank 0 confirms).
    public func checkpointWritten(_ url: URL, epoch: Int) throws {
        if isRoot { world.setLastGood("The last good checkpoint is \(url.path) (epoch \(epoch)); nothing was written after it.") }
        try world.wait([world.all.barrier(what: "rank 0 writing the checkpoint of epoch \(epoch)", in: world)])
        if !isRoot { world.setLastGood("The last checkpoint rank 0 confirmed is \(url.path) (epoch \(epoch)).") }
    }
}
