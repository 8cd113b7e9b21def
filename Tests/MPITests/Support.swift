import DataPrep
import FFEngine
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `repro` binary alone and under `mpirun`, with a time limit on every
/// command (a hung job fails the test instead of hanging CI), on a tiny MNIST-format
/// dataset written once per test process.
enum MPIJob {
    struct Outcome {
        var status: Int32
        var output: String
        var timedOut: Bool
    }

    /// The repro binary next to the test bundle (swift build --build-tests builds both).
    static var repro: String {
        if let b = ProcessInfo.processInfo.environment["FFREPRO_BIN"] { return b }
        return URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("repro").path
    }

    static var mpirun: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Skips (with the reason) where MPI is absent; FFREPRO_REQUIRE_MPI=1 (CI) makes that a failure.
    static func require() throws {
        var missing: [String] = []
        if mpirun == nil { missing.append("mpirun is not on PATH (package openmpi-bin)") }
        if !FileManager.default.isExecutableFile(atPath: repro) {
            missing.append("the repro binary is not at \(repro) (`swift build --build-tests` builds it)")
        }
        guard !missing.isEmpty else { return }
        let why = missing.joined(separator: "; ")
        if ProcessInfo.processInfo.environment["FFREPRO_REQUIRE_MPI"] == "1" {
            XCTFail("FFREPRO_REQUIRE_MPI=1 but \(why). `make setup` installs Open MPI.")
            throw XCTSkip("MPI required but absent")
        }
        throw XCTSkip("MPI tests skipped: \(why). `make setup` installs Open MPI.")
    }

    static var mpirunFlags: [String] {
        (getuid() == 0 ? ["--allow-run-as-root"] : []) + ["--oversubscribe", "--bind-to", "none"]
    }

    /// `mpirun -np ranks repro args`.
    static func mpi(_ ranks: Int, _ args: [String], timeout: TimeInterval = 120,
                    whileRunning: ((Int32) -> Void)? = nil) -> Outcome {
        launch(mpirun!, mpirunFlags + ["-np", String(ranks), repro] + args, timeout: timeout, whileRunning: whileRunning)
    }

    /// `repro args` as a single process.
    static func single(_ args: [String], timeout: TimeInterval = 120) -> Outcome {
        launch(repro, args, timeout: timeout)
    }

    static func launch(_ exe: String, _ args: [String], timeout: TimeInterval,
                       whileRunning: ((Int32) -> Void)? = nil) -> Outcome {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("ffrepro-mpi-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["FFREPRO_THREADS"] = "1"
        // Containers often forbid cross-process memory access (CMA); the tests do not need it.
        env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
        p.environment = env
        let handle = try! FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        do { try p.run() } catch { return Outcome(status: -1, output: "cannot start \(exe): \(error)", timedOut: false) }
        if let whileRunning { whileRunning(p.processIdentifier) }
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while p.isRunning {
            if Date() > deadline {
                timedOut = true
                killTree(p.processIdentifier)
                break
            }
            usleep(20_000)
        }
        p.waitUntilExit()
        try? handle.close()
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return Outcome(status: p.terminationStatus, output: text, timedOut: timedOut)
    }

    /// Direct children of `pid` (from /proc).
    static func children(_ pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { c in
            guard let stat = try? String(contentsOfFile: "/proc/\(c)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid
        }
    }

    /// The rank-`rank` process below mpirun `pid` (its child, or a daemon's), from its environment.
    static func rankProcess(of pid: Int32, rank: Int) -> Int32? {
        func descendants(_ p: Int32) -> [Int32] { children(p).flatMap { [$0] + descendants($0) } }
        return descendants(pid).first { c in
            guard let env = FileManager.default.contents(atPath: "/proc/\(c)/environ") else { return false }
            return env.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == "OMPI_COMM_WORLD_RANK=\(rank)" }
        }
    }

    static func killTree(_ pid: Int32) {
        for c in children(pid) { killTree(c) }
        kill(pid, SIGKILL)
    }

    // MARK: data

    /// A 10-class 28x28 grayscale task (160 train images, 32 of them validation, 40 test).
    static let dataset: URL = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ffrepro-mpi-data-\(UUID().uuidString)")
        let src = root.appendingPathComponent("src"), out = root.appendingPathComponent("mnist")
        try! FileManager.default.createDirectory(at: src, withIntermediateDirectories: true)
        var rng = SeededRandom(seed: 5, stream: "mpi-test-data")
        func be(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
        for (prefix, n) in [("train", 160), ("t10k", 40)] {
            var images = [0, 0, 8, 3].map(UInt8.init) + be(n) + be(28) + be(28)
            var labels = [0, 0, 8, 1].map(UInt8.init) + be(n)
            for _ in 0..<n {
                let c = Int(rng.next() % 10)
                for k in 0..<(28 * 28) {
                    let signal = (k * 7 + c * 13) % 10 < 4 ? 40 + 20 * c : 0
                    images.append(UInt8(min(255, signal + Int(rng.next() % 60))))
                }
                labels.append(UInt8(c))
            }
            try! Data(images).write(to: src.appendingPathComponent("\(prefix)-images-idx3-ubyte"))
            try! Data(labels).write(to: src.appendingPathComponent("\(prefix)-labels-idx1-ubyte"))
        }
        _ = try! DataPrep.mnist(source: src, output: out, options: PrepOptions(val: 32, progress: false))
        return out
    }()

    static func tempDir(_ name: String) -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ffrepro-\(name)-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    // MARK: checkpoints

    /// Every float tensor and integer array of a checkpoint, by name.
    static func contents(_ url: URL) throws -> (floats: [String: [Float]], ints: [String: [UInt64]], attrs: [String: String]) {
        let c = try Checkpoint.read(from: url)
        var f: [String: [Float]] = [:]
        for (n, t) in c.tensors { f[n] = t.array }
        var i: [String: [UInt64]] = [:]
        for (n, v) in c.uint64Arrays { i[n] = v }
        return (f, i, c.attributes)
    }

    /// Every tensor bit for bit, the optimizer steps, epoch and step.
    static func assertBitIdentical(_ a: URL, _ b: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try contents(a), y = try contents(b)
        XCTAssertEqual(Set(x.floats.keys), Set(y.floats.keys), "tensor names", file: file, line: line)
        XCTAssertGreaterThan(x.floats.count, 10, file: file, line: line)
        for (n, v) in x.floats {
            guard let w = y.floats[n] else { continue }
            XCTAssert(v.map(\.bitPattern) == w.map(\.bitPattern),
                      "\(n) differs: \(b.path) is not bit-identical to \(a.path)", file: file, line: line)
        }
        XCTAssertEqual(x.ints, y.ints, "optimizer steps", file: file, line: line)
        let i = try RunCheckpoint.describe(a), j = try RunCheckpoint.describe(b)
        XCTAssertEqual(i.epoch, j.epoch, "epoch", file: file, line: line)
        XCTAssertEqual(i.step, j.step, "step", file: file, line: line)
        XCTAssertEqual(i.history.map(\.epoch), j.history.map(\.epoch), "history", file: file, line: line)
    }

    /// Every tensor within `relative` of the largest magnitude of the reference tensor
    /// (names matching `skip` are left out); returns the worst relative difference.
    @discardableResult
    static func assertClose(_ a: URL, _ b: URL, relative: Float = 1e-5, skip: (String) -> Bool = { _ in false },
                            file: StaticString = #filePath, line: UInt = #line) throws -> Float {
        let x = try contents(a), y = try contents(b)
        XCTAssertEqual(Set(x.floats.keys), Set(y.floats.keys), "tensor names", file: file, line: line)
        var worst: Float = 0
        for (n, v) in x.floats where !skip(n) {
            guard let w = y.floats[n] else { continue }
            let scale = max(v.map(abs).max() ?? 0, 1e-12)
            let diff = zip(v, w).map { abs($0 - $1) }.max() ?? 0
            worst = max(worst, diff / scale)
            XCTAssertLessThanOrEqual(diff / scale, relative, "\(n): \(b.lastPathComponent) vs \(a.lastPathComponent)",
                                     file: file, line: line)
        }
        XCTAssertEqual(x.ints, y.ints, "optimizer steps", file: file, line: line)
        XCTAssertEqual(try RunCheckpoint.describe(a).step, try RunCheckpoint.describe(b).step, "step", file: file, line: line)
        return worst
    }
}
