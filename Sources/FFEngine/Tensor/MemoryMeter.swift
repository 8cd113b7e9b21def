import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Counts the bytes held by tensor storages (current and high-water mark) and reads the
/// process's peak RSS, so the systems audit reports measured memory, not estimates.
public final class MemoryMeter: @unchecked Sendable {
    public static let shared = MemoryMeter()

    private let lock = NSLock()
    private var current = 0
    private var peak = 0

    func allocated(_ bytes: Int) {
        lock.lock()
        current += bytes
        if current > peak { peak = current }
        lock.unlock()
    }

    func freed(_ bytes: Int) {
        lock.lock()
        current -= bytes
        lock.unlock()
    }

    public var currentBytes: Int { lock.lock(); defer { lock.unlock() }; return current }
    public var peakBytes: Int { lock.lock(); defer { lock.unlock() }; return peak }

    /// Starts a new measurement window: the peak becomes the current value.
    public func resetPeak() {
        lock.lock()
        peak = current
        lock.unlock()
    }

    /// Peak resident set size of this process in bytes (VmHWM from /proc/self/status).
    public static func peakRSS() -> Int {
        value(forKey: "VmHWM:")
    }

    /// Current resident set size in bytes (VmRSS).
    public static func currentRSS() -> Int {
        value(forKey: "VmRSS:")
    }

    /// Resets the kernel's peak-RSS counter (Linux: writing 5 to /proc/self/clear_refs).
    @discardableResult
    public static func resetPeakRSS() -> Bool {
        guard let fh = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? fh.close() }
        do { try fh.write(contentsOf: Data("5".utf8)) } catch { return false }
        return true
    }

    private static func value(forKey key: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            let digits = line.dropFirst(key.count).trimmingCharacters(in: .whitespaces)
                .split(separator: " ").first.map(String.init) ?? "0"
            return (Int(digits) ?? 0) * 1024
        }
        return 0
    }
}
