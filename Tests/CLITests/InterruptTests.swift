import FFEngine
import Foundation
import TestScratch
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C stops everything and says how to continue; a sweep passes on its child's exit
/// kind (issue 18 item 6).
final class InterruptTests: XCTestCase {
    var work: URL { TrustWorkspace.shared.work }

    /// Starts `repro args` in the background; the second value is its stderr file.
    func start(_ args: [String]) throws -> (Process, URL) {
        let (p, _, err) = try CLI(cwd: work).start(args)
        return (p, err)
    }

    /// Waits (at most a minute) until `file` exists.
    func waitFor(_ file: URL) {
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: file.path) && Date() < deadline { usleep(20_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: file.path), "\(file.path) never appeared")
    }

    let long = ["--epochs", "5000"] + tinyModel

    func testInterruptedRunSaysHowToContinue() throws {
        let dir = Scratch.directory("interrupted").appendingPathComponent("run")
        let (p, log) = try start(["run", "asge-cifar10", "--data", "data/toy", "--out", dir.path] + long)
        waitFor(dir.appendingPathComponent("last.h5"))
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let err = try String(contentsOf: log, encoding: .utf8)
        XCTAssertEqual(p.terminationReason, .exit, err)
        XCTAssertEqual(p.terminationStatus, 130, err)
        XCTAssertNotNil(err.range(of: #"interrupted in epoch \d+; the last finished epoch is in .*last\.h5\. "#
            + #"Continue with: repro run --resume "# + NSRegularExpression.escapedPattern(for: dir.path),
            options: .regularExpression), err)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        XCTAssertEqual(left.filter { AtomicFile.isTemporaryName($0) || $0 == DirectoryLock.fileName }, [], "\(left)")
    }

    func testInterruptedSweepStopsItsChildAndSaysHowToContinue() throws {
        let sweep = Scratch.directory("interrupted").appendingPathComponent("sweep")
        let (p, log) = try start(["sweep", "asge-cifar10", "--seeds", "1,2", "--data", "data/toy", "--out", sweep.path] + long)
        let seed1 = sweep.appendingPathComponent("seed-1")
        waitFor(seed1.appendingPathComponent("last.h5"))
        // Only the sweep gets the signal, as from a terminal (its child is in another group).
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let err = try String(contentsOf: log, encoding: .utf8)
        XCTAssertEqual(p.terminationStatus, 130, err)
        XCTAssertTrue(err.contains("Continue with: repro run --resume \(seed1.path)"), "the child reported:\n\(err)")
        XCTAssertTrue(err.contains("sweep interrupted during seed 1; the finished seeds are kept. Continue with: "
            + "repro sweep asge-cifar10 --seeds 1,2 --data data/toy --out \(sweep.path)"), err)
        // The child is gone with the sweep: its folder can be locked at once.
        XCTAssertNoThrow(try DirectoryLock(seed1, purpose: "test").release())
        XCTAssertFalse(FileManager.default.fileExists(atPath: sweep.appendingPathComponent("seed-2").path))
    }

    func testSweepPassesOnTheExitKindOfAFailedRun() throws {
        let sweep = Scratch.directory("busy-sweep").appendingPathComponent("sweep")
        let lock = try DirectoryLock(sweep.appendingPathComponent("seed-1"), purpose: "a test holding the folder")
        defer { lock.release() }
        let r = try CLI(cwd: work).run(["sweep", "asge-cifar10", "--seeds", "1", "--data", "data/toy", "--out", sweep.path,
                                        "--epochs", "1"] + tinyModel)
        XCTAssertEqual(r.status, 75, r.all)
        XCTAssertTrue(r.err.contains("the run of seed 1 failed: its folder is in use by another repro process (exit 75)"), r.err)
    }
}
