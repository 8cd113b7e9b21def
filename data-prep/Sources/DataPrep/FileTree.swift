import FFEngine
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file name or path as the file system holds it: bytes, not necessarily UTF-8.
struct FSPath: Hashable {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(_ string: String) { bytes = Array(string.utf8) }

    /// `self/name`.
    func appending(_ name: FSPath) -> FSPath { FSPath(bytes + [UInt8(ascii: "/")] + name.bytes) }
    func appending(_ name: String) -> FSPath { appending(FSPath(name)) }

    /// Readable form: valid UTF-8 as is, every other byte written as \xNN, so names that
    /// are not UTF-8 are kept (and shown) instead of being dropped.
    var display: String { FSPath.display(bytes) }
    var isUTF8: Bool { String(validating: bytes, as: UTF8.self) != nil }

    static func display(_ bytes: [UInt8]) -> String {
        if let s = String(validating: bytes, as: UTF8.self) { return s }
        var out = ""
        var i = 0
        while i < bytes.count {
            // The longest valid UTF-8 sequence starting at i, else one escaped byte.
            var decoded: String? = nil
            var len = 0
            for n in stride(from: min(4, bytes.count - i), through: 1, by: -1) {
                if let s = String(validating: bytes[i..<i + n], as: UTF8.self), s.unicodeScalars.count == 1 {
                    decoded = s
                    len = n
                    break
                }
            }
            if let d = decoded {
                out += d
                i += len
            } else {
                out += String(format: "\\x%02X", bytes[i])
                i += 1
            }
        }
        return out
    }

    /// Calls `body` with a NUL-terminated C string of the path.
    func withCString<R>(_ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
        try (bytes + [0]).withUnsafeBufferPointer { b in
            try b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { try body($0) }
        }
    }
}

/// Directory walking on raw names (readdir), following symbolic links to files and folders
/// and reporting what cannot be read instead of dropping it.
enum FileTree {
    enum Kind { case file, directory, other, unreadable(String) }

    struct Entry {
        let name: FSPath
        let kind: Kind
        /// device and inode of the target (for loops of linked folders).
        let id: [UInt64]
    }

    /// Visible entries of a folder (names starting with "." are hidden), in byte order.
    /// Throws if the folder itself cannot be read.
    static func entries(_ dir: FSPath) throws -> [Entry] {
        guard let d = dir.withCString({ opendir($0) }) else {
            let why = String(cString: strerror(errno))
            throw FFError(.source, "Cannot read the folder \(dir.display): \(why). Its images would be lost; fix "
                + "its permissions (e.g. chmod -R a+rX) or remove it from the source.", path: dir.display)
        }
        defer { closedir(d) }
        var names: [[UInt8]] = []
        while true {
            errno = 0
            guard let e = readdir(d) else {
                if errno != 0 {
                    throw FFError(.source, "Cannot list the folder \(dir.display): \(String(cString: strerror(errno))).",
                                  path: dir.display)
                }
                break
            }
            let name: [UInt8] = withUnsafeBytes(of: e.pointee.d_name) { raw in
                Array(raw.prefix { $0 != 0 })
            }
            if name.first == UInt8(ascii: ".") { continue }
            names.append(name)
        }
        return names.sorted { $0.lexicographicallyPrecedes($1) }.map { n in
            let name = FSPath(n)
            let full = dir.appending(name)
            var st = stat()
            if full.withCString({ stat($0, &st) }) != 0 {
                let why = String(cString: strerror(errno))
                var lst = stat()
                let link = full.withCString { lstat($0, &lst) } == 0 && (lst.st_mode & S_IFMT) == S_IFLNK
                return Entry(name: name, kind: .unreadable(link ? "broken symbolic link (\(why))" : why), id: [])
            }
            let fmt = st.st_mode & S_IFMT
            let kind: Kind = fmt == S_IFDIR ? .directory : fmt == S_IFREG ? .file : .other
            return Entry(name: name, kind: kind, id: [UInt64(st.st_dev), UInt64(st.st_ino)])
        }
    }

    static func isDirectory(_ p: FSPath) -> Bool {
        var st = stat()
        return p.withCString { stat($0, &st) } == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Visible subfolders (through links), in byte order.
    static func subdirectories(_ dir: FSPath) throws -> [FSPath] {
        try entries(dir).compactMap { if case .directory = $0.kind { return $0.name } else { return nil } }
    }

    struct Found {
        /// Paths relative to the walked folder, in byte order.
        var files: [FSPath] = []
        /// Files of the wanted kind that cannot be opened (broken links), with the reason.
        var unreadable: [(FSPath, String)] = []
        /// Regular files of other kinds.
        var ignored = 0
        /// Linked folders that lead back to one of their parents (not followed again).
        var loops: [FSPath] = []
    }

    /// Files below `dir` (recursively, hidden entries skipped, links followed) that `wanted`
    /// accepts by name. A folder that cannot be read is an error, not an empty folder.
    static func files(below dir: FSPath, wanted: (FSPath) -> Bool) throws -> Found {
        var found = Found()
        var rootStat = stat()
        guard dir.withCString({ stat($0, &rootStat) }) == 0 else {
            throw FFError(.source, "Cannot read the folder \(dir.display): \(String(cString: strerror(errno))).", path: dir.display)
        }
        try walk(dir, rel: nil, ancestors: [[UInt64(rootStat.st_dev), UInt64(rootStat.st_ino)]], wanted: wanted, into: &found)
        found.files.sort { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        return found
    }

    private static func walk(_ dir: FSPath, rel: FSPath?, ancestors: Set<[UInt64]>, wanted: (FSPath) -> Bool,
                             into found: inout Found) throws {
        for e in try entries(dir) {
            let r = rel.map { $0.appending(e.name) } ?? e.name
            switch e.kind {
            case .file:
                if wanted(e.name) { found.files.append(r) } else { found.ignored += 1 }
            case .directory:
                if ancestors.contains(e.id) {
                    found.loops.append(r)
                } else {
                    try walk(dir.appending(e.name), rel: r, ancestors: ancestors.union([e.id]), wanted: wanted, into: &found)
                }
            case .unreadable(let why):
                if wanted(e.name) { found.unreadable.append((r, why)) } else { found.ignored += 1 }
            case .other:
                found.ignored += 1
            }
        }
    }
}
