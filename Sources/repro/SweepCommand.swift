import ArgumentParser
import FFEngine
import Foundation

/// `repro sweep`: one recipe with the same options over several seeds, one child process
/// per run, one after the other, into one sweep folder. Rerunning the same command with
/// --out SWEEP continues it: finished seeds are kept, an interrupted one is resumed.
struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep", abstract: "Run a recipe over several seeds (sequentially), then print the table.",
        discussion: """
            Runs go to SWEEP/seed-<S>, where SWEEP is runs/<recipe>/<date>-<time>-sweep[-<tag>] or --out. \
            Every `repro run` option is passed on (e.g. --epochs 3 --set alpha=1.5); --seed is not (use --seeds). \
            Compare two sweeps with `repro table SWEEP_A SWEEP_B` (paired t-test over seeds).
            """)

    @Argument(help: "Recipe name (see `repro list`).") var name: String
    @Option(help: "Comma-separated seeds, e.g. 1,2,3.") var seeds: String
    @Option(help: "Suffix of the sweep folder name (e.g. alpha1.5).") var tag: String?
    @Option(help: "Sweep folder (default: runs/<recipe>/<date>-<time>-sweep[-<tag>]).") var out: String?
    @Option(help: ArgumentHelp("Checkpoints each finished run keeps: both (default), best or last (see `repro run --help`).",
                               valueName: "which"))
    var keep = "both"
    @Option(help: "TensorBoard folder for every seed's run (see `repro run --help`).") var tensorboard: String?
    @OptionGroup var overrides: RecipeOverrides
    @OptionGroup var threading: ThreadOptions

    /// The command line minus the options the sweep consumes, for the child runs.
    static func passedOn(_ args: [String]) -> [String] {
        let own: Set<String> = ["--seeds", "--tag", "--out"]
        var out: [String] = []
        var skip = false
        for a in args {
            if skip { skip = false; continue }
            if own.contains(a) { skip = true; continue }
            if own.contains(where: { a.hasPrefix($0 + "=") }) { continue }
            out.append(a)
        }
        return out
    }

    /// An argument as a POSIX shell reads it back.
    static func quoted(_ a: String) -> String {
        let plain = a.allSatisfy { $0.isLetter || $0.isNumber || "-_./=,:+@%".contains($0) }
        return plain && !a.isEmpty ? a : "'" + a.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    func run() throws {
        try Repro.guarded {
            let list = seeds.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let parsed = list.compactMap { UInt64($0) }
            guard !list.isEmpty, parsed.count == list.count, Set(parsed).count == parsed.count else {
                throw FFError(.invalidArgument, "--seeds takes distinct non-negative integers separated by commas, "
                    + "e.g. --seeds 1,2,3 (got '\(seeds)').")
            }
            if overrides.seed != nil { throw FFError(.invalidArgument, "--seed does not go with sweep; use --seeds.") }
            // Fails here, before any child starts, if the options do not make a valid config.
            let config = try overrides.apply(to: try Recipes.named(name))
            let sweep = try out.map { URL(fileURLWithPath: $0, isDirectory: true) }
                ?? RunFolder.fresh(recipe: config.name, tag: "sweep" + (tag.map { "-\($0)" } ?? "")).url
            try FileManager.default.createDirectory(at: sweep, withIntermediateDirectories: true)
            let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            let args = Array(CommandLine.arguments.dropFirst())
            let sweepIndex = args.firstIndex(of: "sweep") ?? 0
            let passed = SweepCommand.passedOn(Array(args[(sweepIndex + 1)...]))
            // Ctrl-C reaches only the sweep (Foundation starts children in their own process
            // group): pass the signal on to the running child, wait for it, then stop.
            let child = ChildProcess()
            Interrupts.install { sig in child.forward(sig) }
            print("sweep \(config.name) over seeds \(parsed.map(String.init).joined(separator: ", ")) into \(sweep.path)")
            for seed in parsed {
                let dir = sweep.appendingPathComponent("seed-\(seed)")
                let folder = RunFolder(dir)
                let childArgs: [String]
                if FileManager.default.fileExists(atPath: folder.results.path) {
                    print("seed \(seed): finished earlier (\(dir.path)); kept")
                    continue
                } else if FileManager.default.fileExists(atPath: folder.last.path) {
                    print("seed \(seed): resuming \(dir.path)")
                    childArgs = ["run", "--resume", dir.path, "--keep", keep] + (tensorboard.map { ["--tensorboard", $0] } ?? [])
                        + (threading.threads.map { ["--threads", String($0)] } ?? [])
                } else {
                    print("seed \(seed): \(dir.path)")
                    childArgs = ["run"] + passed + ["--seed", String(seed), "--out", dir.path]
                }
                fflush(stdout)
                let p = Process()
                p.executableURL = exe
                p.arguments = childArgs
                try p.run()
                child.set(p.processIdentifier)
                p.waitUntilExit()
                child.set(0)
                let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
                let again = (["repro"] + args + (out == nil ? ["--out", sweep.path] : [])).map(SweepCommand.quoted)
                    .joined(separator: " ")
                if let sig = child.signal {
                    Interrupts.exit(sig, message: "sweep interrupted during seed \(seed); the finished seeds are kept. "
                        + "Continue with: \(again)")
                }
                if status != 0 {
                    FileHandle.standardError.write(Data(("error: the run of seed \(seed) failed: \(Interrupts.describe(status: status)) "
                        + "(exit \(status)); the finished seeds are kept. Continue with: \(again)\n").utf8))
                    throw ExitCode(status)
                }
            }
            print("")
            print(ResultsTable.markdown(try RunCollection.groups([sweep])))
            print("table: repro table \(sweep.path)    plot: repro plot \(sweep.path) --out curves.svg")
        }
    }
}

/// The sweep's running child, and the signal the sweep was asked to stop with.
final class ChildProcess {
    private let lock = NSLock()
    private var pid: Int32 = 0
    private var received: Int32?

    func set(_ pid: Int32) { lock.lock(); self.pid = pid; lock.unlock() }

    var signal: Int32? { lock.lock(); defer { lock.unlock() }; return received }

    /// Passes `sig` to the child (which reports where it stopped); without one, stops now.
    func forward(_ sig: Int32) {
        lock.lock()
        received = sig
        let p = pid
        lock.unlock()
        if p > 0 { kill(p, sig) } else { Interrupts.exit(sig, message: "sweep interrupted between runs.") }
    }
}
