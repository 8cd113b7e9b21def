import ArgumentParser
import FFEngine
import Foundation

@main
struct Repro: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repro",
        abstract: "Reproduce layer-local (Forward-Forward) CNN training papers on CPU.",
        discussion: """
            Typical use:
              repro prep fashion-mnist --out data/fashion-mnist
              repro run asge-fmnist                 # -> runs/asge-fmnist/<date>-<time>/
              repro eval --checkpoint runs/asge-fmnist/<date>-<time>/best.h5 --out eval.json
              repro sweep asge-fmnist --seeds 1,2,3 --epochs 3
              repro table runs/asge-fmnist/<sweep folder>
              repro plot runs/asge-fmnist/<sweep folder> --out curves.svg
              repro predict --checkpoint runs/asge-fmnist/<date>-<time>/best.h5 shirt.png
            """,
        subcommands: [ListCommand.self, ShowCommand.self, RunCommand.self, EvalCommand.self, PredictCommand.self,
                      SweepCommand.self, TableCommand.self, PlotCommand.self, BenchCommand.self, PrepCommand.self,
                      ExportCommand.self, PruneCommand.self])

    /// `repro --version`: version, commit, binary digest, compiler, BLAS, SIMD level and the
    /// arithmetic fingerprint (with --threads N or FFREPRO_THREADS, for that thread count).
    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
        if args.first == "--version" {
            var threads = 0
            if let i = args.firstIndex(of: "--threads"), i + 1 < args.count, let n = Int(args[i + 1]) { threads = n }
            print(BuildInfo.current(ComputeContext(threads: threads)).text)
            return
        }
        main(nil)
    }

    /// Runs `body`, printing an error's sentence (not a stack trace) and exiting with the
    /// status of its kind (data-prep/FORMAT.md, "Bad input"): 64 bad arguments, 65 bad data,
    /// 66 missing input, 74 I/O failure, 75 directory busy, 2 a diverged run.
    static func guarded(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let e as FFError {
            FileHandle.standardError.write(Data("error: \(e.message)\n".utf8))
            throw ExitCode(e.exitCode)
        } catch let e as NonFiniteLoss {
            FileHandle.standardError.write(Data("error: \(e.description)\n".utf8))
            throw ExitCode(2)
        } catch let e as ExitCode {
            throw e
        } catch let e as ValidationError {
            throw e
        } catch {
            FileHandle.standardError.write(Data("error: \((error as NSError).localizedDescription)\n".utf8))
            throw ExitCode(70)
        }
    }
}

struct ThreadOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Threads for kernels, 1...256 (default: FFREPRO_THREADS or all cores).")
    var threads: Int?

    static let range = 1...256

    func validate() throws {
        if let t = threads, !ThreadOptions.range.contains(t) {
            throw ValidationError("--threads \(t) is outside \(ThreadOptions.range.lowerBound)...\(ThreadOptions.range.upperBound).")
        }
    }

    func context() -> ComputeContext { ComputeContext(threads: threads ?? 0) }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the named recipes.")

    func run() throws {
        let rows = Recipes.all.map { r in
            [r.name, r.paper, r.dataset, r.arch, r.paperTop1.map { String(format: "%.2f", $0) } ?? "-", r.summary]
        }
        print(TextTable.render([["recipe", "paper", "dataset", "arch", "paper %", "summary"]] + rows, rightAligned: [4]))
    }
}

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "A recipe's config: the fields it uses, grouped, each with its meaning.")

    @Argument(help: "Recipe name (see `repro list`).")
    var name: String
    @Flag(help: "Also the fields that have no effect for this recipe, and unset ones.") var all = false
    @Flag(help: "The full config as JSON (the form config.json stores and `--set` edits).") var json = false
    @Option(help: "Show the config as adapted to this dataset directory (channels, size, classes).") var data: String?
    @Option(name: .customLong("set"), parsing: .singleValue, help: "Apply a config change first, as `repro run --set`.")
    var sets: [String] = []

    func run() throws {
        try Repro.guarded {
            var config = try Recipes.named(name)
            for s in sets { config = try config.setting(s) }
            try config.validate()
            if let data {
                let choice = try RunData.choose(config, directory: URL(fileURLWithPath: data, isDirectory: true))
                config = choice.config
                if let note = choice.adaptation, !json { print(note + "\n") }
            }
            print(json ? config.json() : try ConfigGuide.render(config, all: all))
        }
    }
}
