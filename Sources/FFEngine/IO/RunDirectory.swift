import Foundation

/// The output directory of one training run, kept from being mixed up with another:
/// an exclusive lock for as long as the run lives, leftovers of dead processes removed, a
/// directory holding another run refused unless `overwrite`, and the final test tied to the
/// exact checkpoint of the best-on-validation epoch.
public final class RunDirectory {
    /// Files a run writes (a directory holding any of them holds a run).
    public static let runFiles = ["config.json", "metrics.jsonl", "metrics.csv", "results.json", "last.h5", "best.h5"]

    public let url: URL
    private let lock: DirectoryLock

    public var last: URL { url.appendingPathComponent("last.h5") }
    public var best: URL { url.appendingPathComponent("best.h5") }

    /// Locks `url` for a run of `config`. A directory that already holds a run is accepted
    /// only when the run continues from one of its own checkpoints (`resume` inside it);
    /// otherwise it is refused, or with `overwrite` its run files are removed first.
    public init(_ url: URL, config: RecipeConfig, resume: URL?, overwrite: Bool) throws {
        self.url = url
        lock = try DirectoryLock(url, purpose: "repro run \(config.name)")
        AtomicFile.removeStaleTemporaries(in: url)
        let fm = FileManager.default
        if fm.fileExists(atPath: url.appendingPathComponent(ShardFormat.indexFileName).path) {
            lock.release()
            throw FFError(.invalidArgument, "\(url.path) holds a converted dataset (index.json); a run there would mix its "
                + "files with the shards. Choose another --out.", file: url)
        }
        let present = RunDirectory.runFiles.filter { fm.fileExists(atPath: url.appendingPathComponent($0).path) }
        guard !present.isEmpty else { return }
        let continuing = resume.map { $0.deletingLastPathComponent().standardizedFileURL.path == url.standardizedFileURL.path } ?? false
        if continuing && overwrite {
            lock.release()
            throw FFError(.invalidArgument, "--overwrite would delete the checkpoint that --resume reads from \(url.path); "
                + "leave one of them out.", file: url)
        }
        if continuing { return }
        if overwrite {
            for f in present { try? fm.removeItem(at: url.appendingPathComponent(f)) }
            return
        }
        lock.release()
        var what = present.joined(separator: ", ")
        if let attrs = try? Checkpoint.readAttributes(from: url.appendingPathComponent("last.h5")),
           let recipe = attrs["recipe"], let epoch = attrs["epoch"] {
            what += "; last.h5 is \(recipe) after epoch \(epoch)"
        }
        throw FFError(.invalidArgument, "\(url.path) already holds a run (\(what)). Continue it with --resume "
            + "\(url.appendingPathComponent("last.h5").path), choose another --out, or add --overwrite to replace it.", file: url)
    }

    deinit { lock.release() }

    /// Epoch recorded in a checkpoint (its `epoch` attribute), nil if unreadable.
    static func epoch(of checkpoint: URL) -> Int? {
        guard FileManager.default.fileExists(atPath: checkpoint.path),
              let attrs = try? Checkpoint.readAttributes(from: checkpoint) else { return nil }
        return attrs["epoch"].flatMap { Int($0) }
    }

    /// After resuming from `resumed` (a checkpoint after epoch `resumedEpoch`): makes best.h5
    /// hold the history's best epoch `bestEpoch` when that is possible: it already does, the
    /// resumed state is that epoch (`saveBest` writes it), or the resumed checkpoint's own
    /// directory has it (copied). Returns a warning when none applies.
    public func reconcileBest(bestEpoch: Int?, resumed: URL, resumedEpoch: Int, saveBest: () throws -> Void) throws -> String? {
        guard let b = bestEpoch else { return nil }
        if RunDirectory.epoch(of: best) == b { return nil }
        if resumedEpoch == b {
            try saveBest()
            return nil
        }
        let sibling = resumed.deletingLastPathComponent().appendingPathComponent("best.h5")
        if sibling.standardizedFileURL.path != best.standardizedFileURL.path, RunDirectory.epoch(of: sibling) == b {
            // Verified like any checkpoint before it is trusted as this run's best.
            _ = try Checkpoint.read(from: sibling)
            try AtomicFile.write(Data(contentsOf: sibling), to: best)
            return nil
        }
        return "warning: the best validation epoch so far is \(b) but no checkpoint of it was found (\(best.path) is "
            + "missing or holds another epoch); unless a later epoch is better, the final test will stop with an error."
    }

    /// The checkpoint the final test must use: best.h5, holding exactly `bestEpoch`. Anything
    /// else (missing, another epoch: an interrupted save, a full disk, a resume elsewhere)
    /// is an error that names what is there, never a silent test of other weights.
    public func checkpointForTest(bestEpoch: Int) throws -> URL {
        let found = RunDirectory.epoch(of: best)
        if found == bestEpoch { return best }
        let state = found.map { "holds epoch \($0)" } ?? (FileManager.default.fileExists(atPath: best.path)
            ? "cannot be read" : "does not exist")
        let lastEpoch = RunDirectory.epoch(of: last)
        throw FFError(.missing, "Cannot test the selected model: the best validation epoch is \(bestEpoch), but \(best.path) "
            + "\(state) (an interrupted save, a full disk, or a resume into another directory). The test was not run; "
            + "evaluate a checkpoint explicitly, e.g. `repro eval --checkpoint \(last.path)`"
            + (lastEpoch.map { " (epoch \($0))" } ?? "") + ".", file: best)
    }

    /// A training set smaller than one batch would put every image into one oversized step
    /// (memory) and never fill a batch; refuse it with the numbers.
    public static func checkBatch(_ config: RecipeConfig, trainCount: Int) throws {
        if config.batchSize > trainCount {
            throw FFError(.invalidArgument, "batch_size \(config.batchSize) is larger than the training set (\(trainCount) "
                + "images\(config.subset != nil ? " with --subset" : "")); choose --batch-size at most \(trainCount).")
        }
    }
}
