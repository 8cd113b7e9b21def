import Foundation

/// Where a training run's folder is and which folder a run may use. Every run gets its own
/// folder (by default `runs/<recipe>/<date>-<time>[-<tag>]`); a run never deletes or
/// replaces the files of another run. The naming, `--resume` paths and the check that a
/// folder is free (`claim`) live here; `claim` is the one call TrainingRun makes before it
/// writes, so an exclusive lock and `--overwrite` (the hardening work's RunDirectory)
/// replace it in one place.
///
/// Files: `config.json` (resolved recipe), `last.h5` and `best.h5` (checkpoints),
/// `metrics.jsonl`/`metrics.csv` (one record per epoch), `results.json` (schema v2, see
/// docs/results.md).
public struct RunFolder {
    public let url: URL

    public init(_ url: URL) { self.url = url.standardizedFileURL }

    public var last: URL { url.appendingPathComponent("last.h5") }
    public var best: URL { url.appendingPathComponent("best.h5") }
    public var config: URL { url.appendingPathComponent("config.json") }
    public var results: URL { url.appendingPathComponent("results.json") }
    public var metrics: URL { url.appendingPathComponent("metrics.jsonl") }

    /// Names a run writes; their presence means the folder holds a run.
    public static let runFiles = ["config.json", "last.h5", "best.h5", "metrics.jsonl", "metrics.csv", "results.json"]

    /// Where runs go by default: $FFREPRO_RUNS, else ./runs.
    public static var defaultRoot: URL {
        if let env = ProcessInfo.processInfo.environment["FFREPRO_RUNS"], !env.isEmpty {
            return URL(fileURLWithPath: env, isDirectory: true)
        }
        return URL(fileURLWithPath: "runs", isDirectory: true)
    }

    /// `root/<recipe>/<yyyyMMdd-HHmmss>[-<tag>]`, with `-2`, `-3`, ... appended if that
    /// folder already exists (two runs started in the same second).
    public static func fresh(recipe: String, tag: String?, root: URL = defaultRoot, date: Date = Date()) throws -> RunFolder {
        if let tag, tag.isEmpty || tag.contains("/") || tag.hasPrefix(".") {
            throw FFError(.invalidArgument, "--tag '\(tag)' cannot name a folder: use letters, digits, '-', '_' or '.'"
                + " (no '/', not starting with '.').")
        }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyyMMdd-HHmmss"
        let base = f.string(from: date) + (tag.map { "-\($0)" } ?? "")
        let parent = root.appendingPathComponent(recipe, isDirectory: true)
        var candidate = parent.appendingPathComponent(base, isDirectory: true)
        var n = 2
        while FileManager.default.fileExists(atPath: candidate.path) {
            candidate = parent.appendingPathComponent("\(base)-\(n)", isDirectory: true)
            n += 1
        }
        return RunFolder(candidate)
    }

    /// `--resume PATH`: a run folder (its last.h5) or a checkpoint file, and the folder it
    /// belongs to.
    public static func resumeSource(_ path: URL) throws -> (checkpoint: URL, directory: RunFolder) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDir) else {
            throw FFError(.missing, "--resume \(path.path): no such file or folder. Pass a run folder (it continues "
                + "from its last.h5) or a checkpoint file.", file: path)
        }
        if isDir.boolValue {
            let dir = RunFolder(path)
            guard FileManager.default.fileExists(atPath: dir.last.path) else {
                let stored = (try? dir.storedConfig())?.map { " (\(dir.config.path) holds its config: recipe \($0.name))" } ?? ""
                throw FFError(.missing, "--resume \(path.path): the folder has no last.h5, so no epoch of that run "
                    + "finished and there is nothing to continue\(stored). Start it again in the same folder with the "
                    + "same options plus --out \(path.path) --overwrite, or without --out for a new folder.", file: path)
            }
            return (dir.last, dir)
        }
        return (path.standardizedFileURL, RunFolder(path.deletingLastPathComponent()))
    }

    /// Removes the checkpoint `keep` does not name ("both", "best" or "last") from a finished
    /// run (one with results.json); returns the checkpoint files left.
    @discardableResult
    public func prune(keep: String) throws -> [String] {
        let files = ["best.h5": best, "last.h5": last]
        if keep != "both" {
            guard FileManager.default.fileExists(atPath: results.path) else {
                throw FFError(.invalidArgument, "\(url.path) has no results.json: the run has not finished, so its "
                    + "checkpoints are all kept.", file: url)
            }
            let drop = keep == "best" ? last : best
            if FileManager.default.fileExists(atPath: drop.path) { try FileManager.default.removeItem(at: drop) }
        }
        return files.keys.sorted().filter { FileManager.default.fileExists(atPath: files[$0]!.path) }
    }

    /// The run files present in the folder.
    public var presentRunFiles: [String] {
        RunFolder.runFiles.filter { FileManager.default.fileExists(atPath: url.appendingPathComponent($0).path) }
    }

    /// The config of the run the folder holds, if it has one.
    public func storedConfig() throws -> RecipeConfig? {
        guard let data = FileManager.default.contents(atPath: config.path) else { return nil }
        return try RecipeConfig.fromJSON(String(decoding: data, as: UTF8.self), source: config.path)
    }

    /// Makes the folder ready for a run of `config` and locks it for the run's lifetime
    /// (RunDirectory in IO/RunDirectory.swift: the lock, stale temporaries, `overwrite`). A new
    /// run needs a folder without run files; `continuing` (resume into the run's own folder)
    /// needs the folder to hold the same run (the same config apart from the epoch count).
    /// Anything else is refused unless `overwrite`, so no run's files are ever deleted or
    /// mixed with another's unasked.
    public func claim(for config: RecipeConfig, continuing: Bool, overwrite: Bool = false) throws -> RunDirectory {
        try RunDirectory(self, config: config, continuing: continuing, overwrite: overwrite)
    }
}
