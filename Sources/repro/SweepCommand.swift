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
            Runs go to SWEEP/seed-<S>, where SWEEP is runs/<recipe>/<date>-<time>-sweep[-<tag>] or --out.
            Every `repro run` option is passed on (e.g. --epochs 3 --set alpha=1.5); --seed is not (use --seeds).
            Compare two sweeps with `repro table SWEEP_A SWEEP_B` (paired t-test over seeds).
            """)

    @Argument(help: "Recipe name (see `repro list`).") var name: String
    @Option(help: "Comma-separated seeds, e.g. 1,2,3.") var seeds: String
    @Option(help: "Suffix of the sweep folder name (e.g. alpha1.5).") var tag: String?
    @Option(help: "Sweep folder (default: runs/<recipe>/<date>-<time>-sweep[-<tag>]).") var out: String?
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
                    childArgs = ["run", "--resume", dir.path] + (threading.threads.map { ["--threads", String($0)] } ?? [])
                } else {
                    print("seed \(seed): \(dir.path)")
                    childArgs = ["run"] + passed + ["--seed", String(seed), "--out", dir.path]
                }
                fflush(stdout)
                let p = Process()
                p.executableURL = exe
                p.arguments = childArgs
                try p.run()
                p.waitUntilExit()
                if p.terminationStatus != 0 {
                    throw FFError("the run of seed \(seed) failed (exit \(p.terminationStatus)); the finished seeds are kept. "
                        + "Rerun with --out \(sweep.path) to continue the sweep.")
                }
            }
            print("")
            print(ResultsTable.markdown(try RunCollection.groups([sweep])))
            print("table: repro table \(sweep.path)    plot: repro plot \(sweep.path) --out curves.svg")
        }
    }
}
