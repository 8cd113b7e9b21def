import Foundation

/// One finished run (or `repro eval --out` record) as the table and plot commands read it.
public struct RunSummary {
    /// The run folder, or the record file for eval records.
    public var path: URL
    public var record: ResultsRecord
    /// Epoch records (metrics.jsonl); empty for eval records.
    public var history: [EpochRecord]
    /// Readout labels in Network order (from the record; the network's labels).
    public var readoutLabels: [String] { record.readouts.map(\.label) }
}

/// Runs that differ only by their seed: a sweep folder, or runs of one config.
public struct RunGroup {
    public var name: String
    public var runs: [RunSummary]
    public var seeds: [UInt64] { runs.map(\.record.seed) }
}

extension RunSummary {
    /// The checkpoint file the record's numbers come from: a run folder's best.h5, or the
    /// file an eval record names (as given, else next to the record).
    var checkpointFile: URL? {
        guard let name = record.checkpoint else { return nil }
        if record.kind == "run" { return path.appendingPathComponent(name) }
        let given = URL(fileURLWithPath: name)
        if FileManager.default.fileExists(atPath: given.path) { return given }
        let beside = path.deletingLastPathComponent().appendingPathComponent(name)
        return FileManager.default.fileExists(atPath: beside.path) ? beside : nil
    }

    /// Same config (seed included) and same weights: the same model measured twice. Weights
    /// are known by their digest; without a readable checkpoint, by the epoch it holds
    /// (a run is deterministic for its config).
    var modelIdentity: String {
        let weights = checkpointFile.flatMap(Checkpoint.weightsDigest(of:))
            ?? "epoch \(record.checkpointEpoch.map(String.init) ?? "?")/\(record.epochsTrained.map(String.init) ?? "?")"
        return "\(record.configHash) \(record.dataset?.fingerprint ?? "") \(weights)"
    }
}

/// Finds runs on disk and groups them.
public enum RunCollection {
    /// The results.json a path stands for: a run folder, or a record file.
    static func recordURL(_ path: URL) -> URL? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDir) else { return nil }
        if !isDir.boolValue { return path }
        let r = path.appendingPathComponent("results.json")
        return FileManager.default.fileExists(atPath: r.path) ? r : nil
    }

    public static func load(run path: URL) throws -> RunSummary {
        guard let url = recordURL(path) else {
            throw FFError(.missing, "\(path.path) holds no results.json: the run has not finished (or is not a run "
                + "folder of `repro run`).", file: path)
        }
        let record = try ResultsRecord.read(url)
        let metrics = url.deletingLastPathComponent().appendingPathComponent("metrics.jsonl")
        let isFolder = url.lastPathComponent == "results.json"
        let history = isFolder && FileManager.default.fileExists(atPath: metrics.path) ? try EpochRecord.readLines(metrics) : []
        return RunSummary(path: isFolder ? url.deletingLastPathComponent() : url, record: record, history: history)
    }

    /// Run folders directly inside `dir` (a sweep folder), sorted by name.
    static func runsInside(_ dir: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().map { dir.appendingPathComponent($0) }
            .filter { FileManager.default.fileExists(atPath: $0.appendingPathComponent("results.json").path) }
    }

    /// A folder that is not a run but holds finished runs is one group (a sweep); the
    /// other paths are single runs, grouped by config apart from the seed and by dataset.
    public static func groups(_ paths: [URL]) throws -> [RunGroup] {
        try groups(paths, notes: { _ in })
    }

    /// As above; a record of a model already counted (an eval record of a run's best.h5, a
    /// run given twice) is left out with a note, so it is not taken for another seed.
    public static func groups(_ paths: [URL], notes: (String) -> Void) throws -> [RunGroup] {
        var seen: [String: URL] = [:]
        func fresh(_ r: RunSummary) -> Bool {
            let id = r.modelIdentity
            if let first = seen[id] {
                notes("note: \(r.path.path) measures the same model as \(first.path) (same config, seed and weights); "
                    + "counted once")
                return false
            }
            seen[id] = r.path
            return true
        }
        var groups: [RunGroup] = []
        var loose: [(key: String, run: RunSummary)] = []
        for p in paths {
            if recordURL(p) == nil {
                let inside = runsInside(p)
                guard !inside.isEmpty else {
                    throw FFError(.missing, "\(p.path) is neither a finished run (no results.json) nor a folder of "
                        + "finished runs (a sweep).", file: p)
                }
                let runs = try inside.map { try load(run: $0) }.filter(fresh)
                guard !runs.isEmpty else { continue }
                groups.append(RunGroup(name: "\(runs[0].record.recipe) (\(p.lastPathComponent))", runs: runs))
            } else {
                let r = try load(run: p)
                guard fresh(r) else { continue }
                var c = r.record.config
                c.seed = 0
                loose.append(("\(RunCheckpoint.configHash(c)) \(r.record.dataset?.fingerprint ?? "")", r))
            }
        }
        var order: [String] = []
        var byKey: [String: [RunSummary]] = [:]
        for (k, r) in loose {
            if byKey[k] == nil { order.append(k) }
            byKey[k, default: []].append(r)
        }
        let recipes = order.map { byKey[$0]![0].record.recipe }
        for k in order {
            let runs = byKey[k]!
            var name = runs[0].record.recipe
            if recipes.filter({ $0 == name }).count > 1 { name += " [config \(k.prefix(8))]" }
            groups.append(RunGroup(name: name, runs: runs))
        }
        return groups
    }
}
