import Foundation

/// A run folder claimed by one training run (`RunFolder.claim`): an exclusive lock for as
/// long as the run lives, leftovers of dead processes removed, and a folder that holds
/// another run refused unless `overwrite`, so no run's files are replaced or mixed with
/// another's without asking. The final test is tied to the exact checkpoint of the best
/// epoch (`checkpointForTest`).
public final class RunDirectory {
    public let folder: RunFolder
    private let lock: DirectoryLock

    public var url: URL { folder.url }
    public var last: URL { folder.last }
    public var best: URL { folder.best }

    /// Locks the folder for a run of `config`. A folder holding run files is accepted when
    /// `continuing` (a resume into the run's own folder) and it holds the same run (the same
    /// config apart from the epoch count); otherwise it is refused, or with `overwrite` its
    /// run files are removed first (never when continuing: that would delete what the run
    /// resumes from).
    init(_ folder: RunFolder, config: RecipeConfig, continuing: Bool, overwrite: Bool) throws {
        self.folder = folder
        let url = folder.url
        lock = try DirectoryLock(url, purpose: "repro run \(config.name)")
        do {
            try RunDirectory.admit(folder, config: config, continuing: continuing, overwrite: overwrite)
        } catch {
            lock.release()
            throw error
        }
    }

    private static func admit(_ folder: RunFolder, config: RecipeConfig, continuing: Bool, overwrite: Bool) throws {
        let url = folder.url
        let fm = FileManager.default
        AtomicFile.removeStaleTemporaries(in: url)
        if fm.fileExists(atPath: url.appendingPathComponent(ShardFormat.indexFileName).path) {
            throw FFError(.invalidArgument, "\(url.path) holds a converted dataset (index.json); a run there would mix its "
                + "files with the shards. Choose another --out.", file: url)
        }
        let present = folder.presentRunFiles
        guard !present.isEmpty else { return }
        if continuing {
            if overwrite {
                throw FFError(.invalidArgument, "--overwrite would delete the checkpoint that --resume reads from "
                    + "\(url.path); leave one of them out.", file: url)
            }
            if let stored = try? folder.storedConfig(), RunCheckpoint.differences(stored, config).allSatisfy({ $0 == "epochs" }) {
                return
            }
        } else if overwrite {
            for f in present { try? fm.removeItem(at: url.appendingPathComponent(f)) }
            return
        }
        var what = present.joined(separator: ", ")
        if let info = try? RunCheckpoint.describe(folder.last) { what += "; last.h5 is \(info.config.name) after epoch \(info.epoch)" }
        let how = continuing ? "its config.json belongs to a different run (\(what))" : "it holds another run (\(what))"
        // A run stopped before its first epoch ended has no last.h5: --resume cannot continue it.
        let resumable = fm.fileExists(atPath: folder.last.path)
        throw FFError(.invalidArgument, "Run folder \(url.path) cannot take this run: \(how). A run never replaces "
            + "another run's files unasked. Leave out --out (each run gets a new folder under \(RunFolder.defaultRoot.path)/), "
            + "choose an empty --out, "
            + (resumable ? "continue the run that is there with --resume \(url.path), or add --overwrite to replace it."
                : "or add --overwrite to replace it (no epoch of it finished: it has no last.h5, so there is nothing to "
                    + "resume)."), file: url)
    }

    deinit { lock.release() }

    /// Drops the lock (the run is over).
    public func release() { lock.release() }

    /// Epoch recorded in a checkpoint, nil if unreadable.
    static func epoch(of checkpoint: URL) -> Int? {
        guard FileManager.default.fileExists(atPath: checkpoint.path) else { return nil }
        return try? RunCheckpoint.describe(checkpoint).epoch
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
