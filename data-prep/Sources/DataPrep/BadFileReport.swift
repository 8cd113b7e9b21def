import FFEngine
import Foundation

/// The list of images that could not be decoded, printed at the end of a conversion and
/// stored in index.json ("skipped").
struct BadFileReport {
    let skipped: [DatasetIndex.Skipped]
    let total: Int

    var percent: String {
        String(format: "%.3f%%", total > 0 ? 100 * Double(skipped.count) / Double(total) : 0)
    }

    var text: String {
        var lines = ["Skipped \(skipped.count) of \(total) images (\(percent)) that could not be read:"]
        let shown = 200
        for s in skipped.prefix(shown) { lines.append("  \(s.path): \(s.reason)") }
        if skipped.count > shown { lines.append("  ... and \(skipped.count - shown) more (all listed in index.json)") }
        return lines.joined(separator: "\n") + "\n"
    }

    func print() {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
