import ArgumentParser
import FFEngine
import Foundation

/// `repro table`: Markdown tables of finished runs.
struct TableCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "table", abstract: "Mean ± std of finished runs per predictor and readout; paired t-tests between groups.",
        discussion: """
            Each PATH is a run folder, a results record (repro eval --out), or a sweep folder (a folder of runs). \
            A sweep folder is one group; single runs are grouped by config (apart from the seed) and dataset. \
            With two or more groups, each later group is compared with the first, paired by seed (two-sided \
            paired t-test). The output is Markdown, ready for papers/<paper>/README.md.
            """)

    @Argument(help: "Run folders, sweep folders or results records.") var paths: [String]
    @Option(help: "Also write the Markdown to this file.") var out: String?

    func run() throws {
        try Repro.guarded {
            guard !paths.isEmpty else { throw FFError(.invalidArgument, "Give at least one run or sweep folder.") }
            // Notes go to stderr: stdout stays the Markdown.
            let groups = try RunCollection.groups(paths.map { URL(fileURLWithPath: $0) }) {
                FileHandle.standardError.write(Data(($0 + "\n").utf8))
            }
            let text = ResultsTable.markdown(groups)
            print(text, terminator: "")
            if let out { try AtomicFile.write(Data(text.utf8), to: URL(fileURLWithPath: out)) }
        }
    }
}

/// `repro plot`: training curves as SVG.
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot", abstract: "SVG comparing groups of runs over epochs: predictor, readouts, training loss.",
        discussion: """
            PATHs are grouped as in `repro table`; the groups share the axes of three panels (predictor \
            validation accuracy with the majority-class and chance lines; best and last readout, or every readout \
            with --readouts all; training losses), one colour per group, several runs drawn as their mean with a \
            band of ±1 std. The output is SVG (any browser shows it); for a PNG use e.g. \
            `rsvg-convert -o curves.png curves.svg` (Debian package librsvg2-bin).
            """)

    @Argument(help: "Run folders or sweep folders.") var paths: [String]
    @Option(help: "Output .svg file.") var out: String
    @Option(help: "Title above the figure.") var title: String?
    @Option(help: ArgumentHelp("Readouts drawn: best-last (default: the one chosen on validation and the last) or all.",
                               valueName: "which"))
    var readouts = "best-last"

    func run() throws {
        try Repro.guarded {
            guard !paths.isEmpty else { throw FFError(.invalidArgument, "Give at least one run or sweep folder.") }
            guard ["best-last", "all"].contains(readouts) else {
                throw FFError(.invalidArgument, "--readouts '\(readouts)' is not one of: best-last, all.")
            }
            guard out.lowercased().hasSuffix(".svg") else {
                throw FFError(.invalidArgument, "--out must name an .svg file (got \(out)); convert it to PNG with "
                    + "`rsvg-convert -o figure.png figure.svg`.")
            }
            let groups = try RunCollection.groups(paths.map { URL(fileURLWithPath: $0) })
            if let g = groups.first(where: { $0.runs.allSatisfy(\.history.isEmpty) }) {
                throw FFError(.missing, "\(g.name): no metrics.jsonl to plot (eval records have no epochs).")
            }
            let url = URL(fileURLWithPath: out)
            try AtomicFile.write(Data(RunPlot.svg(groups, title: title, allReadouts: readouts == "all").utf8), to: url)
            print("wrote \(url.path) (\(groups.count) group\(groups.count == 1 ? "" : "s"), "
                + "\(groups.reduce(0) { $0 + $1.runs.count }) runs)")
        }
    }
}
