import Foundation

/// The data of one run: training batches, and the validation/test splits when present.
public struct RunData {
    public var train: BatchProvider
    public var val: BatchProvider?
    public var test: BatchProvider?
    /// The converted dataset behind the providers (nil for in-memory data).
    public var dataset: DatasetInfo?
    public init(train: BatchProvider, val: BatchProvider?, test: BatchProvider?, dataset: DatasetInfo? = nil) {
        self.train = train
        self.val = val
        self.test = test
        self.dataset = dataset
    }
}

/// What a finished run reports.
public struct RunResult {
    public var epochsTrained: Int
    public var bestEpoch: Int?
    public var bestValidation: Double?
    public var bestLayer: Int?
    public var test: Tally?
    public var history: [EpochRecord]
    /// Test accuracy of the recipe's predictor (head, or best layer for Best Pred).
    public var testTop1: Double?
    public var testTop5: Double?
    /// What results.json holds.
    public var record: ResultsRecord?
}

/// A whole training run: epochs with cosine LR, validation after each epoch, metrics
/// logs, last/best checkpoints (atomic), resume, and the final test evaluation of the
/// best-on-validation checkpoint. The run folder's rules are `RunFolder`'s.
public final class TrainingRun {
    public let config: RecipeConfig
    public let ctx: ComputeContext
    public let folder: RunFolder
    public let resume: URL?
    public let data: RunData
    /// Where run lines go; the default flushes each line so logs redirected to a file
    /// show every epoch as it ends.
    public var log: (String) -> Void = { line in
        print(line)
        fflush(stdout)
    }
    public var showProgress = true
    /// What the run is doing, for a caller that reports interruptions: "epoch E" (1-based)
    /// when an epoch starts, "test" when the final test starts.
    public var onPhase: (String) -> Void = { _ in }
    /// The build and arithmetic this run computes with, recorded in its checkpoints and results.
    private lazy var build = BuildInfo.current(ctx)
    /// TensorBoard log folder (`--tensorboard DIR`): events go to DIR/<run folder name>/;
    /// scalars per epoch, and the running training losses every `tensorboardEvery` steps.
    public var tensorboard: URL?
    public var tensorboardEvery = 50
    private var events: EventWriter?
    /// A projected whole run longer than this gets a one-line estimate early in the first epoch.
    public var estimateThreshold: TimeInterval = 300
    /// Replace another run's files in the folder (else such a folder is refused).
    public var overwrite = false
    /// Several processes (mpirun/srun, Sources/FFEngine/Distributed); nil: this process alone.
    /// Rank 0 writes every file; the other ranks write nothing.
    public var parallel: ParallelTraining?

    public init(_ ctx: ComputeContext, config: RecipeConfig, data: RunData, directory: URL, resume: URL? = nil) throws {
        try config.validate()
        try RunDirectory.checkBatch(config, trainCount: data.train.sampleCount)
        try ctx.setPrecision(config.precision)
        self.ctx = ctx
        self.config = config
        self.data = data
        folder = RunFolder(directory)
        self.resume = resume?.standardizedFileURL
    }

    public var directory: URL { folder.url }
    public var lastCheckpoint: URL { folder.last }
    public var bestCheckpoint: URL { folder.best }

    /// Whether the run continues in the folder of the checkpoint it resumes (else it is a
    /// new folder: a branch of that run).
    var continuesInPlace: Bool {
        resume.map { $0.deletingLastPathComponent().standardizedFileURL.path == folder.url.path } ?? false
    }

    public func run() throws -> RunResult {
        let writes = parallel?.isRoot ?? true
        let net = try Network(ctx, config: config, inputShape: data.train.sampleShape, classes: data.train.classCount)
        let trainer = Trainer(ctx, net: net)
        let layoutLine = try parallel?.attach(trainer, checkpoints: [lastCheckpoint, bestCheckpoint])
        var history: [EpochRecord] = []
        var startEpoch = 0
        if let resume {
            if writes, continuesInPlace, resume.path != folder.last.path, let later = try? RunCheckpoint.describe(folder.last),
               let this = try? RunCheckpoint.describe(resume), later.epoch > this.epoch {
                throw FFError(.invalidArgument, "\(resume.path) is epoch \(this.epoch) of a run that went on to epoch "
                    + "\(later.epoch); continuing it in its own folder would discard epochs \(this.epoch + 1)-\(later.epoch). "
                    + "Pass --out NEW_FOLDER to branch from it.", file: resume)
            }
            var state = writes ? try RunCheckpoint.load(resume, into: trainer, expecting: config, resuming: true) : nil
            if let parallel { state = try parallel.shareState(trainer, state, from: resume) }
            guard let state else { preconditionFailure("resume state") }
            history = state.history
            startEpoch = state.epoch
        } else if let source = config.initFrom {
            log(try WeightTransfer.load(ctx, URL(fileURLWithPath: source), into: net).summary)
        }
        // The folder is locked for the rest of the run (RunDirectory.swift); only rank 0 writes.
        let claimed = writes ? try folder.claim(for: config, continuing: continuesInPlace, overwrite: overwrite) : nil
        defer { claimed?.release() }
        if let resume { log("resumed from \(resume.path) after epoch \(startEpoch) (step \(trainer.step))") }
        if writes, let tb = tensorboard {
            events = try EventWriter(directory: tb.appendingPathComponent(directory.lastPathComponent, isDirectory: true))
            log("TensorBoard events: \(events!.url.deletingLastPathComponent().path) (tensorboard --logdir \(tb.path))")
        }
        let metrics = MetricsLog(directory: directory)
        if writes {
            try metrics.reset(keeping: history)
            try AtomicFile.write(Data(config.json().utf8), to: folder.config)
        }
        log("\(config.name): \(net.summary)")
        if let layoutLine { log(layoutLine) }
        log("data: \(data.train.sampleCount) train, \(data.val?.sampleCount ?? 0) val, \(data.test?.sampleCount ?? 0) test; "
            + "\(ctx.threads) thread\(ctx.threads == 1 ? "" : "s") (\(ctx.simdName)); output \(directory.path)")
        if data.val == nil { log("note: no validation split; the last epoch is used as the selected model") }

        var best = writes ? try initialBest(history, trainer: trainer,
                                            state: RunState(epoch: startEpoch, step: trainer.step, history: history)) : nil
        var clock = RunClock(totalEpochs: config.epochs)
        for epoch in startEpoch..<config.epochs {
            let started = Date()
            onPhase("epoch \(epoch + 1)")
            let record: EpochRecord
            do {
                record = try trainEpoch(epoch, trainer: trainer, clock: clock, firstOfProcess: epoch == startEpoch)
            } catch var e as NonFiniteLoss {
                let last = FileManager.default.fileExists(atPath: lastCheckpoint.path) ? lastCheckpoint.path : nil
                e.lastGood = last ?? resume?.path
                throw e
            }
            history.append(record)
            try events?.scalars(Report.scalars(record, labels: net.readoutLabels, config: config), step: trainer.step)
            let state = RunState(epoch: epoch + 1, step: trainer.step, history: history)
            if writes { try metrics.append(record) }
            // best.h5 before last.h5: an interruption in between leaves last.h5 one epoch
            // behind, and resuming recomputes that epoch bit for bit.
            if data.val == nil || best == nil || record.selectionRank > best!.rank {
                best = (record.selectionRank, record.epoch)
                if writes {
                    try RunCheckpoint.save(trainer, state: state, dataset: data.dataset, to: bestCheckpoint, weightsOnly: true,
                                           build: build)
                }
            }
            if writes { try RunCheckpoint.save(trainer, state: state, dataset: data.dataset, to: lastCheckpoint, build: build) }
            try parallel?.checkpointWritten(lastCheckpoint, epoch: epoch + 1)
            clock.finished(Date().timeIntervalSince(started))
            log(Report.epochLine(record, config: config, best: best!.epoch == record.epoch,
                                 runETA: clock.remaining(afterEpoch: epoch + 1)))
        }

        let bestRecord = history.first { $0.epoch == best?.epoch }
        var result = RunResult(epochsTrained: history.last?.epoch ?? startEpoch, bestEpoch: best?.epoch,
                               bestValidation: bestRecord?.valSelected, bestLayer: nil, test: nil, history: history)
        var checkpointEpoch: Int?
        // The test uses exactly best.h5 of the best epoch, or stops (RunDirectory).
        if let claimed, let b = best?.epoch {
            let state = try RunCheckpoint.load(try claimed.checkpointForTest(bestEpoch: b), into: trainer, expecting: config)
            result.bestLayer = state.history.last?.bestLayer
            checkpointEpoch = state.epoch
        }
        try parallel?.shareModel(trainer)
        var tally: Tally?
        onPhase("test")
        if let test = data.test {
            let progress = Progress("test", total: test.sampleCount, unit: "img", enabled: showProgress)
            tally = try parallel?.evaluate(trainer, test, batchSize: config.microBatch, progress: progress)
                ?? trainer.evaluate(test, batchSize: config.microBatch, progress: progress)
            progress.finish()
        }
        let record = ResultsRecord(kind: "run", config: config, dataset: data.dataset, classes: net.classes, split: "test",
                                   tally: tally,
                                   readoutLabels: net.readoutLabels, bestReadout: result.bestLayer,
                                   checkpoint: checkpointEpoch == nil ? nil : "best.h5", checkpointEpoch: checkpointEpoch,
                                   history: history, epochsTrained: result.epochsTrained, build: build)
        if data.test == nil {
            log("no test split: nothing was tested, so results.json holds null for every test number")
        }
        if let tally {
            result.test = tally
            let (top1, top5) = Report.selected(tally, config: config, bestLayer: result.bestLayer)
            result.testTop1 = top1
            result.testTop5 = top5
            log(Report.table(tally, config: config, labels: net.readoutLabels, bestLayer: result.bestLayer, split: "test",
                             selectedFrom: "best validation epoch \(checkpointEpoch ?? result.epochsTrained)",
                             comparison: PaperComparison.line(record), record: record))
        } else if let line = PaperComparison.line(record) {
            log(line)
        }
        result.record = record
        if writes { try record.write(to: folder.results) }
        return result
    }

    /// The best epoch so far, with a best.h5 that holds it. A fresh run has none. A resumed
    /// run keeps the folder's best.h5 when it holds the history's best epoch, copies the
    /// source folder's (a branch), or else makes the resumed checkpoint the best so far, so
    /// the final test never names a best.h5 that is missing or from another epoch.
    private func initialBest(_ history: [EpochRecord], trainer: Trainer, state: RunState) throws -> (rank: Int64, epoch: Int)? {
        // Without validation the last epoch is the selected one, as in a run never interrupted.
        guard let resume, let top = EpochRecord.selected(history) else { return nil }
        func holdsBest(_ url: URL) -> Bool {
            guard let info = try? RunCheckpoint.describe(url) else { return false }
            return info.epoch == top.epoch && RunCheckpoint.differences(info.config, config).allSatisfy { $0 == "epochs" }
        }
        if holdsBest(bestCheckpoint) { return (top.selectionRank, top.epoch) }
        let source = resume.deletingLastPathComponent().appendingPathComponent("best.h5")
        if !continuesInPlace, holdsBest(source) {
            try AtomicFile.write(try Data(contentsOf: source), to: bestCheckpoint)
            return (top.selectionRank, top.epoch)
        }
        guard let own = history.last else { return nil }
        log("note: no best.h5 for epoch \(top.epoch) next to \(resume.path); the resumed epoch \(own.epoch) counts as "
            + "the best so far")
        try RunCheckpoint.save(trainer, state: state, dataset: data.dataset, to: bestCheckpoint, weightsOnly: true,
                               build: build)
        return (own.selectionRank, own.epoch)
    }

    private func trainEpoch(_ epoch: Int, trainer: Trainer, clock: RunClock, firstOfProcess: Bool) throws -> EpochRecord {
        let lr = OptimizerFactory.learningRate(config, epoch: epoch)
        var tally = Tally(units: trainer.net.readouts.count)
        let total = data.train.sampleCount
        let progress = Progress("epoch \(epoch + 1)/\(config.epochs)", total: total, unit: "img", enabled: showProgress)
        let start = Date()
        var estimated = !firstOfProcess
        var fields = ""
        if let parallel {
            try parallel.trainEpoch(epoch, trainer: trainer, data: data.train, lr: lr, tally: &tally, progress: progress)
            try parallel.finishEpoch(trainer, tally: &tally)
            fields = Report.progressFields(tally, config: config, runETA: nil)
        }
        // Under MPI the epoch ran above; a single process runs it here.
        let batches = parallel == nil ? data.train.batches(epoch: epoch, batchSize: config.batchSize) : BatchStream { nil }
        while let batch = try batches.next() {
            try trainer.trainStep(batch, lr: lr, tally: &tally)
            if let events, trainer.step % tensorboardEvery == 0 {
                var running: [(String, Double)] = []
                if let last = tally.unitMeanLoss.last { running.append(("train_running/last_readout_loss", last)) }
                if trainer.net.hasPredictor { running.append(("train_running/predictor_loss", tally.headMeanLoss)) }
                try events.scalars(running, step: trainer.step)
            }
            let elapsed = Date().timeIntervalSince(start)
            let eta = clock.remaining(inEpoch: epoch, fraction: Double(tally.count) / Double(max(total, 1)), elapsed: elapsed)
            fields = Report.progressFields(tally, config: config, runETA: eta)
            progress.advance(by: batch.count, fields: fields)
            if !estimated, elapsed >= 3 || tally.count == total {
                estimated = true
                let perEpoch = elapsed * Double(total) / Double(max(tally.count, 1))
                let remaining = perEpoch * Double(config.epochs - epoch)
                if remaining >= estimateThreshold {
                    log(Report.estimateLine(epochs: config.epochs - epoch, images: total, rate: Double(tally.count) / elapsed,
                                            measured: tally.count, seconds: remaining, validation: data.val?.sampleCount ?? 0))
                }
            }
        }
        let seconds = Date().timeIntervalSince(start)
        progress.finish(fields)
        var val: Tally?
        if let v = data.val {
            let p = Progress("validate", total: v.sampleCount, unit: "img", enabled: showProgress)
            val = try parallel?.evaluate(trainer, v, batchSize: config.microBatch, progress: p)
                ?? trainer.evaluate(v, batchSize: config.microBatch, progress: p)
            p.finish()
        }
        let hasHead = trainer.net.hasPredictor
        let local = !trainer.net.readouts.isEmpty
        let valUnits = val?.unitAccuracy ?? []
        let bestLayer = local ? val?.bestLayer : nil
        var selected: Double?
        if let val {
            let s = config.pred == "best" ? valUnits[bestLayer! - 1] : val.headAccuracy
            selected = s.isFinite ? s : 0
        }
        return EpochRecord(
            epoch: epoch + 1, lr: lr, seconds: seconds, imagesPerSecond: Double(tally.count) / max(seconds, 1e-9),
            trainUnitLoss: local ? tally.unitMeanLoss : [], trainUnitAccuracy: local ? tally.unitAccuracy : [],
            trainHeadLoss: hasHead ? tally.headMeanLoss : nil, trainHeadAccuracy: hasHead ? tally.headAccuracy : nil,
            valUnitAccuracy: local ? valUnits : [], valHeadAccuracy: hasHead ? val?.headAccuracy : nil,
            valHeadTop5: hasHead ? val?.headTop5Accuracy : nil, valSelected: selected, bestLayer: bestLayer,
            temperatures: config.learnTemperature ? trainer.net.objectives.compactMap(\.temperature) : nil,
            valUnitLoss: local ? val?.unitMeanLoss ?? [] : [], valHeadLoss: hasHead ? val?.headMeanLoss : nil)
    }
}

/// Whole-run time left: epochs left x the measured time of an epoch (training, validation
/// and checkpoints) in this process.
public struct RunClock {
    public let totalEpochs: Int
    public private(set) var epochSeconds: [Double] = []

    public init(totalEpochs: Int) { self.totalEpochs = totalEpochs }

    public mutating func finished(_ seconds: Double) { epochSeconds.append(seconds) }

    var meanEpoch: Double? { epochSeconds.isEmpty ? nil : epochSeconds.reduce(0, +) / Double(epochSeconds.count) }

    /// After `done` epochs (1-based count); nil when the run is over or nothing was measured.
    public func remaining(afterEpoch done: Int) -> Double? {
        guard done < totalEpochs, let m = meanEpoch else { return nil }
        return Double(totalEpochs - done) * m
    }

    /// During 0-based `epoch`, a `fraction` of its images done in `elapsed` seconds. Before
    /// any epoch finished, the current epoch's projected length stands for every epoch.
    public func remaining(inEpoch epoch: Int, fraction: Double, elapsed: Double) -> Double? {
        guard fraction > 0 else { return nil }
        let projected = elapsed / fraction
        let later = Double(max(0, totalEpochs - epoch - 1)) * (meanEpoch ?? projected)
        return max(0, projected - elapsed) + later
    }
}
