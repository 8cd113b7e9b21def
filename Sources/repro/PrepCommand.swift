import ArgumentParser
import DataPrep

/// `repro prep ...`: dataset converters (see data-prep/).
struct PrepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prep", abstract: "Convert a dataset to HDF5 shards.")
    func run() throws { throw ValidationError("not implemented yet") }
}
