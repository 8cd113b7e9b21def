import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A progress line for long jobs: count/total, rate, ETA and caller-supplied fields.
/// On a terminal the line is redrawn in place; otherwise (logs, CI) a line is printed at
/// most every `logInterval` seconds, so logs stay short.
public final class Progress {
    public let label: String
    public let total: Int
    public let unit: String
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var lastLine = ""
    private let isTTY: Bool
    private let logInterval: TimeInterval
    private let enabled: Bool
    private(set) public var done = 0

    public init(_ label: String, total: Int, unit: String = "it", logInterval: TimeInterval = 10,
                enabled: Bool = true) {
        self.label = label
        self.total = total
        self.unit = unit
        self.logInterval = logInterval
        self.enabled = enabled && ProcessInfo.processInfo.environment["FFREPRO_QUIET"] == nil
        self.isTTY = isatty(STDERR_FILENO) != 0
    }

    public var elapsed: TimeInterval { Date().timeIntervalSince(start) }
    public var rate: Double { elapsed > 0 ? Double(done) / elapsed : 0 }

    /// Advances by `n` and redraws when due. `fields` are shown after the rate, e.g. "loss 1.23".
    public func advance(by n: Int = 1, fields: @autoclosure () -> String = "") {
        done += n
        guard enabled else { return }
        let now = Date()
        let interval = isTTY ? 0.2 : logInterval
        if now.timeIntervalSince(lastDraw) >= interval || done >= total {
            lastDraw = now
            draw(fields())
        }
    }

    /// Final line (always printed, with a newline).
    public func finish(_ fields: String = "") {
        guard enabled else { return }
        draw(fields)
        if isTTY { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func draw(_ fields: String) {
        // finish() right after the last advance() would repeat the same line in logs.
        let key = "\(done)|\(fields)"
        if !isTTY && key == lastLine { return }
        lastLine = key
        let pct = total > 0 ? 100 * Double(done) / Double(total) : 100
        // A rate over less than a tenth of a second is noise ("888925.1 img/s"): not shown.
        let speed = elapsed < 0.1 ? "" : String(format: rate >= 100 ? " %.0f %@/s" : " %.1f %@/s", rate, unit)
        var line = String(format: "%@ %d/%d (%.0f%%)", label, done, total, pct) + speed
        if done < total, rate > 0 {
            line += " ETA " + Progress.formatDuration(Double(total - done) / rate)
        } else {
            line += " in " + Progress.formatDuration(elapsed)
        }
        if !fields.isEmpty { line += " | " + fields }
        let text = isTTY ? "\r\u{1B}[2K" + line : line + "\n"
        FileHandle.standardError.write(Data(text.utf8))
    }

    public static func formatDuration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        let t = Int(s.rounded())
        if t >= 3600 { return String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) }
        if t >= 60 { return String(format: "%dm%02ds", t / 60, t % 60) }
        return String(format: "%.1fs", s)
    }
}
