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

/// Maps a trainer's model and optimizer state to a `Checkpoint` and back.
///
/// Layout: "params/<name>" (trainable), "buffers/<name>" (running statistics, fixed
/// readouts), "optim/<name>.<slot>" (optimizer moments), "state/optimizer_steps";
/// attributes: recipe, config (resolved JSON), epoch, step, history (JSON list of epoch
/// records), input_shape, classes. The data order needs no RNG state: every epoch's
/// order and augmentation derive from (seed, epoch), which makes resume bit-identical.
public enum RunCheckpoint {
    static let historyEncoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    public static func save(_ trainer: Trainer, state: RunState, to url: URL) throws {
        let net = trainer.net
        var tensors: [(String, Tensor)] = net.parameters.map { ("params/" + $0.name, $0.value) }
        tensors += net.buffers.map { ("buffers/" + $0.name, $0.value) }
        tensors += trainer.optimizerState.map { ("optim/" + $0.name, $0.value) }
        let history = try historyEncoder.encode(state.history)
        let attrs: [String: String] = [
            "recipe": net.config.name,
            "config": net.config.json(),
            "epoch": String(state.epoch),
            "step": String(state.step),
            "history": String(decoding: history, as: UTF8.self),
            "input_shape": net.inputShape.map(String.init).joined(separator: ","),
            "classes": String(net.classes),
        ]
        let steps = trainer.optimizerSteps.map { UInt64($0) }
        try Checkpoint(tensors: tensors, attributes: attrs, uint64Arrays: [("state/optimizer_steps", steps)]).write(to: url)
    }

    /// The config and model geometry stored in a checkpoint (for `repro eval`).
    public static func describe(_ url: URL) throws -> (config: RecipeConfig, inputShape: [Int], classes: Int) {
        let attrs = try Checkpoint.readAttributes(from: url)
        return try geometry(attrs, url)
    }

    static func geometry(_ attrs: [String: String], _ url: URL) throws -> (config: RecipeConfig, inputShape: [Int], classes: Int) {
        guard let cfg = attrs["config"], let shape = attrs["input_shape"], let classes = attrs["classes"].flatMap(Int.init) else {
            throw FFError(.format, "Checkpoint \(url.path) lacks the run attributes (config, input_shape, classes); "
                + "it was not written by `repro run`.", file: url)
        }
        let config = try RecipeConfig.fromJSON(cfg, source: url.path)
        return (config, shape.split(separator: ",").compactMap { Int($0) }, classes)
    }

    /// Loads parameters, buffers and (when present) optimizer state into `trainer`.
    /// With `expecting`, the stored config must match it (the epoch count may differ).
    @discardableResult
    public static func load(_ url: URL, into trainer: Trainer, expecting: RecipeConfig? = nil) throws -> RunState {
        let ckpt = try Checkpoint.read(from: url)
        let (stored, _, _) = try geometry(ckpt.attributes, url)
        if let expecting {
            let diff = differences(stored, expecting).filter { $0 != "epochs" }
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
        if optim.allSatisfy({ ckpt.tensor("optim/" + $0.name) != nil }),
           let steps = ckpt.uint64Array("state/optimizer_steps") {
            try ckpt.validate(expected: optim.map { ("optim/" + $0.name, $0.value.shape) })
            for b in optim { b.value.copy(from: ckpt.tensor("optim/" + b.name)!) }
            trainer.optimizerSteps = steps.map { Int($0) }
        }
        let step = Int(ckpt.attributes["step"] ?? "0") ?? 0
        trainer.restore(step: step)
        var history: [EpochRecord] = []
        if let h = ckpt.attributes["history"] {
            let d = JSONDecoder()
            d.keyDecodingStrategy = .convertFromSnakeCase
            history = (try? d.decode([EpochRecord].self, from: Data(h.utf8))) ?? []
        }
        return RunState(epoch: Int(ckpt.attributes["epoch"] ?? "0") ?? 0, step: step, history: history)
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
