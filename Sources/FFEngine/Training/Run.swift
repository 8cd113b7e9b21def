import Foundation

/// The data of one run: training batches, and the validation/test splits when present.
public struct RunData {
    public var train: BatchProvider
    public var val: BatchProvider?
    public var test: BatchProvider?
    public init(train: BatchProvider, val: BatchProvider?, test: BatchProvider?) {
        self.train = train
        self.val = val
        self.test = test
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
}

/// A whole training run: epochs with cosine LR, validation after each epoch, metrics
/// logs, last/best checkpoints (atomic), resume, and the final test evaluation of the
/// best-on-validation checkpoint.
public final class TrainingRun {
    public let config: RecipeConfig
    public let ctx: ComputeContext
    public let directory: URL
    public let resume: URL?
    public let data: RunData
    /// Where run lines go; the default flushes each line so logs redirected to a file
    /// show every epoch as it ends.
    public var log: (String) -> Void = { line in
        print(line)
        fflush(stdout)
    }
    public var showProgress = true

    public init(_ ctx: ComputeContext, config: RecipeConfig, data: RunData, directory: URL, resume: URL? = nil) throws {
        try config.validate()
        try ctx.setPrecision(config.precision)
        self.ctx = ctx
        self.config = config
        self.data = data
        self.directory = directory
        self.resume = resume
    }

    public var lastCheckpoint: URL { directory.appendingPathComponent("last.h5") }
    public var bestCheckpoint: URL { directory.appendingPathComponent("best.h5") }

    public func run() throws -> RunResult {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let net = try Network(ctx, config: config, inputShape: data.train.sampleShape, classes: data.train.classCount)
        let trainer = Trainer(ctx, net: net)
        var history: [EpochRecord] = []
        var startEpoch = 0
        if let resume {
            let state = try RunCheckpoint.load(resume, into: trainer, expecting: config)
            history = state.history
            startEpoch = state.epoch
            log("resumed from \(resume.path) after epoch \(startEpoch) (step \(trainer.step))")
        } else if let source = config.initFrom {
            log(try WeightTransfer.load(ctx, URL(fileURLWithPath: source), into: net).summary)
        }
        let metrics = MetricsLog(directory: directory)
        try metrics.reset(keeping: history)
        try AtomicFile.write(Data(config.json().utf8), to: directory.appendingPathComponent("config.json"))
        log("\(config.name): \(net.summary)")
        log("data: \(data.train.sampleCount) train, \(data.val?.sampleCount ?? 0) val, \(data.test?.sampleCount ?? 0) test; "
            + "\(ctx.threads) threads (\(ctx.simdName)); output \(directory.path)")
        if data.val == nil { log("note: no validation split; the last epoch is used as the selected model") }

        var best = history.max(by: { $0.valSelected < $1.valSelected }).map { (value: $0.valSelected, epoch: $0.epoch) }
        for epoch in startEpoch..<config.epochs {
            let record: EpochRecord
            do {
                record = try trainEpoch(epoch, trainer: trainer)
            } catch var e as NonFiniteLoss {
                let last = FileManager.default.fileExists(atPath: lastCheckpoint.path) ? lastCheckpoint.path : nil
                e.lastGood = last ?? resume?.path
                throw e
            }
            history.append(record)
            try metrics.append(record)
            let state = RunState(epoch: epoch + 1, step: trainer.step, history: history)
            try RunCheckpoint.save(trainer, state: state, to: lastCheckpoint)
            if data.val == nil || best == nil || record.valSelected > best!.value {
                best = (record.valSelected, record.epoch)
                try RunCheckpoint.save(trainer, state: state, to: bestCheckpoint)
            }
            log(Report.epochLine(record, config: config, best: best!.epoch == record.epoch))
        }

        var result = RunResult(epochsTrained: config.epochs, bestEpoch: best?.epoch, bestValidation: best?.value,
                               bestLayer: nil, test: nil, history: history)
        if FileManager.default.fileExists(atPath: bestCheckpoint.path) {
            let state = try RunCheckpoint.load(bestCheckpoint, into: trainer, expecting: config)
            result.bestLayer = state.history.last?.bestLayer
        }
        if let test = data.test {
            let progress = Progress("test", total: test.sampleCount, unit: "img", enabled: showProgress)
            let tally = try trainer.evaluate(test, batchSize: config.microBatch, progress: progress)
            progress.finish()
            result.test = tally
            let (top1, top5) = Report.selected(tally, config: config, bestLayer: result.bestLayer)
            result.testTop1 = top1
            result.testTop5 = top5
            log(Report.table(tally, config: config, labels: trainer.net.readoutLabels, bestLayer: result.bestLayer, split: "test",
                             selectedFrom: "best validation epoch \(result.bestEpoch ?? config.epochs)"))
        }
        try Report.writeResults(result, config: config, to: directory.appendingPathComponent("results.json"))
        return result
    }

    private func trainEpoch(_ epoch: Int, trainer: Trainer) throws -> EpochRecord {
        let lr = OptimizerFactory.learningRate(config, epoch: epoch)
        var tally = Tally(units: trainer.net.readouts.count)
        let progress = Progress("epoch \(epoch + 1)/\(config.epochs)", total: data.train.sampleCount, unit: "img",
                                enabled: showProgress)
        let start = Date()
        let batches = data.train.batches(epoch: epoch, batchSize: config.batchSize)
        while let batch = try batches.next() {
            try trainer.trainStep(batch, lr: lr, tally: &tally)
            progress.advance(by: batch.count, fields: Report.progressFields(tally, config: config))
        }
        let seconds = Date().timeIntervalSince(start)
        progress.finish(Report.progressFields(tally, config: config))
        var val: Tally?
        if let v = data.val {
            let p = Progress("validate", total: v.sampleCount, unit: "img", enabled: showProgress)
            val = try trainer.evaluate(v, batchSize: config.microBatch, progress: p)
            p.finish()
        }
        let hasHead = trainer.net.hasPredictor
        let local = !trainer.net.readouts.isEmpty
        let valUnits = val?.unitAccuracy ?? []
        let bestLayer = local ? val?.bestLayer : nil
        var selected: Double
        if let val {
            selected = config.pred == "best" ? valUnits[bestLayer! - 1] : val.headAccuracy
        } else {
            selected = config.pred == "best" ? (tally.unitAccuracy.max() ?? 0) : tally.headAccuracy
        }
        if !selected.isFinite { selected = 0 }
        return EpochRecord(
            epoch: epoch + 1, lr: lr, seconds: seconds, imagesPerSecond: Double(tally.count) / max(seconds, 1e-9),
            trainUnitLoss: local ? tally.unitMeanLoss : [], trainUnitAccuracy: local ? tally.unitAccuracy : [],
            trainHeadLoss: hasHead ? tally.headMeanLoss : nil, trainHeadAccuracy: hasHead ? tally.headAccuracy : nil,
            valUnitAccuracy: local ? valUnits : [], valHeadAccuracy: hasHead ? val?.headAccuracy : nil,
            valHeadTop5: hasHead ? val?.headTop5Accuracy : nil, valSelected: selected, bestLayer: bestLayer,
            temperatures: config.learnTemperature ? trainer.net.objectives.compactMap(\.temperature) : nil)
    }
}
