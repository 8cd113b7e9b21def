import ArgumentParser
import FFEngine
import Foundation

/// Options that override fields of a recipe. Numbers are parsed unconditionally, so a
/// negative value reaches the config's validation (which names the allowed range) instead
/// of being taken for an option.
struct RecipeOverrides: ParsableArguments {
    @Option(help: ArgumentHelp("Dataset directory: the recipe's dataset, or any dataset made by `repro prep` (the network "
        + "adapts to its channels, size and classes). Default: data/<dataset>, or $FFREPRO_DATA/<dataset>."))
    var data: String?
    @Option(parsing: .unconditional, help: "Epochs.") var epochs: Int?
    @Option(parsing: .unconditional, help: "Batch size.") var batchSize: Int?
    @Option(parsing: .unconditional, help: "Peak learning rate (the cosine schedule ends at min_lr).") var lr: Double?
    @Option(parsing: .unconditional, help: "Random seed (weights, readouts, data order, augmentation); sweep takes --seeds instead.") var seed: UInt64?
    @Option(parsing: .unconditional, help: "Train on the first N images of a fixed permutation.") var subset: Int?
    @Option(parsing: .unconditional, help: "Evaluate on N images of validation/test: a fixed sample drawn with the seed (sorted), not the first N.") var evalSubset: Int?
    @Option(parsing: .unconditional, help: "Gradient accumulation: K micro-batches per optimizer step.") var accumulate: Int?
    @Option(help: "Label set: fine (labels) or coarse (CIFAR-100 superclasses).") var labels: String?
    @Option(parsing: .unconditional, help: "ASGE partition factor alpha.") var alpha: Double?
    @Option(help: "Pooling: rms, avg or max.") var pool: String?
    @Option(help: "Prediction strategy: fusion, last, best, goodness-mean, goodness-last or goodness-logistic.")
    var pred: String?
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
        try c.validate()
        var keys = sets.compactMap { $0.split(separator: "=", maxSplits: 1).first.map(String.init) }
        if alpha != nil { keys.append("alpha") }
        for key in keys {
            if let why = c.noEffect(key) {
                throw FFError(.invalidArgument, "\(key == "alpha" && alpha != nil ? "--alpha" : "--set \(key)") has no "
                    + "effect for \(c.name): \(why). Leave it out, or change the setting it depends on too.")
            }
        }
        return c
    }

    /// The options given that would change a stored config (all but --data and --epochs).
    var configOptions: [String] {
        var out: [String] = []
        if batchSize != nil { out.append("--batch-size") }
        if lr != nil { out.append("--lr") }
        if seed != nil { out.append("--seed") }
        if subset != nil { out.append("--subset") }
        if evalSubset != nil { out.append("--eval-subset") }
        if accumulate != nil { out.append("--accumulate") }
        if labels != nil { out.append("--labels") }
        if alpha != nil { out.append("--alpha") }
        if pool != nil { out.append("--pool") }
        if pred != nil { out.append("--pred") }
        if initFrom != nil { out.append("--init-from") }
        if !sets.isEmpty { out.append("--set") }
        return out
    }

    var dataURL: URL? { data.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath, isDirectory: true) } }

    func validate() throws {
        if let d = data, d.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--data is empty.") }
        if let v = labels, !["fine", "coarse", "labels", "coarse_labels"].contains(v) {
            throw ValidationError("--labels '\(v)' is not one of: fine, coarse.")
        }
    }
}

/// A path option that must name an existing regular file.
func existingFile(_ path: String, option: String) throws -> URL {
    let url = URL(fileURLWithPath: (path as NSString).expandingTildeInPath)
    guard !path.isEmpty, FileManager.default.fileExists(atPath: url.path) else {
        throw FFError(.missing, "\(option) \(url.path) does not exist; `repro run NAME` writes best.h5 and last.h5 into "
            + "its run folder (runs/NAME/<date>-<time>/).", file: url)
    }
    try RegularFile.check(url, what: option, hint: "Pass a checkpoint file such as "
        + "\(url.appendingPathComponent("best.h5").path).")
    return url
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Train a recipe, keep the best-on-validation checkpoint, test it.",
        discussion: """
            Each run gets its own folder, runs/<recipe>/<date>-<time>[-<tag>] (or --out): config.json, \
            best.h5, last.h5, metrics.jsonl, metrics.csv, results.json (docs/results.md). A run never \
            replaces another run's files. \
            --resume RUN_DIR (or a checkpoint) continues a run with the config stored in it; options need \
            not be repeated. To train longer than planned: --resume RUN_DIR --epochs N --extend.
            """)

    @Argument(help: "Recipe name (see `repro list`); not needed with --resume.") var name: String?
    @OptionGroup var overrides: RecipeOverrides
    @Option(help: "Output folder (default: runs/<recipe>/<date>-<time>[-<tag>]; $FFREPRO_RUNS replaces runs/).")
    var out: String?
    @Option(help: "Suffix of the default run folder name, e.g. alpha1.5.") var tag: String?
    @Option(help: "Continue a run: its folder (from last.h5) or a checkpoint file. The config comes from the checkpoint.")
    var resume: String?
    @Flag(help: "With --resume and --epochs: train up to the new epoch count (the cosine schedule is stretched to it).")
    var extend = false
    @Flag(help: "Replace another run's files in the output folder (without it such a folder is refused).")
    var overwrite = false
    @Option(help: "Write TensorBoard event files into DIR/<run folder name>/ (tensorboard --logdir DIR).")
    var tensorboard: String?
    @Option(help: ArgumentHelp("Checkpoints kept when the run has finished: both (default), best (weights of the tested "
        + "epoch; the run can no longer be resumed or extended) or last (with optimizer state).", valueName: "which"))
    var keep = "both"
    @OptionGroup var threading: ThreadOptions
    @OptionGroup(title: "Several processes (mpirun or srun)") var mpi: ParallelOptions

    func validate() throws {
        guard ["both", "best", "last"].contains(keep) else {
            throw ValidationError("--keep '\(keep)' is not one of: both, best, last.")
        }
        if let o = out, o.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--out is empty; give the run folder, or leave --out out (runs/<recipe>/<date>-<time>).")
        }
    }

    func run() throws {
        var parallel: ParallelTraining?
        try Repro.guarded { parallel = try mpi.start() }
        try ParallelOptions.guarded(parallel) {
            if tag != nil, out != nil || resume != nil {
                throw FFError(.invalidArgument, "--tag names a new default run folder; it does not go with --out or --resume.")
            }
            let ctx = threading.context()
            let choice: DatasetChoice
            let folder: URL
            var checkpoint: URL?
            if let resume {
                let (ckpt, source) = try RunFolder.resumeSource(URL(fileURLWithPath: resume))
                let info = try RunCheckpoint.describe(ckpt)
                var config = info.config
                if let name, name != config.name {
                    throw FFError(.invalidArgument, "--resume \(resume) is a run of \(config.name), not \(name).")
                }
                if !overrides.configOptions.isEmpty {
                    throw FFError(.invalidArgument, "--resume takes the config from the checkpoint; "
                        + overrides.configOptions.joined(separator: ", ") + " cannot change it. Start a new run "
                        + "for other options (or branch: --resume \(resume) --out NEW_FOLDER keeps the config).")
                }
                if let epochs = overrides.epochs {
                    guard extend else {
                        throw FFError(.invalidArgument, "--epochs \(epochs) on --resume would change the run's length "
                            + "(planned: \(config.epochs) epochs, done: \(info.epoch)). Add --extend to train up to "
                            + "\(epochs) epochs; the cosine schedule is then stretched to \(epochs), so the result differs "
                            + "from a run planned for \(epochs) epochs from the start.")
                    }
                    guard epochs > info.epoch else {
                        throw FFError(.invalidArgument, "--epochs \(epochs) --extend: the checkpoint has already "
                            + "trained \(info.epoch) epochs; give a larger count.")
                    }
                    config.epochs = epochs
                } else if extend {
                    throw FFError(.invalidArgument, "--extend needs --epochs N (the new total).")
                }
                folder = out.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? source.url
                // A run killed during its final test has trained every epoch but has no
                // results.json yet: resuming it runs the test.
                let target = RunFolder(folder)
                if info.epoch >= config.epochs,
                   FileManager.default.fileExists(atPath: target.results.path) || target.url != source.url {
                    throw FFError(.invalidArgument, "\(ckpt.path) has finished all \(config.epochs) planned epochs. "
                        + "To train more: --resume \(resume) --epochs N --extend.")
                }
                let stored = info.dataset.map { URL(fileURLWithPath: $0.directory, isDirectory: true) }
                let dir = overrides.dataURL
                    ?? stored.flatMap { FileManager.default.fileExists(atPath: $0.path) ? $0 : nil }
                choice = try RunData.choose(config, directory: dir)
                try Self.checkSameData(choice, info: info, checkpoint: ckpt)
                checkpoint = ckpt
            } else {
                guard let name else {
                    throw ValidationError("Name a recipe (see `repro list`), or continue a run with --resume RUN_DIR.")
                }
                if extend { throw FFError(.invalidArgument, "--extend goes with --resume RUN_DIR --epochs N.") }
                let config = try overrides.apply(to: try Recipes.named(name))
                choice = try RunData.choose(config, directory: overrides.dataURL)
                if let note = choice.adaptation, parallel?.isRoot ?? true { print(note) }
                folder = try out.map { URL(fileURLWithPath: $0, isDirectory: true) }
                    ?? RunFolder.fresh(recipe: config.name, tag: tag).url
            }
            let data = try RunData.open(choice)
            let run = try TrainingRun(ctx, config: choice.config, data: data, directory: try parallel?.agree(on: folder) ?? folder,
                                      resume: checkpoint)
            run.overwrite = overwrite
            run.parallel = parallel
            run.tensorboard = tensorboard.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath, isDirectory: true) }
            if parallel == nil { Self.reportInterruptions(run) }
            if parallel?.isRoot == false {
                run.log = { _ in }
                run.showProgress = false
            }
            let result = try run.run()
            guard parallel?.isRoot ?? true else { return }
            print("run folder: \(run.directory.path)")
            let bestEpoch = result.record?.checkpointEpoch ?? result.bestEpoch ?? 0
            let kept = try RunFolder(run.directory).prune(keep: keep)
            let names = ["best.h5 (epoch \(bestEpoch), weights)", "last.h5 (epoch \(result.epochsTrained), with optimizer "
                + "state)"].filter { kept.contains(String($0.prefix(7))) }
            print("checkpoints: \(names.isEmpty ? "none kept" : names.joined(separator: ", ")); metrics.jsonl, metrics.csv, "
                + "results.json" + (keep == "both" ? "" : " (--keep \(keep))"))
        }
    }

    /// Ctrl-C / SIGTERM: say where the run stopped and how it continues, then exit 128 + signal.
    static func reportInterruptions(_ run: TrainingRun) {
        let phase = NSLock()
        var now = "setup"
        run.onPhase = { p in phase.lock(); now = p; phase.unlock() }
        let dir = run.directory.path
        Interrupts.install { sig in
            phase.lock()
            let at = now
            phase.unlock()
            let resumable = FileManager.default.fileExists(atPath: run.lastCheckpoint.path)
            let message: String
            if resumable {
                message = "interrupted \(at == "test" ? "during the final test" : at == "setup" ? "before training" : "in \(at)"); "
                    + "the last finished epoch is in \(dir)/last.h5. Continue with: repro run --resume \(dir)"
            } else {
                message = "interrupted \(at == "setup" ? "before training" : "in \(at)") before any epoch finished: there "
                    + "is nothing to resume. Start again with the same options (add --out \(dir) --overwrite to reuse "
                    + "the folder)."
            }
            // This process's half-written temporaries and its lock file go too (the kernel
            // drops the lock itself at exit); the finished checkpoints are untouched.
            let mine = ".tmp.\(getpid())"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            where name.hasSuffix(mine) || name == DirectoryLock.fileName {
                unlink(dir + "/" + name)
            }
            Interrupts.exit(sig, message: message)
        }
    }

    /// A resumed run must read the data it started with.
    static func checkSameData(_ choice: DatasetChoice, info: CheckpointInfo, checkpoint: URL) throws {
        if choice.adaptation != nil || choice.config.dataset != info.config.dataset {
            throw FFError(.mismatch, "\(checkpoint.path) was trained on dataset '\(info.config.dataset)' but "
                + "\(choice.directory.path) holds '\(choice.index.dataset)'; pass --data with the run's dataset.", file: checkpoint)
        }
        if let d = info.dataset, !d.fingerprint.isEmpty, d.fingerprint != choice.index.conversion.fingerprint {
            throw FFError(.mismatch, "\(choice.directory.path) is not the conversion \(checkpoint.path) was trained on "
                + "(fingerprint \(choice.index.conversion.fingerprint.prefix(12)) vs \(d.fingerprint.prefix(12))): its "
                + "images, labels or splits differ. Resume with the original dataset (--data DIR).", file: checkpoint)
        }
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Evaluate a checkpoint: per-layer readouts, Best Pred and the classifier.")

    @Option(help: "Checkpoint file written by `repro run` (a run folder's best.h5 or last.h5).") var checkpoint: String
    @Option(help: "Dataset directory (default: the one the run read, else data/<dataset of the checkpoint>).")
    var data: String?
    @Option(help: "Split: test, val or train.") var split = "test"
    @Option(parsing: .unconditional, help: "Evaluate N images only: a fixed sample drawn with the checkpoint's seed (sorted), not the first N.") var subset: Int?
    @Option(help: "Write the results record (schema v2, as results.json) to this file.") var out: String?
    @Flag(help: "Let --out replace an existing file that is not an eval record (never the checkpoint itself).")
    var overwrite = false
    @OptionGroup var threading: ThreadOptions
    @OptionGroup(title: "Several processes (mpirun or srun: the ranks split the images)") var mpi: ParallelOptions

    func validate() throws {
        guard ["test", "val", "train"].contains(split) else {
            throw ValidationError("--split '\(split)' is not one of: test, val, train.")
        }
        if let n = subset, n < 1 { throw ValidationError("--subset \(n) must be at least 1.") }
        if let d = data, d.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--data is empty.") }
    }

    func run() throws {
        var parallel: ParallelTraining?
        try Repro.guarded { parallel = try mpi.start() }
        try ParallelOptions.guarded(parallel) {
            let url = try existingFile(checkpoint, option: "--checkpoint")
            if let out {
                try ResultsRecord.checkEvalOutput(URL(fileURLWithPath: (out as NSString).expandingTildeInPath),
                                                  checkpoint: url, overwrite: overwrite)
            }
            let info = try RunCheckpoint.describe(url)
            var config = info.config
            config.evalSubset = subset
            let ctx = threading.context()
            try ctx.setPrecision(config.precision)
            let net = try Network(ctx, config: config, inputShape: info.inputShape, classes: info.classes)
            let trainer = Trainer(ctx, net: net)
            let state = try RunCheckpoint.load(url, into: trainer)
            let stored = info.dataset.map { URL(fileURLWithPath: $0.directory, isDirectory: true) }
            let dir = data.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath, isDirectory: true) }
                ?? stored.flatMap { FileManager.default.fileExists(atPath: $0.path) ? $0 : nil }
            let choice = try RunData.choose(config, directory: dir)
            if choice.adaptation != nil {
                throw FFError(.mismatch, "\(url.path) was trained on dataset '\(config.dataset)' but \(choice.directory.path) "
                    + "holds '\(choice.index.dataset)'.", file: url)
            }
            if let d = info.dataset, !d.fingerprint.isEmpty, d.fingerprint != choice.index.conversion.fingerprint {
                print("note: \(choice.directory.path) is another conversion of \(config.dataset) than the one this "
                    + "checkpoint was trained on (fingerprints differ)")
            }
            let provider = try RunData.evaluationLoader(choice, split: split)
            guard provider.sampleShape == info.inputShape, provider.classCount == info.classes else {
                throw FFError(.mismatch, "the checkpoint expects \(info.inputShape) images and \(info.classes) classes, "
                    + "the data gives \(provider.sampleShape) and \(provider.classCount).")
            }
            let progress = Progress("eval \(split)", total: provider.sampleCount, unit: "img", enabled: parallel?.isRoot ?? true)
            let tally = try parallel?.evaluate(trainer, provider, batchSize: config.microBatch, progress: progress)
                ?? trainer.evaluate(provider, batchSize: config.microBatch, progress: progress)
            progress.finish()
            guard parallel?.isRoot ?? true else { return }
            // best.h5 was written at its epoch; the run may have trained on (its last.h5 says how far).
            var trained = state.epoch
            let last = url.deletingLastPathComponent().appendingPathComponent("last.h5")
            if last.standardizedFileURL != url.standardizedFileURL, let l = try? RunCheckpoint.describe(last),
               RunCheckpoint.differences(l.config, info.config).allSatisfy({ $0 == "epochs" }) {
                trained = max(trained, l.epoch)
            }
            let record = ResultsRecord(kind: "eval", config: info.config, dataset: choice.info, classes: info.classes,
                                       split: split, tally: tally,
                                       readoutLabels: net.readoutLabels, bestReadout: info.bestReadout,
                                       checkpoint: url.path, checkpointEpoch: state.epoch, history: state.history,
                                       epochsTrained: trained, build: BuildInfo.current(ctx))
            print(Report.table(tally, config: config, labels: net.readoutLabels, bestLayer: info.bestReadout, split: split,
                               selectedFrom: "\(url.lastPathComponent), epoch \(state.epoch)",
                               comparison: PaperComparison.line(record), record: record))
            if let out {
                let file = URL(fileURLWithPath: (out as NSString).expandingTildeInPath)
                try record.write(to: file)
                print("results record: \(file.path)")
            }
        }
    }
}
