import FFEngine
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import XCTest

/// Runs and their outputs cannot be mixed up: one process per directory, no silent
/// replacement of another run, and the final test uses exactly the checkpoint it names.
final class RunDirectoryTests: XCTestCase {
    let ctx = ComputeContext(threads: 1)

    /// lr ~ 0: every epoch validates the same, so the best epoch is always epoch 1.
    func config(epochs: Int) -> RecipeConfig {
        var c = RecipeConfig(name: "tiny", paper: "test", summary: "tiny", training: "layer-local", dataset: "none",
                             arch: "custom", lr: 1e-12, minLr: 0, weightDecay: 0, epochs: epochs, batchSize: 8)
        c.channels = [4, 4]
        c.poolAfter = [1]
        return c
    }

    let data: RunData = {
        let train = InMemoryProvider.synthetic(count: 16, classes: 3, shape: [3, 6, 6], seed: 2)
        let val = InMemoryProvider.synthetic(count: 8, classes: 3, shape: [3, 6, 6], seed: 3)
        return RunData(train: train, val: val, test: val)
    }()

    func scratch() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ffrun-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    @discardableResult
    func run(_ dir: URL, epochs: Int, resume: URL? = nil, overwrite: Bool = false, log: ((String) -> Void)? = nil) throws -> RunResult {
        let r = try TrainingRun(ctx, config: config(epochs: epochs), data: data, directory: dir, resume: resume)
        r.log = log ?? { _ in }
        r.showProgress = false
        r.overwrite = overwrite
        return try r.run()
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    func testAnotherRunInARunDirectoryIsRefusedUnlessOverwrite() throws {
        let dir = scratch()
        try run(dir, epochs: 1)
        let metrics = try Data(contentsOf: dir.appendingPathComponent("metrics.jsonl"))
        let text = message { try run(dir, epochs: 2) }
        XCTAssertTrue(text.contains("cannot take this run: it holds another run") && text.contains("last.h5 is tiny after epoch 1"), text)
        XCTAssertTrue(text.contains("--resume \(dir.standardizedFileURL.path)") && text.contains("--overwrite"), text)
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("metrics.jsonl")), metrics, "nothing was touched")
        XCTAssertEqual(try run(dir, epochs: 2, overwrite: true).epochsTrained, 2)
        // Continuing the run in its own directory needs no flag; --overwrite with it is refused.
        XCTAssertEqual(try run(dir, epochs: 3, resume: dir.appendingPathComponent("last.h5")).history.count, 3)
        XCTAssertTrue(message { try run(dir, epochs: 4, resume: dir.appendingPathComponent("last.h5"), overwrite: true) }
            .contains("--overwrite would delete the checkpoint"))
    }

    func testLockedDirectoryIsBusyAndDatasetDirectoryRefused() throws {
        let dir = scratch()
        let lock = try DirectoryLock(dir, purpose: "repro run other")
        let text = message { try run(dir, epochs: 1) }
        XCTAssertTrue(text.contains("in use by another repro process (pid \(getpid()): repro run other"), text)
        lock.release()
        let data = scratch()
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: data.appendingPathComponent("index.json"))
        XCTAssertTrue(message { try run(data, epochs: 1) }.contains("holds a converted dataset"))
    }

    func testReleasedLockLeavesNoFileAndStillExcludes() throws {
        let dir = scratch()
        let lockFile = dir.appendingPathComponent(DirectoryLock.fileName)
        let first = try DirectoryLock(dir, purpose: "first")
        XCTAssertTrue(FileManager.default.fileExists(atPath: lockFile.path))
        XCTAssertTrue(message { _ = try DirectoryLock(dir, purpose: "second") }.contains("(pid \(getpid()): first"))
        first.release()
        XCTAssertFalse(FileManager.default.fileExists(atPath: lockFile.path), "a finished holder leaves no .repro.lock")
        // A file left by a killed process holds no lock: the next holder takes it.
        _ = FileManager.default.createFile(atPath: lockFile.path, contents: Data("pid 1: killed\n".utf8))
        let again = try DirectoryLock(dir, purpose: "again")
        XCTAssertTrue(message { _ = try DirectoryLock(dir, purpose: "third") }.contains("again"))
        again.release()
        try run(dir, epochs: 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: lockFile.path), "a finished run leaves no .repro.lock")
    }

    func testFailedAtomicWriteLeavesNoTemporaryFile() throws {
        let dir = scratch()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        func temporaries() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: dir.path).filter(AtomicFile.isTemporaryName)
        }
        // Onto a directory: refused before anything is written.
        let sub = dir.appendingPathComponent("sub.json")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        XCTAssertTrue(message { try AtomicFile.write(Data("x".utf8), to: sub) }.contains("is a directory"))
        // A full disk, simulated by a file-size limit (writes fail with EFBIG, as with ENOSPC).
        let target = dir.appendingPathComponent("record.json")
        try Data("old".utf8).write(to: target)
        var saved = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        let handler = signal(SIGXFSZ, SIG_IGN)
        var small = saved
        small.rlim_cur = 4096
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &small)
        let text = message { try AtomicFile.write(Data(count: 1 << 20), to: target) }
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        signal(SIGXFSZ, handler)
        XCTAssertTrue(text.contains("Nothing was written"), text)
        XCTAssertEqual(try Data(contentsOf: target), Data("old".utf8), "the old file is unchanged")
        XCTAssertEqual(try temporaries(), [])
        // Into a folder that does not exist.
        XCTAssertTrue(message { try AtomicFile.write(Data("x".utf8), to: dir.appendingPathComponent("no/such.json")) }
            .contains("Nothing was written"))
        XCTAssertEqual(try temporaries(), [])
    }

    func testResumeWithoutTheBestCheckpointNamesWhatItTests() throws {
        let dir = scratch()
        try run(dir, epochs: 2)  // best epoch 1, last epoch 2
        try FileManager.default.removeItem(at: dir.appendingPathComponent("best.h5"))
        var lines: [String] = []
        let r = try run(dir, epochs: 3, resume: dir.appendingPathComponent("last.h5"), log: { lines.append($0) })
        // The resumed epoch stands in as the best so far, and the test names it.
        XCTAssertTrue(lines.contains { $0.contains("no best.h5 for epoch 1") && $0.contains("resumed epoch 2") }, "\(lines)")
        XCTAssertEqual(r.record?.checkpointEpoch, 2)
        XCTAssertEqual(try RunCheckpoint.describe(dir.appendingPathComponent("best.h5")).epoch, 2)
    }

    func testFinalTestRefusesABestCheckpointOfAnotherEpoch() throws {
        let dir = scratch()
        try run(dir, epochs: 2)
        let claimed = try RunFolder(dir).claim(for: config(epochs: 2), continuing: true)
        defer { claimed.release() }
        XCTAssertEqual(try claimed.checkpointForTest(bestEpoch: 1).lastPathComponent, "best.h5")
        let text = message { _ = try claimed.checkpointForTest(bestEpoch: 2) }
        XCTAssertTrue(text.contains("Cannot test the selected model: the best validation epoch is 2") && text.contains("holds epoch 1"), text)
        XCTAssertTrue(text.contains("repro eval --checkpoint \(dir.standardizedFileURL.appendingPathComponent("last.h5").path)` (epoch 2)"), text)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("best.h5"))
        XCTAssertTrue(message { _ = try claimed.checkpointForTest(bestEpoch: 1) }.contains("does not exist"))
    }

    func testBestCheckpointIsCopiedWhenResumingIntoAnotherFolder() throws {
        let b = scratch(), c = scratch()
        try run(b, epochs: 2)
        var lines: [String] = []
        let copied = try run(c, epochs: 3, resume: b.appendingPathComponent("last.h5"), log: { lines.append($0) })
        XCTAssertEqual(copied.bestEpoch, 1)
        XCTAssertEqual(copied.record?.checkpointEpoch, 1)
        XCTAssertEqual(try RunCheckpoint.describe(c.appendingPathComponent("best.h5")).epoch, 1)
        XCTAssertEqual(try Data(contentsOf: c.appendingPathComponent("best.h5")),
                       try Data(contentsOf: b.appendingPathComponent("best.h5")))
        XCTAssertTrue(lines.contains { $0.contains("best validation epoch 1") }, "\(lines)")
    }

    func testBatchLargerThanTheTrainingSetIsRefused() throws {
        var c = config(epochs: 1)
        c.batchSize = 64
        XCTAssertThrowsError(try TrainingRun(ctx, config: c, data: data, directory: scratch())) { e in
            XCTAssertTrue("\(e)".contains("batch_size 64 is larger than the training set (16 images)"), "\(e)")
        }
    }
}
