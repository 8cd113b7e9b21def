import ArgumentParser
import DataPrep
import FFEngine
import Foundation

/// `repro predict`: classify image files with a checkpoint.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict", abstract: "Classify PNG/JPEG files with a checkpoint: top classes and per-readout votes.",
        discussion: """
            Each image goes through the preprocessing of the checkpoint's dataset: resized (shorter side to the \
            stored size) and center-cropped as `repro prep imagefolder` does, gray for one-channel datasets, then \
            the recipe's evaluation crop and the dataset's channel normalisation. Probabilities are the softmax of \
            the predictor's logits (the classifier head, or the best readout for Best Pred recipes). Every local \
            readout votes with its own top-1; "agree" counts the readouts that pick the predictor's class.
            """)

    @Option(help: "Checkpoint written by `repro run` (a run folder's best.h5).") var checkpoint: String
    @Argument(help: "Image files (.png, .jpg, .jpeg).") var images: [String]
    @Option(parsing: .unconditional, help: "Classes to list per image.") var top = 5
    @Flag(help: "Print one JSON document (a list with one object per image).") var json = false
    @Option(help: "Dataset directory, for checkpoints written before they carried their dataset's statistics.")
    var data: String?
    @Option(name: .customLong("max-image-pixels"), parsing: .unconditional,
            help: "Refuse images declaring more pixels than this (decompression bombs; default 89478485, as PIL).")
    var maxImagePixels: UInt64 = PrepOptions.defaultMaxImagePixels
    @OptionGroup var threading: ThreadOptions

    func run() throws {
        try Repro.guarded {
            guard !images.isEmpty else { throw FFError(.invalidArgument, "Give at least one image file.") }
            guard top >= 1 else { throw FFError(.invalidArgument, "--top must be at least 1 (got \(top)).") }
            let url = URL(fileURLWithPath: checkpoint)
            var fallback: DatasetInfo?
            if let data {
                let info = try RunCheckpoint.describe(url)
                fallback = try RunData.choose(info.config, directory: URL(fileURLWithPath: data, isDirectory: true)).info
            }
            guard PrepOptions.maxImagePixelsRange.contains(maxImagePixels) else {
                throw FFError(.invalidArgument, "--max-image-pixels \(maxImagePixels) is outside "
                    + "1...\(PrepOptions.maxImagePixelsRange.upperBound).")
            }
            let predictor = try Predictor(threading.context(), checkpoint: url, dataset: fallback)
            predictor.preprocessor.maxImagePixels = maxImagePixels
            let results = try predictor.predict(images, top: top)
            if json {
                let enc = JSONEncoder()
                enc.keyEncodingStrategy = .convertToSnakeCase
                enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try enc.encode(results), as: UTF8.self))
                return
            }
            let info = predictor.info
            print("\(info.config.name), epoch \(info.epoch), \(info.classes) classes; predictor: \(results.first?.predictor ?? "")")
            for r in results {
                print("")
                print(r.image)
                let width = r.top.map(\.className.count).max() ?? 0
                for (i, c) in r.top.enumerated() {
                    print("  \(i + 1). " + TextTable.pad(c.className, width) + String(format: "  %6.2f %%", 100 * c.probability))
                }
                if !r.readouts.isEmpty {
                    print("  readouts: \(r.agreeing) of \(r.readouts.count) agree; "
                        + r.readouts.map { "\($0.label) \($0.className)\($0.agrees ? "" : " (differs)")" }.joined(separator: ", "))
                }
            }
        }
    }
}
