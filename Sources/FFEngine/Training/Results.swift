import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// results.json of a run and the record `repro eval --out` writes: schema v2
/// (docs/results.md). Accuracies are percent, in keys ending in `_pct`; every key is
/// present, `null` where nothing was measured.
public struct ResultsRecord: Codable, Equatable {
    public static let schemaName = "ffrepro-results"
    public static let schemaVersion = 2

    public struct Readout: Codable, Equatable {
        public var label: String
        public var top1Pct: Double
        public var top5Pct: Double?

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(label, forKey: .label)
            try c.encode(top1Pct, forKey: .top1Pct)
            try c.encode(top5Pct, forKey: .top5Pct)
        }
    }

    /// The paper's number for the recipe and whether this result may be set beside it.
    public struct Paper: Codable, Equatable {
        public var top1Pct: Double?
        public var top5Pct: Double?
        public var source: String?
        public var comparable: Bool
        /// Why not, when not comparable.
        public var whyNot: String?

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(top1Pct, forKey: .top1Pct)
            try c.encode(top5Pct, forKey: .top5Pct)
            try c.encode(source, forKey: .source)
            try c.encode(comparable, forKey: .comparable)
            try c.encode(whyNot, forKey: .whyNot)
        }
    }

    public var schema = ResultsRecord.schemaName
    public var schemaVersion = ResultsRecord.schemaVersion
    /// "run" (results.json of `repro run`) or "eval" (`repro eval --out`).
    public var kind: String
    public var recipe: String
    public var seed: UInt64
    /// SHA-256 of the config JSON (= `sha256sum config.json` in the run folder).
    public var configHash: String
    public var config: RecipeConfig
    public var dataset: DatasetInfo?
    /// The evaluated split ("test", "val", "train"); nil when the run had nothing to test.
    public var split: String?
    /// Images evaluated, and images in that split of the conversion.
    public var images: Int?
    public var splitImages: Int?
    /// The evaluated checkpoint (path as given) and its epoch.
    public var checkpoint: String?
    public var checkpointEpoch: Int?
    public var epochsTrained: Int?
    public var epochsPlanned: Int
    /// The epoch with the best validation selection metric, and that metric.
    public var bestEpoch: Int?
    public var bestValPct: Double?
    /// The recipe's predictor and its accuracy on `split`.
    public var predictor: String
    public var top1Pct: Double?
    public var top5Pct: Double?
    /// The classifier head (or, for goodness-* predictors, the averaged readouts); null
    /// for Best Pred recipes, which have none.
    public var headTop1Pct: Double?
    public var headTop5Pct: Double?
    /// Best Pred: the readout chosen on validation (1-based) and its accuracy; null
    /// without local readouts (backprop baselines).
    public var bestPredReadout: Int?
    public var bestPredLabel: String?
    public var bestPredTop1Pct: Double?
    public var bestPredTop5Pct: Double?
    /// Every local readout's accuracy on `split`.
    public var readouts: [Readout]
    /// nil when the paper gives no number for this recipe.
    public var paper: Paper?
    /// Training time of all epochs in the run's history.
    public var trainSeconds: Double?
    /// The build that measured this record (`repro --version`); nil in older records.
    public var build: BuildInfo?
    /// Per class of the evaluated split (Results+Classes.swift): images, the predictor's
    /// accuracy, their mean (balanced accuracy), the confusion matrix (row = true class),
    /// and the baselines it must beat. Null when not measured (no test, or over 200 classes).
    public var classImages: [Int]?
    public var perClassTop1Pct: [Double?]?
    public var balancedTop1Pct: Double?
    public var confusion: [[Int]]?
    public var majorityClass: String?
    public var majorityPct: Double?
    public var chancePct: Double?
    /// Whether the predictor's top-1 is above the majority baseline.
    public var beatsMajority: Bool?

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(schema, forKey: .schema)
        try c.encode(schemaVersion, forKey: .schemaVersion)
        try c.encode(kind, forKey: .kind)
        try c.encode(recipe, forKey: .recipe)
        try c.encode(seed, forKey: .seed)
        try c.encode(configHash, forKey: .configHash)
        try c.encode(config, forKey: .config)
        try c.encode(dataset, forKey: .dataset)
        try c.encode(split, forKey: .split)
        try c.encode(images, forKey: .images)
        try c.encode(splitImages, forKey: .splitImages)
        try c.encode(checkpoint, forKey: .checkpoint)
        try c.encode(checkpointEpoch, forKey: .checkpointEpoch)
        try c.encode(epochsTrained, forKey: .epochsTrained)
        try c.encode(epochsPlanned, forKey: .epochsPlanned)
        try c.encode(bestEpoch, forKey: .bestEpoch)
        try c.encode(bestValPct, forKey: .bestValPct)
        try c.encode(predictor, forKey: .predictor)
        try c.encode(top1Pct, forKey: .top1Pct)
        try c.encode(top5Pct, forKey: .top5Pct)
        try c.encode(headTop1Pct, forKey: .headTop1Pct)
        try c.encode(headTop5Pct, forKey: .headTop5Pct)
        try c.encode(bestPredReadout, forKey: .bestPredReadout)
        try c.encode(bestPredLabel, forKey: .bestPredLabel)
        try c.encode(bestPredTop1Pct, forKey: .bestPredTop1Pct)
        try c.encode(bestPredTop5Pct, forKey: .bestPredTop5Pct)
        try c.encode(readouts, forKey: .readouts)
        try c.encode(paper, forKey: .paper)
        try c.encode(trainSeconds, forKey: .trainSeconds)
        try c.encode(build, forKey: .build)
        try c.encode(classImages, forKey: .classImages)
        try c.encode(perClassTop1Pct, forKey: .perClassTop1Pct)
        try c.encode(balancedTop1Pct, forKey: .balancedTop1Pct)
        try c.encode(confusion, forKey: .confusion)
        try c.encode(majorityClass, forKey: .majorityClass)
        try c.encode(majorityPct, forKey: .majorityPct)
        try c.encode(chancePct, forKey: .chancePct)
        try c.encode(beatsMajority, forKey: .beatsMajority)
    }

    /// The record of an evaluation `tally` of a model of `classes` classes trained with
    /// `config`. `bestReadout` is the readout chosen on validation (Best Pred). Top-5 is
    /// null for five classes or fewer (it would be 100 % by definition).
    public init(kind: String, config: RecipeConfig, dataset: DatasetInfo?, classes: Int, split: String?, tally: Tally?,
                readoutLabels: [String], bestReadout: Int?, checkpoint: String?, checkpointEpoch: Int?,
                history: [EpochRecord], epochsTrained: Int?, build: BuildInfo? = nil) {
        func pct(_ x: Double) -> Double { EpochRecord.pct(x) }
        func pct5(_ x: Double) -> Double? { classes > 5 ? EpochRecord.pct(x) : nil }
        self.kind = kind
        self.build = build
        recipe = config.name
        seed = config.seed
        configHash = RunCheckpoint.configHash(config)
        self.config = config
        self.dataset = dataset
        self.split = tally == nil ? nil : split
        images = tally?.count
        splitImages = split.flatMap { dataset?.splitCounts[$0] }
        self.checkpoint = checkpoint
        self.checkpointEpoch = checkpointEpoch
        self.epochsTrained = epochsTrained
        epochsPlanned = config.epochs
        // Without validation the run keeps its last epoch and there is no val %.
        let best = EpochRecord.selected(history)
        bestEpoch = best?.epoch
        bestValPct = best?.valSelected.map { pct($0) }
        predictor = Report.predictorName(config)
        readouts = []
        if let t = tally {
            let acc = t.unitAccuracy, top5 = t.unitTop5Accuracy
            readouts = acc.indices.map {
                Readout(label: $0 < readoutLabels.count ? readoutLabels[$0] : "readout \($0 + 1)", top1Pct: pct(acc[$0]),
                        top5Pct: pct5(top5[$0]))
            }
            if !acc.isEmpty {
                let b = min(max(bestReadout ?? t.bestLayer ?? 1, 1), acc.count)
                bestPredReadout = b
                bestPredLabel = readouts[b - 1].label
                bestPredTop1Pct = readouts[b - 1].top1Pct
                bestPredTop5Pct = readouts[b - 1].top5Pct
            }
            if config.pred != "best" {
                headTop1Pct = pct(t.headAccuracy)
                headTop5Pct = pct5(t.headTop5Accuracy)
            }
            (top1Pct, top5Pct) = config.pred == "best" ? (bestPredTop1Pct, bestPredTop5Pct) : (headTop1Pct, headTop5Pct)
        }
        paper = PaperComparison.check(config: config, dataset: dataset, epochsTrained: epochsTrained ?? 0,
                                      split: self.split, images: images)
        let seconds = history.reduce(0) { $0 + $1.seconds }
        trainSeconds = history.isEmpty ? nil : seconds
        if let t = tally { addClassStatistics(t, classes: classes) }
    }

    /// Pretty-printed JSON with sorted snake_case keys.
    public func encoded() throws -> Data {
        var d = try RecipeConfig.encoder.encode(self)
        d.append(0x0A)
        return d
    }

    public func write(to url: URL) throws { try AtomicFile.write(try encoded(), to: url) }

    /// Refuses an `eval --out` target that would destroy something else: the checkpoint being
    /// evaluated (always), a directory, any `.h5`, or an existing file that is not an eval
    /// record (unless `overwrite`). Checked before the evaluation, so nothing is computed in vain.
    public static func checkEvalOutput(_ url: URL, checkpoint: URL, overwrite: Bool) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else { return }
        if isDir.boolValue {
            throw FFError(.invalidArgument, "--out \(url.path) is a directory; give a file name (for example "
                + "\(url.appendingPathComponent("eval.json").path)).", file: url)
        }
        var a = stat(), b = stat()
        if url.standardizedFileURL.path == checkpoint.standardizedFileURL.path
            || (stat(url.path, &a) == 0 && stat(checkpoint.path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
            throw FFError(.invalidArgument, "--out \(url.path) is the checkpoint being evaluated; writing the record "
                + "there would replace its weights. Choose another file (for example eval.json).", file: url)
        }
        if overwrite { return }
        if url.pathExtension.lowercased() == "h5" {
            throw FFError(.invalidArgument, "--out \(url.path) exists and is an .h5 file (a checkpoint or dataset shard), "
                + "not an eval record; choose another file, or add --overwrite to replace it.", file: url)
        }
        let size = AtomicFile.size(of: url) ?? 0
        let head = size <= 16 << 20 ? FileManager.default.contents(atPath: url.path) : nil
        let object = head.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        guard object?["kind"] as? String == "eval", object?["schema_version"] != nil else {
            throw FFError(.invalidArgument, "--out \(url.path) exists and is not an eval record (\(size) bytes); "
                + "choose another file, or add --overwrite to replace it.", file: url)
        }
    }

    /// Reads a results.json / eval record; the error names the file and what is wrong.
    public static func read(_ url: URL) throws -> ResultsRecord {
        guard var data = FileManager.default.contents(atPath: url.path) else {
            throw FFError(.missing, "Cannot read \(url.path).", file: url)
        }
        if var head = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            guard (head["schema_version"] as? Int) == schemaVersion else {
                throw FFError(.format, "\(url.path) is not a results record of schema v\(schemaVersion) (it was written "
                    + "by an older repro, or by something else). Evaluate the run's best.h5 again with "
                    + "`repro eval --checkpoint DIR/best.h5 --out \(url.lastPathComponent)`.", file: url)
            }
            if let stored = head["config"] {
                // A config written before a field existed lacks its key: read it as config.json
                // is read (missing fields take their defaults), then decode the record.
                let text = String(decoding: try JSONSerialization.data(withJSONObject: stored), as: UTF8.self)
                let config = try RecipeConfig.fromJSON(text, source: url.path)
                head["config"] = try JSONSerialization.jsonObject(with: RecipeConfig.encoder.encode(config))
                data = try JSONSerialization.data(withJSONObject: head)
            }
        }
        do {
            return try RecipeConfig.decoder.decode(ResultsRecord.self, from: data)
        } catch {
            throw FFError(.corrupt, "\(url.path) is not a readable results record (\(error)).", file: url)
        }
    }
}

/// When a result may be set beside the paper's number: the named recipe unchanged (only
/// the seed may differ), the official conversion of the recipe's dataset, every epoch of
/// the schedule, and the whole test split.
public enum PaperComparison {
    public static func check(config: RecipeConfig, dataset: DatasetInfo?, epochsTrained: Int, split: String?,
                             images: Int?) -> ResultsRecord.Paper? {
        guard let top1 = config.paperTop1 else { return nil }
        var why: [String] = []
        if let recipe = try? Recipes.named(config.name) {
            if config.dataset != recipe.dataset {
                why.append("dataset '\(config.dataset)' is not the paper's \(recipe.dataset)")
            } else if let d = dataset, !d.official {
                why.append("'\(d.name)' in \(d.directory) is an image folder carrying the name, not the official conversion")
            } else if dataset == nil {
                why.append("the data is not a converted dataset")
            }
            if epochsTrained != recipe.epochs {
                why.append("trained \(epochsTrained) of the paper's \(recipe.epochs) epochs")
            }
            if let n = config.subset { why.append("trained on a subset of \(n) images") }
            let other = RunCheckpoint.differences(recipe, config)
                .filter { !["seed", "epochs", "dataset", "subset", "eval_subset", "input_size"].contains($0) }
            if config.inputSize != recipe.inputSize, config.dataset == recipe.dataset { why.append("input_size differs") }
            if !other.isEmpty { why.append("config differs from the recipe in \(other.joined(separator: ", "))") }
        } else {
            why.append("'\(config.name)' is not a named recipe")
        }
        if let split, split != "test" {
            why.append("evaluated on \(split), not test")
        } else if split == nil {
            why.append("nothing was tested (the dataset has no test split)")
        } else if let n = images, let full = dataset?.splitCounts["test"], n != full {
            why.append("tested on \(n) of \(full) test images")
        } else if images == 0 {
            why.append("the test split is empty")
        }
        return ResultsRecord.Paper(top1Pct: top1, top5Pct: config.paperTop5, source: config.paperSource,
                                   comparable: why.isEmpty, whyNot: why.isEmpty ? nil : why.joined(separator: "; "))
    }

    /// The one line printed under a test table.
    public static func line(_ r: ResultsRecord) -> String? {
        guard let p = r.paper, let reported = p.top1Pct else { return nil }
        let source = p.source.map { " (\($0))" } ?? ""
        let reported5 = p.top5Pct.map { String(format: " / top-5 %.2f%%", $0) } ?? ""
        guard p.comparable else {
            return String(format: "not comparable with the paper's %.2f%%%@%@: %@", reported, reported5, source, p.whyNot ?? "")
        }
        let ours5 = p.top5Pct != nil ? (r.top5Pct.map { String(format: " / top-5 %.2f%%", $0) } ?? "") : ""
        return String(format: "comparable with the paper: %@ = %@%%%@ vs reported %.2f%%%@%@", r.predictor,
                      r.top1Pct.map { String(format: "%.2f", $0) } ?? "-", ours5, reported, reported5, source)
    }
}
