import ArgumentParser
import FFEngine
import Foundation

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a checkpoint's weights for PyTorch (safetensors) or as a weights-only checkpoint.",
        discussion: """
            safetensors: every parameter and buffer under ffrepro's names (float32, shapes as \
            trained), with the config, class names and input normalisation in the header; \
            tools/pytorch/eval_export.py rebuilds the network in plain PyTorch and evaluates it.
            h5: the checkpoint without optimizer state (what `repro eval` and `repro predict` \
            need; `--resume` needs the full last.h5).
            """)

    @Option(help: "Checkpoint written by `repro run` (best.h5 or last.h5).") var checkpoint: String
    @Option(help: "safetensors or h5.") var format: String = "safetensors"
    @Option(help: "Output file.") var out: String
    @Flag(help: "Replace an existing output file.") var overwrite = false

    func validate() throws {
        guard ModelExport.Format(rawValue: format) != nil else {
            throw ValidationError("--format '\(format)' is not one of: "
                + ModelExport.Format.allCases.map(\.rawValue).joined(separator: ", ") + ".")
        }
    }

    func run() throws {
        try Repro.guarded {
            let src = try existingFile(checkpoint, option: "--checkpoint")
            let dst = URL(fileURLWithPath: (out as NSString).expandingTildeInPath)
            if dst.standardizedFileURL.resolvingSymlinksInPath() == src.standardizedFileURL.resolvingSymlinksInPath() {
                throw FFError(.invalidArgument, "--out \(dst.path) is the checkpoint being exported; choose another file.",
                              file: dst)
            }
            if FileManager.default.fileExists(atPath: dst.path) && !overwrite {
                throw FFError(.invalidArgument, "--out \(dst.path) exists; pass --overwrite to replace it.", file: dst)
            }
            let s = try ModelExport.export(checkpoint: src, format: ModelExport.Format(rawValue: format)!, to: dst)
            print("wrote \(dst.path): \(s.tensors) tensors, \(s.values) values, \(s.bytes) bytes (\(format))")
        }
    }
}
