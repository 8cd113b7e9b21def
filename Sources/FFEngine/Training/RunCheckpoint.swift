import FFIO
import Foundation

/// Progress of a run that a checkpoint records.
public struct RunState {
    /// Completed epochs.
    public var epoch: Int
    public var step: Int
    public var history: [EpochRecord]

    public init(epoch: Int, step: Int, history: [EpochRecord]) {
        self.epoch = epoch
        self.step = step
        self.history = history
    }
}

/// What a checkpoint says about its run without loading any tensor: enough to rebuild
/// the model (`repro eval`, `--resume`) and to preprocess new images (`repro predict`).
public struct CheckpointInfo {
    public var config: RecipeConfig
    /// [channels, height, width] the network reads.
    public var inputShape: [Int]
    public var classes: Int
    public var epoch: Int
    public var step: Int
    public var history: [EpochRecord]
    /// SHA-256 of the config JSON (= `sha256sum config.json` of the run folder).
    public var configHash: String
    /// The dataset it was trained on; nil for checkpoints written before schema v2 or by
    /// runs on in-memory data. Class names and normalisation statistics are in here.
    public var dataset: DatasetInfo?
    /// The build that wrote it (nil for checkpoints before builds were recorded).
    public var build: BuildInfo?

    /// Class names in label order ("class <i>" when the checkpoint does not store them).
    public var classNames: [String] {
        if let names = dataset?.classNames, names.count == classes { return names }
        return (0..<classes).map { "class \($0)" }
    }

    /// The 1-based readout Best Pred uses: the best-on-validation one of the last epoch.
    public var bestReadout: Int? { history.last(where: { $0.bestLayer != nil })?.bestLayer }
}

/// Maps a trainer's model and optimizer state to a `Checkpoint` and back.
///
/// Layout: "params/<name>" (trainable), "buffers/<name>" (running statistics, fixed
/// readouts), "optim/<name>.<slot>" (optimizer moments), "state/optimizer_steps".
/// Attributes (docs/results.md): strings `recipe`, `config` (resolved JSON), `config_hash`,
/// `history` (JSON list of epoch records), `dataset`, `dataset_fingerprint`, `data_dir`,
/// `class_names` (JSON list), `label_key`, `split_counts` (JSON object); integers `epoch`,
/// `step`, `classes`, `dataset_official` (0/1) and lists `input_shape` [C, H, W],
/// `stored_size` [H, W, C]; float64 lists `channel_mean`, `channel_std`. The data order
/// needs no RNG state: every epoch's order and augmentation derive from (seed, epoch),
/// which makes resume bit-identical.
public enum RunCheckpoint {
    /// Hex SHA-256 of a config's JSON text, as written to config.json.
    public static func configHash(_ c: RecipeConfig) -> String {
        let bytes = Array(c.json().utf8)
        var ctx = ffio_sha256_ctx()
        ffio_sha256_init(&ctx)
        ffio_sha256_update(&ctx, bytes, bytes.count)
        var digest = [UInt8](repeating: 0, count: 32)
        ffio_sha256_final(&ctx, &digest)
        return digest.map { String(format: "%02x", $0) }.joined()
    }

    static func jsonText<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try EpochRecord.encoder.encode(value), as: UTF8.self)
    }

    /// `weightsOnly` leaves out the optimizer state (two thirds of an AdamW checkpoint):
    /// what best.h5 needs for eval, predict and export. Resuming needs last.h5.
    public static func save(_ trainer: Trainer, state: RunState, dataset: DatasetInfo? = nil, to url: URL,
                            weightsOnly: Bool = false, build: BuildInfo? = nil) throws {
        let net = trainer.net
        var tensors: [(String, Tensor)] = net.parameters.map { ("params/" + $0.name, $0.value) }
        tensors += net.buffers.map { ("buffers/" + $0.name, $0.value) }
        if !weightsOnly { tensors += trainer.optimizerState.map { ("optim/" + $0.name, $0.value) } }
        var attrs: [String: String] = [
            "recipe": net.config.name,
            "config": net.config.json(),
            "config_hash": configHash(net.config),
            "history": try jsonText(state.history),
            "label_key": net.config.labels,
        ]
        if let build { attrs["build"] = String(decoding: try RecipeConfig.encoder.encode(build), as: UTF8.self) }
        var numbers: [String: NumericAttribute] = [
            "epoch": .int(Int64(state.epoch)),
            "step": .int(Int64(state.step)),
            "classes": .int(Int64(net.classes)),
            "input_shape": .ints(net.inputShape.map { Int64($0) }),
        ]
        if let d = dataset {
            attrs["dataset"] = d.name
            attrs["dataset_fingerprint"] = d.fingerprint
            attrs["data_dir"] = d.directory
            attrs["class_names"] = try jsonText(d.classNames)
            attrs["split_counts"] = try jsonText(d.splitCounts)
            numbers["dataset_official"] = .int(d.official ? 1 : 0)
            numbers["stored_size"] = .ints(d.imageSize.map { Int64($0) })
            numbers["channel_mean"] = .doubles(d.channelMean)
            numbers["channel_std"] = .doubles(d.channelStd)
        }
        let steps = trainer.optimizerSteps.map { UInt64($0) }
        var ckpt = Checkpoint(tensors: tensors, attributes: attrs,
                              uint64Arrays: weightsOnly ? [] : [("state/optimizer_steps", steps)])
        ckpt.numbers = numbers
        try ckpt.write(to: url)
    }

    /// The run attributes of a checkpoint (cheap: no tensor data is read).
    public static func describe(_ url: URL) throws -> CheckpointInfo {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw FFError(.missing, "Checkpoint \(url.path) does not exist; `repro run NAME` writes best.h5 and "
                + "last.h5 into its run folder (runs/NAME/<date>-<time>/).", file: url)
        }
        try RegularFile.check(url, what: "Checkpoint", hint: "Give a run folder's best.h5 or last.h5.")
        return try info(Checkpoint.readAttributes(from: url), Checkpoint.readNumbers(from: url), url)
    }

    static func info(_ attrs: [String: String], _ numbers: [String: NumericAttribute], _ url: URL) throws -> CheckpointInfo {
        // Checkpoints before schema v2 stored every number as a string.
        func int(_ key: String) -> Int? { numbers[key]?.integer ?? attrs[key].flatMap { Int($0) } }
        func ints(_ key: String) -> [Int]? {
            if let n = numbers[key]?.integers { return n }
            guard let text = attrs[key] else { return nil }
            let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
            return parts.contains(nil) ? [] : parts.compactMap { $0 }
        }
        guard let cfg = attrs["config"], let shape = ints("input_shape"), let classes = int("classes") else {
            throw FFError(.format, "Checkpoint \(url.path) lacks the run attributes (config, input_shape, classes); "
                + "it was not written by `repro run`.", file: url)
        }
        guard shape.count == 3 else {
            throw FFError(.corrupt, "Checkpoint \(url.path): input_shape '\(attrs["input_shape"] ?? "\(shape)")' is not "
                + "C,H,W; the file is damaged or was edited.", file: url)
        }
        let config = try RecipeConfig.fromJSON(cfg, source: url.path)
        // The values build a network: check them like command-line input.
        let (c, h, w) = (shape[0], shape[1], shape[2])
        guard (1...4).contains(c), (1...4096).contains(h), (1...4096).contains(w) else {
            throw FFError(.corrupt, "Checkpoint \(url.path): input_shape \(shape) is not C,H,W with 1...4 channels and "
                + "sides 1...4096; the file is damaged or was edited.", file: url)
        }
        guard (1...1_000_000).contains(classes) else {
            throw FFError(.corrupt, "Checkpoint \(url.path): classes = \(classes) is outside 1...1000000; the file is "
                + "damaged or was edited.", file: url)
        }
        if let s = config.inputSize, s != h || s != w {
            throw FFError(.corrupt, "Checkpoint \(url.path): the stored config has input_size \(s) but input_shape is "
                + "\(shape); the file was edited.", file: url)
        }
        do {
            try config.validate()
        } catch let e as FFError {
            throw FFError(.corrupt, "Checkpoint \(url.path): its stored config is not valid (\(e.message))", file: url)
        }
        var history: [EpochRecord] = []
        if let h = attrs["history"] {
            do {
                history = try EpochRecord.decoder.decode([EpochRecord].self, from: Data(h.utf8))
            } catch {
                throw FFError(.corrupt, "Checkpoint \(url.path): its 'history' attribute is not a list of epoch "
                    + "records (\(error)).", file: url)
            }
        }
        // Counters are stored by repro; a value that is not one is damage, never "0".
        func counter(_ key: String, max: Int) throws -> Int {
            guard numbers[key] != nil || attrs[key] != nil else { return 0 }
            guard let v = int(key), (0...max).contains(v) else {
                let shown = attrs[key].map { "'\($0.prefix(40))\($0.count > 40 ? "..." : "")'" } ?? numbers[key]!.integer.map(String.init) ?? "\(numbers[key]!)"
                let plan = key == "epoch" ? " (the stored config plans \(max) epochs)" : ""
                throw FFError(.corrupt, "Checkpoint \(url.path): \(key) = \(shown) is not a count in 0...\(max)\(plan); "
                    + "the file is damaged or was edited.", file: url)
            }
            return v
        }
        let epoch = try counter("epoch", max: config.epochs), step = try counter("step", max: 1 << 53)
        var dataset: DatasetInfo?
        if let name = attrs["dataset"], let size = ints("stored_size"), let mean = numbers["channel_mean"]?.reals,
           let std = numbers["channel_std"]?.reals {
            guard mean.count == std.count, !mean.isEmpty, mean.allSatisfy(\.isFinite),
                  std.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw FFError(.corrupt, "Checkpoint \(url.path): the dataset statistics (channel_mean \(mean), "
                    + "channel_std \(std)) are not finite per-channel values (std at least 0); the file is damaged or was "
                    + "edited.", file: url)
            }
            let names = attrs["class_names"].flatMap { try? EpochRecord.decoder.decode([String].self, from: Data($0.utf8)) }
            let counts = attrs["split_counts"].flatMap {
                try? EpochRecord.decoder.decode([String: Int].self, from: Data($0.utf8))
            }
            dataset = DatasetInfo(name: name, directory: attrs["data_dir"] ?? "", fingerprint: attrs["dataset_fingerprint"] ?? "",
                                  imageSize: size, channelMean: mean, channelStd: std,
                                  labelKey: attrs["label_key"] ?? config.labels, classNames: names ?? [],
                                  official: int("dataset_official") == 1, splitCounts: counts ?? [:])
        }
        return CheckpointInfo(config: config, inputShape: shape, classes: classes, epoch: epoch,
                              step: step, history: history,
                              configHash: attrs["config_hash"] ?? configHash(config), dataset: dataset,
                              build: attrs["build"].flatMap { try? RecipeConfig.decoder.decode(BuildInfo.self, from: Data($0.utf8)) })
    }

    /// Loads parameters, buffers and (when present) optimizer state into `trainer`.
    /// With `expecting`, the stored config must match it (the epoch count may differ).
    /// `resuming` requires the optimizer state (a weights-only best.h5 cannot continue a run
    /// exactly: its AdamW moments are gone).
    @discardableResult
    public static func load(_ url: URL, into trainer: Trainer, expecting: RecipeConfig? = nil,
                            resuming: Bool = false) throws -> RunState {
        let ckpt = try Checkpoint.read(from: url)
        let stored = try info(ckpt.attributes, ckpt.numbers, url)
        if let expecting {
            let diff = differences(stored.config, expecting).filter { $0 != "epochs" }
            if !diff.isEmpty {
                throw FFError(.mismatch, "Checkpoint \(url.path) was written with a different config "
                    + "(fields: \(diff.joined(separator: ", "))). Resume with the same recipe and options, "
                    + "or start a new run.", file: url)
            }
        }
        let net = trainer.net
        var expected = net.parameters.map { ("params/" + $0.name, $0.shape) }
        expected += net.buffers.map { ("buffers/" + $0.name, $0.value.shape) }
        try ckpt.validate(expected: expected)
        for p in net.parameters { p.value.copy(from: ckpt.tensor("params/" + p.name)!) }
        for b in net.buffers { b.value.copy(from: ckpt.tensor("buffers/" + b.name)!) }
        let optim = trainer.optimizerState
        let hasOptimizer = optim.allSatisfy({ ckpt.tensor("optim/" + $0.name) != nil })
            && ckpt.uint64Array("state/optimizer_steps") != nil
        if resuming, !hasOptimizer {
            let last = url.deletingLastPathComponent().appendingPathComponent("last.h5")
            throw FFError(.invalidArgument, "\(url.path) holds weights only (no optimizer state), so a run cannot continue "
                + "from it exactly. Resume from the run folder (its last.h5: --resume \(last.deletingLastPathComponent().path)), "
                + "or start a new run from these weights with --init-from \(url.path).", file: url)
        }
        if hasOptimizer, let steps = ckpt.uint64Array("state/optimizer_steps") {
            guard steps.count == trainer.optimizerSteps.count, steps.allSatisfy({ $0 <= UInt64(Int32.max) }) else {
                throw FFError(.corrupt, "Checkpoint \(url.path): state/optimizer_steps has \(steps.count) counters (model: "
                    + "\(trainer.optimizerSteps.count)) or an impossible value; the file is damaged.", file: url)
            }
            try ckpt.validate(expected: optim.map { ("optim/" + $0.name, $0.value.shape) })
            for b in optim { b.value.copy(from: ckpt.tensor("optim/" + b.name)!) }
            trainer.optimizerSteps = steps.map { Int($0) }
        }
        trainer.restore(step: stored.step)
        return RunState(epoch: stored.epoch, step: stored.step, history: stored.history)
    }

    /// Top-level config fields whose values differ.
    public static func differences(_ a: RecipeConfig, _ b: RecipeConfig) -> [String] {
        guard let da = try? JSONSerialization.jsonObject(with: RecipeConfig.encoder.encode(a)) as? [String: Any],
              let db = try? JSONSerialization.jsonObject(with: RecipeConfig.encoder.encode(b)) as? [String: Any] else {
            return ["(unreadable)"]
        }
        return Set(da.keys).union(db.keys).sorted().filter { key in
            let va = da[key].map { "\($0)" } ?? "nil", vb = db[key].map { "\($0)" } ?? "nil"
            return va != vb
        }
    }
}
