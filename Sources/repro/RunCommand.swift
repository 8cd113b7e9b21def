import ArgumentParser
import FFEngine
import Foundation

/// Options that override fields of a recipe.
struct RecipeOverrides: ParsableArguments {
    @Option(help: "Dataset directory (default: data/<dataset>, or $FFREPRO_DATA/<dataset>).")
    var data: String?
    @Option(help: "Epochs.") var epochs: Int?
    @Option(help: "Batch size.") var batchSize: Int?
    @Option(help: "Peak learning rate (the cosine schedule ends at min_lr).") var lr: Double?
    @Option(help: "Random seed (weights, readouts, data order, augmentation).") var seed: UInt64?
    @Option(help: "Train on the first N images of a fixed permutation.") var subset: Int?
    @Option(help: "Evaluate on the first N images of validation/test.") var evalSubset: Int?
    @Option(help: "Gradient accumulation: K micro-batches per optimizer step.") var accumulate: Int?
    @Option(help: "Label set: fine (labels) or coarse (CIFAR-100 superclasses).") var labels: String?
    @Option(help: "ASGE partition factor alpha.") var alpha: Double?
    @Option(help: "Pooling: rms, avg or max.") var pool: String?
    @Option(help: "Prediction strategy: fusion, last or best.") var pred: String?
    @Option(help: "Convolution precision: fp32 (default) or bf16 (needs AVX512_BF16).") var precision: String?
    @Option(help: "Initial weights: a .safetensors file (torchvision names) or a repro checkpoint.")
    var initFrom: String?
    @Option(name: .customLong("set"), parsing: .singleValue,
            help: "Any config field, as key=value with a JSON value (e.g. --set ln_eps=1e-6). Repeatable.")
    var sets: [String] = []

    func apply(to base: RecipeConfig) throws -> RecipeConfig {
        var c = base
        if let v = epochs { c.epochs = v }
        if let v = batchSize { c.batchSize = v }
        if let v = lr { c.lr = v; c.minLr = min(c.minLr, v) }
        if let v = seed { c.seed = v }
        if let v = subset { c.subset = v }
        if let v = evalSubset { c.evalSubset = v }
        if let v = accumulate { c.accumulate = v }
        if let v = labels { c.labels = v == "coarse" ? "coarse_labels" : v == "fine" ? "labels" : v }
        if let v = alpha { c.alpha = v }
        if let v = pool {
            guard let k = Ops.PoolKind(rawValue: v) else { throw FFError("--pool must be rms, avg or max (got \(v)).") }
            c.pool = k
        }
        if let v = pred { c.pred = v }
        if let v = initFrom { c.initFrom = v }
        if let v = precision { c.precision = v }
        for s in sets { c = try c.setting(s) }
        if c.labels != base.labels {
            // The paper's number is for the recipe's own label set.
            c.paperTop1 = nil
            c.paperTop5 = nil
            c.paperSource = nil
        }
        try c.validate()
        return c
    }

    var dataURL: URL? { data.map { URL(fileURLWithPath: $0, isDirectory: true) } }
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Train a recipe, keep the best-on-validation checkpoint, test it.")

    @Argument(help: "Recipe name (see `repro list`).") var name: String
    @OptionGroup var overrides: RecipeOverrides
    @Option(help: "Output directory (default: checkpoints/<recipe>).") var out: String?
    @Option(help: "Continue from this checkpoint (same recipe and options; bit-identical).") var resume: String?
    @OptionGroup var threading: ThreadOptions

    func run() throws {
        try Repro.guarded {
            let config = try overrides.apply(to: try Recipes.named(name))
            let ctx = threading.context()
            let data = try RunData.open(config, directory: overrides.dataURL)
            let dir = URL(fileURLWithPath: out ?? "checkpoints/\(config.name)", isDirectory: true)
            let run = try TrainingRun(ctx, config: config, data: data, directory: dir,
                                      resume: resume.map { URL(fileURLWithPath: $0) })
            let result = try run.run()
            print("checkpoints: \(run.bestCheckpoint.path) (best, epoch \(result.bestEpoch ?? 0)), \(run.lastCheckpoint.path)")
            print("metrics: \(dir.appendingPathComponent("metrics.jsonl").path), results: \(dir.appendingPathComponent("results.json").path)")
        }
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Evaluate a checkpoint: per-layer readouts, Best Pred and the classifier.")

    @Option(help: "Checkpoint file written by `repro run`.") var checkpoint: String
    @Option(help: "Dataset directory (default: data/<dataset of the checkpoint>).") var data: String?
    @Option(help: "Split: test, val or train.") var split = "test"
    @Option(help: "Evaluate the first N images only.") var subset: Int?
    @OptionGroup var threading: ThreadOptions

    func run() throws {
        try Repro.guarded {
            let url = URL(fileURLWithPath: checkpoint)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw FFError(.missing, "checkpoint \(url.path) does not exist; `repro run NAME` writes "
                    + "checkpoints/NAME/best.h5 and last.h5.", file: url)
            }
            var (config, shape, classes) = try RunCheckpoint.describe(url)
            config.evalSubset = subset
            let ctx = threading.context()
            try ctx.setPrecision(config.precision)
            let net = try Network(ctx, config: config, inputShape: shape, classes: classes)
            let trainer = Trainer(ctx, net: net)
            let state = try RunCheckpoint.load(url, into: trainer)
            let dataDir = data.map { URL(fileURLWithPath: $0, isDirectory: true) }
            let opened = try RunData.open(config, directory: dataDir, splits: [split])
            guard let provider = split == "train" ? opened.train : split == "val" ? opened.val : opened.test else {
                throw FFError(.missing, "the dataset of \(config.name) has no '\(split)' split.")
            }
            guard provider.sampleShape == shape, provider.classCount == classes else {
                throw FFError(.mismatch, "the checkpoint expects \(shape) images and \(classes) classes, "
                    + "the data gives \(provider.sampleShape) and \(provider.classCount).")
            }
            let progress = Progress("eval \(split)", total: provider.sampleCount, unit: "img")
            let tally = try trainer.evaluate(provider, batchSize: config.microBatch, progress: progress)
            progress.finish()
            let best = state.history.last(where: { $0.bestLayer != nil })?.bestLayer
            print(Report.table(tally, config: config, labels: net.readoutLabels, bestLayer: best, split: split,
                               selectedFrom: "\(url.lastPathComponent), epoch \(state.epoch)"))
        }
    }
}
