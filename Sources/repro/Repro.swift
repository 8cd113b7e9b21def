import ArgumentParser
import FFEngine

@main
struct Repro: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repro",
        abstract: "Reproduce layer-local (Forward-Forward) CNN training papers on CPU.",
        subcommands: [PrepCommand.self])
}
