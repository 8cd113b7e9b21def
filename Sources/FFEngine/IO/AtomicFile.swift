import FFIO
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Crash-safe file replacement: write to a temporary name in the same directory, fsync,
/// rename over the final name, fsync the directory. A reader sees either the old file or
/// the complete new one, never a partial file under the final name.
public enum AtomicFile {
    /// "<name>.tmp.<pid>" next to `url` (same file system, so rename is atomic).
    public static func temporaryURL(for url: URL) -> URL {
        url.deletingLastPathComponent().appendingPathComponent("\(url.lastPathComponent).tmp.\(getpid())")
    }

    /// True for names produced by `temporaryURL`, so stale ones can be cleaned up.
    public static func isTemporaryName(_ name: String) -> Bool { name.range(of: ".tmp.") != nil }

    public static func fsync(_ url: URL) throws {
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { throw FFError(.io, "Cannot open \(url.path) to flush it: \(errnoText()).", file: url) }
        defer { _ = close(fd) }
        if Glibc.fsync(fd) != 0 && errno != EINVAL {
            throw FFError(.io, "Cannot flush \(url.path) to disk: \(errnoText()).", file: url)
        }
    }

    /// Flushes `temp`, renames it to `url` and flushes the directory entry.
    public static func commit(_ temp: URL, to url: URL) throws {
        try fsync(temp)
        if rename(temp.path, url.path) != 0 {
            throw FFError(.io, "Cannot rename \(temp.path) to \(url.path): \(errnoText()).", file: url)
        }
        try? fsync(url.deletingLastPathComponent())
    }

    /// Writes `data` to `url` atomically. On failure (disk full, `url` a directory) the
    /// temporary file is removed and an existing file at `url` is unchanged.
    public static func write(_ data: Data, to url: URL) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue {
            throw FFError(.invalidArgument, "\(url.path) is a directory; give a file name (for example "
                + "\(url.appendingPathComponent("eval.json").path)).", file: url)
        }
        let temp = temporaryURL(for: url)
        do {
            try data.write(to: temp)
            try commit(temp, to: url)
        } catch {
            try? FileManager.default.removeItem(at: temp)
            if error is FFError { throw error }
            let reason = (error as NSError).userInfo[NSUnderlyingErrorKey].map { "\($0)" } ?? error.localizedDescription
            throw FFError(.io, "Cannot write \(url.path): \(DirectoryLock.plain(reason)). Nothing was written; an "
                + "existing file there is unchanged.", file: url)
        }
    }

    /// Hex SHA-256 of a file's bytes (what `sha256sum` prints).
    public static func sha256(of url: URL) throws -> String {
        var hex = [CChar](repeating: 0, count: 65)
        guard ffio_sha256_file(url.path, &hex) == 0 else {
            throw FFError(.io, "Cannot read \(url.path) to compute its checksum: \(String(cString: ffio_last_error())).", file: url)
        }
        return String(cString: hex)
    }

    /// Size in bytes, or nil if the file does not exist.
    public static func size(of url: URL) -> Int? {
        var st = stat()
        return stat(url.path, &st) == 0 ? Int(st.st_size) : nil
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
