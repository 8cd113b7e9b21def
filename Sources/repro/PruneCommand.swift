import ArgumentParser
import FFEngine
import Foundation

/// `repro prune`: drop the checkpoints finished runs no longer need (a sweep of VGG8 runs
/// keeps 147 MB per seed with both; 37 MB with best only).
struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune", abstract: "Remove last.h5 (or best.h5) of finished runs: run folders or sweep folders.",
        discussion: """
            Only runs with results.json are touched; unfinished runs keep everything. With --keep best (the \
            default) a run keeps the weights it was tested with and can no longer be resumed or extended.
            """)

    @Argument(help: "Run folders or sweep folders.") var paths: [String]
    @Option(help: ArgumentHelp("What to keep: best (default) or last.", valueName: "which")) var keep = "best"
    @Flag(help: "List what would be removed, remove nothing.") var dryRun = false

    func run() throws {
        try Repro.guarded {
            guard ["best", "last"].contains(keep) else {
                throw FFError(.invalidArgument, "--keep '\(keep)' is not one of: best, last.")
            }
            guard !paths.isEmpty else { throw FFError(.invalidArgument, "Give at least one run or sweep folder.") }
            var freed = 0, removed = 0
            for p in paths {
                let url = URL(fileURLWithPath: (p as NSString).expandingTildeInPath, isDirectory: true)
                let folders = FileManager.default.fileExists(atPath: url.appendingPathComponent("results.json").path) ? [url]
                    : ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted()
                        .map { url.appendingPathComponent($0, isDirectory: true) }
                        .filter { FileManager.default.fileExists(atPath: $0.appendingPathComponent("results.json").path) }
                if folders.isEmpty { print("\(url.path): no finished runs") }
                for f in folders {
                    let folder = RunFolder(f)
                    let drop = keep == "best" ? folder.last : folder.best
                    guard let size = AtomicFile.size(of: drop) else { continue }
                    print("\(dryRun ? "would remove" : "removed") \(drop.path) (\(size / 1_000_000) MB)")
                    if !dryRun { try folder.prune(keep: keep) }
                    freed += size
                    removed += 1
                }
            }
            print("\(removed) file\(removed == 1 ? "" : "s"), \(freed / 1_000_000) MB \(dryRun ? "would be " : "")freed")
        }
    }
}
