import FFCore
import FFIO
import Foundation

/// Which build produced a number: stored in results records and checkpoints, printed by
/// `repro --version`, compared by `repro table`. Two numbers are bit-for-bit comparable only
/// with the same `binarySha256` (or the same commit, clean) and the same `fingerprint`.
public struct BuildInfo: Codable, Equatable {
    public static let version = "0.10.0"

    public var version: String
    /// HEAD of the source checkout the binary was built in, read when the process started
    /// (nil when that checkout is gone); `dirty` when it had uncommitted changes then.
    public var commit: String?
    public var dirty: Bool?
    /// SHA-256 of the executable itself: identifies the exact build even when the checkout
    /// changed after building.
    public var binarySha256: String?
    public var compiler: String
    public var blas: String
    public var simd: String
    public var threads: Int
    /// SHA-256 of an sgemm and a convolution on fixed data (+ SIMD level and threads): equal
    /// exactly when this machine computes them with the same instruction sequence.
    public var fingerprint: String

    enum CodingKeys: String, CodingKey {
        case version, commit, dirty, binarySha256, compiler, blas, simd, threads, fingerprint
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(commit, forKey: .commit)
        try c.encode(dirty, forKey: .dirty)
        try c.encode(binarySha256, forKey: .binarySha256)
        try c.encode(compiler, forKey: .compiler)
        try c.encode(blas, forKey: .blas)
        try c.encode(simd, forKey: .simd)
        try c.encode(threads, forKey: .threads)
        try c.encode(fingerprint, forKey: .fingerprint)
    }

    static var compilerName: String {
        #if compiler(>=6.4)
        return "Swift 6.4 or later"
        #elseif compiler(>=6.3)
        return "Swift 6.3"
        #elseif compiler(>=6.2)
        return "Swift 6.2"
        #elseif compiler(>=6.1)
        return "Swift 6.1"
        #else
        return "Swift 6.0"
        #endif
    }

    /// The source checkout: this file's directory at compile time, three levels up.
    static let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static func git(_ args: [String]) -> String? {
        guard FileManager.default.fileExists(atPath: sourceRoot.appendingPathComponent(".git").path) else { return nil }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git", "-C", sourceRoot.path] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        guard (try? p.run()) != nil else { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Source state, read once per process (the commit does not change under a run).
    static let source: (commit: String?, dirty: Bool?, binary: String?) = {
        let commit = git(["rev-parse", "HEAD"])
        let dirty = commit == nil ? nil : git(["status", "--porcelain", "--untracked-files=no"]).map { !$0.isEmpty }
        let binary = try? AtomicFile.sha256(of: URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath())
        return (commit, dirty, binary)
    }()

    public static func fingerprint(_ ctx: ComputeContext) -> String {
        let a = Tensor(uninitialized: [37, 29]), b = Tensor(uninitialized: [29, 41])
        var rng = RNG(seed: 7, stream: 0)
        rng.fillNormal(a, std: 1)
        rng.fillNormal(b, std: 1)
        let c = Ops.matmul(ctx, a, b)
        let x = Tensor(uninitialized: [2, 5, 9, 7]), w = Tensor(uninitialized: [6, 5, 3, 3])
        rng.fillNormal(x, std: 1)
        rng.fillNormal(w, std: 1)
        let y = Ops.conv2d(ctx, x, weight: w, bias: nil, Ops.ConvGeometry(kernel: 3, padding: 1))
        var h = ffio_sha256_ctx()
        ffio_sha256_init(&h)
        for t in [c, y] { ffio_sha256_update(&h, t.pointer, t.count * 4) }
        var d = [UInt8](repeating: 0, count: 32)
        ffio_sha256_final(&h, &d)
        return d.map { String(format: "%02x", $0) }.joined() + "-\(ctx.simdName)-\(ctx.threads)"
    }

    /// This process's build on `ctx`'s arithmetic.
    public static func current(_ ctx: ComputeContext) -> BuildInfo {
        BuildInfo(version: version, commit: source.commit, dirty: source.dirty, binarySha256: source.binary,
                  compiler: compilerName, blas: String(cString: ff_blas_config()), simd: ctx.simdName,
                  threads: ctx.threads, fingerprint: fingerprint(ctx))
    }

    /// `repro --version`.
    public var text: String {
        let c = commit.map { "\($0)\(dirty == true ? " (with uncommitted changes)" : "")" } ?? "unknown (no source checkout)"
        return """
            repro \(version)
            commit      \(c)
            binary      sha256 \(binarySha256 ?? "unknown")
            compiler    \(compiler)
            BLAS        \(blas)
            SIMD        \(simd), \(threads) thread\(threads == 1 ? "" : "s")
            fingerprint \(fingerprint)
            """
    }

    /// One line naming the build, for tables and notes.
    public var short: String {
        "\(version) \(commit.map { String($0.prefix(10)) } ?? "?")\(dirty == true ? "+dirty" : "") "
            + "fingerprint \(fingerprint.prefix(10))-\(simd)-\(threads)"
    }
}
