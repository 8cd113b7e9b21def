import FFEngine
import FFIO
import Foundation
import TestScratch
import XCTest

/// Runs the built `repro` binary (next to the test bundle in .build/<config>/) in a folder.
struct CLI {
    struct Result {
        var status: Int32
        var out: String
        var err: String
        var all: String { out + err }
    }

    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("repro")
    }

    let cwd: URL

    @discardableResult
    func run(_ args: [String], env: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: CLI.binary.path) else {
            XCTFail("\(CLI.binary.path) is missing: build it first (`swift build --build-tests` builds every product)",
                    file: file, line: line)
            throw FFError("no repro binary")
        }
        let (p, out, err) = try start(args, env: env)
        p.waitUntilExit()
        return Result(status: p.terminationStatus, out: try String(contentsOf: out, encoding: .utf8),
                      err: try String(contentsOf: err, encoding: .utf8))
    }

    /// Starts `repro args` in `cwd` (quiet, 1 thread, no FFREPRO_RUNS/DATA) without waiting;
    /// stdout and stderr go to the files returned.
    func start(_ args: [String], env: [String: String] = [:]) throws -> (Process, out: URL, err: URL) {
        let out = Scratch.directory("cli-out").appendingPathComponent("o.txt")
        let err = out.deletingLastPathComponent().appendingPathComponent("e.txt")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments = args
        p.currentDirectoryURL = cwd
        var environment = ProcessInfo.processInfo.environment
        environment["FFREPRO_QUIET"] = "1"
        environment["FFREPRO_THREADS"] = "1"
        environment.removeValue(forKey: "FFREPRO_RUNS")
        environment.removeValue(forKey: "FFREPRO_DATA")
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        try p.run()
        return (p, out, err)
    }

    /// Runs and fails the test unless the exit status is 0.
    @discardableResult
    func ok(_ args: [String], env: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> Result {
        let r = try run(args, env: env, file: file, line: line)
        XCTAssertEqual(r.status, 0, "repro \(args.joined(separator: " ")) failed:\n\(r.all)", file: file, line: line)
        return r
    }
}

/// A tiny image folder (ROOT/train/<class>/, ROOT/test/<class>/) of 16x16 PNGs: class k
/// has a bright channel k on a noisy background, so a few steps learn something.
enum ImageFolderFixture {
    static let classes = ["blue", "green", "red"]

    static func write(_ root: URL, train: Int = 16, test: Int = 4, size: Int = 16) throws {
        try write(root, splits: [("train/", train), ("test/", test)], size: size)
    }

    /// ROOT/<class>/ only: no train/test folders, so the conversion has no test split.
    static func writeFlat(_ root: URL, perClass: Int, size: Int = 16) throws {
        try write(root, splits: [("", perClass)], size: size)
    }

    static func write(_ root: URL, splits: [(prefix: String, count: Int)], size: Int) throws {
        var rng = SeededRandom(seed: 7, stream: "cli-fixture")
        for (split, n) in splits {
            for (k, name) in classes.enumerated() {
                let dir = root.appendingPathComponent("\(split)\(name)")
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                for i in 0..<n {
                    var px = [UInt8](repeating: 0, count: size * size * 3)
                    for p in 0..<(size * size) {
                        for c in 0..<3 {
                            let base = c == 2 - k ? 170 : 60
                            px[3 * p + c] = UInt8(base + rng.below(60))
                        }
                    }
                    let path = dir.appendingPathComponent(String(format: "%03d.png", i)).path
                    XCTAssertEqual(ffio_png_write(path, px, Int32(size), Int32(size), 2, 8, nil, 0), 0)
                }
            }
        }
    }
}

/// Options that make any VGG recipe tiny (two conv layers of 8 channels, one pooling).
let tinyModel = ["--set", "arch=custom", "--set", "channels=[8,8]", "--set", "pool_after=[1]", "--batch-size", "16"]

extension String {
    func count(of s: String) -> Int { components(separatedBy: s).count - 1 }
}

func jsonObject(_ url: URL) throws -> [String: Any] {
    let data = try Data(contentsOf: url)
    return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any], url.path)
}
