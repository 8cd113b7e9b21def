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
        var groups: [RunGroup] = []
        var loose: [(key: String, run: RunSummary)] = []
        for p in paths {
            if recordURL(p) == nil {
                let inside = runsInside(p)
                guard !inside.isEmpty else {
                    throw FFError(.missing, "\(p.path) is neither a finished run (no results.json) nor a folder of "
                        + "finished runs (a sweep).", file: p)
                }
                let runs = try inside.map { try load(run: $0) }
                groups.append(RunGroup(name: "\(runs[0].record.recipe) (\(p.lastPathComponent))", runs: runs))
            } else {
                let r = try load(run: p)
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
