import Foundation
import XCTest

/// `repro` as a user runs it: absurd or malformed values end with a message naming the
/// option, the value and the allowed range, and the documented exit status
/// (data-prep/FORMAT.md, "Bad input"); never a trap or a raw Foundation error.
final class CLIValidationTests: XCTestCase {
    /// The `repro` built next to this test bundle (`swift build --build-tests` builds both).
    static let binary: URL = {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        return dir.appendingPathComponent("repro")
    }()

    func scratch() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ffcli-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// Runs repro; returns (exit status, stderr + stdout).
    func repro(_ args: [String], cwd: URL? = nil) throws -> (Int32, String) {
        guard FileManager.default.isExecutableFile(atPath: CLIValidationTests.binary.path) else {
            XCTFail("\(CLIValidationTests.binary.path) is missing: build with `swift build --build-tests` first")
            return (-1, "")
        }
        let p = Process()
        p.executableURL = CLIValidationTests.binary
        p.arguments = args
        if let cwd = cwd { p.currentDirectoryURL = cwd }
        var env = ProcessInfo.processInfo.environment
        env["FFREPRO_QUIET"] = "1"
        env["FFREPRO_DATA"] = scratch().path
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func expect(_ args: [String], status: Int32, _ fragments: String..., file: StaticString = #filePath, line: UInt = #line) throws {
        let (code, text) = try repro(args)
        XCTAssertEqual(code, status, "\(args): \(text)", file: file, line: line)
        for f in fragments { XCTAssertTrue(text.contains(f), "\(args): expected '\(f)' in: \(text)", file: file, line: line) }
        XCTAssertFalse(text.contains("Fatal error") || text.contains("Crash"), text, file: file, line: line)
    }

    func testRunValuesAreValidated() throws {
        try expect(["run", "asge-fmnist", "--lr", "nan"], status: 64, "config field lr = nan is outside (0.0, 10.0]")
        try expect(["run", "asge-fmnist", "--alpha", "inf"], status: 64, "config field alpha = inf is outside")
        try expect(["run", "asge-fmnist", "--set", "pool_size=0"], status: 64, "config field pool_size = 0 is outside 1...64")
        try expect(["run", "asge-fmnist", "--set", "beta1=1.5"], status: 64, "config field beta1 = 1.5 is outside [0.0, 1.0)")
        try expect(["run", "asge-fmnist", "--set", "weight_decay=-100"], status: 64, "weight_decay = -100.0 is outside [0.0, 10.0]")
        try expect(["run", "asge-fmnist", "--set", "adam_eps=0"], status: 64, "adam_eps = 0.0 is outside (0.0, 1.0]")
        try expect(["run", "asge-fmnist", "--batch-size", "0"], status: 64, "batch_size = 0 is outside 1...65536")
        // A negative number needs the --opt=value form (else it reads as an option).
        try expect(["run", "asge-fmnist", "--epochs=-3"], status: 64, "epochs = -3 is outside")
        try expect(["run", "asge-fmnist", "--threads", "1000"], status: 64, "--threads 1000 is outside 1...256")
        try expect(["run", "asge-fmnist", "--threads=-2"], status: 64, "--threads -2 is outside 1...256")
        try expect(["run", "asge-fmnist", "--out", ""], status: 64, "--out is empty")
        try expect(["run", "asge-fmnist", "--labels", "bogus"], status: 64, "--labels 'bogus' is not one of")
        try expect(["run", "asge-fmnist", "--resume", "/nonexistent/last.h5"], status: 66, "--resume /nonexistent/last.h5: no such file")
        try expect(["show", "no-such-recipe"], status: 64)
    }

    func testDataAndCheckpointPathsAreExplained() throws {
        let dir = scratch()
        let file = dir.appendingPathComponent("notes.txt")
        try Data("x".utf8).write(to: file)
        try expect(["run", "asge-fmnist", "--data", file.path], status: 64, "is a file, not a dataset directory")
        try expect(["run", "asge-fmnist", "--data", dir.appendingPathComponent("none").path], status: 66, "does not exist",
                   "repro prep fashion-mnist")
        try expect(["eval", "--checkpoint", file.path, "--split", "bogus"], status: 64, "--split 'bogus' is not one of: test, val, train")
        try expect(["eval", "--checkpoint", dir.path], status: 64, "is a directory, not a file. Pass a checkpoint file")
        try expect(["eval", "--checkpoint", file.path], status: 65, "not an HDF5 file")
        // --out under a file: a sentence, not a Foundation error dump.
        try expect(["run", "asge-fmnist", "--subset", "10", "--data", dir.path], status: 66, "has no index.json")
    }

    /// A 4x3 RGB PNG.
    static let png = Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAAFElEQVR4nGPkOiHHAANMDEgAhQMAIzgA9vgl+asAAAAASUVORK5CYII=")!

    func testOutputAndDatasetMixUpsAreExplained() throws {
        let src = scratch()
        try FileManager.default.createDirectory(at: src.appendingPathComponent("a"), withIntermediateDirectories: true)
        try CLIValidationTests.png.write(to: src.appendingPathComponent("a/1.png"))
        let dir = scratch()
        let file = dir.appendingPathComponent("f")
        try Data("x".utf8).write(to: file)
        let prep = ["prep", "imagefolder", "--src", src.path, "--size", "2", "--val", "0", "--name", "ds"]
        try expect(prep + ["--out", file.appendingPathComponent("sub").path], status: 74, "Cannot create the directory",
                   "Check that its parent exists and is writable")
        try expect(prep + ["--out", file.path], status: 64, "is a file, not a directory")
        let out = dir.appendingPathComponent("ds").path
        try expect(prep + ["--out", out], status: 0, "Wrote")
        try expect(prep + ["--out", out], status: 0, "nothing to do")
        // A batch larger than the (one-image) training set is refused before any work.
        try expect(["run", "asge-fmnist", "--data", out], status: 64, "batch_size 128 is larger than the training set (1 images)")
    }

    func testBenchAndPrepValuesAreValidated() throws {
        try expect(["bench", "--steps", "0"], status: 64, "--steps 0 is outside 1...1000")
        let src = scratch()
        let out = scratch().appendingPathComponent("out").path
        try expect(["prep", "imagefolder", "--src", src.path, "--size", "100000", "--out", out], status: 64,
                   "--size 100000 is outside 1...4096")
        try expect(["prep", "imagefolder", "--src", src.path, "--size", "8", "--shard-mb", "1e13", "--out", out], status: 64,
                   "--shard-mb 10000000000000.0 is outside (0, 4096] MiB")
        try expect(["prep", "imagefolder", "--src", src.path, "--size", "8", "--threads", "1000", "--out", out], status: 64,
                   "--threads 1000 is outside 0...256")
        try expect(["prep", "imagefolder", "--src", src.path, "--size", "8", "--out", ""], status: 64, "--out is empty")
        try expect(["prep", "imagefolder", "--src", src.path, "--size", "8", "--max-bad", "x", "--out", out], status: 64,
                   "--max-bad 'x' is not a percentage")
        try expect(["prep", "check", "--dir", src.path, "--batch-size", "0"], status: 64, "--batch-size 0 is outside 1...65536")
        try expect(["prep", "imagefolder", "--src", src.path, "--size", "8", "--out", out], status: 65, "No class folders")
    }
}
