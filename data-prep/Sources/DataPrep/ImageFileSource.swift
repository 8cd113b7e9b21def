import FFEngine
import FFIO
import Foundation

/// Image files (PNG/JPEG) decoded with libpng/libjpeg-turbo, resized so the shorter side is
/// `size` and center-cropped to size x size RGB, row by row as they are decoded.
final class ImageFileSource: ItemSource {
    let imageSize: [Int]
    let labelKeys = ["labels"]
    let size: Int
    let limits: ffio_image_limits
    private(set) var paths: [FSPath] = []
    private(set) var names: [String] = []
    private(set) var labelValues: [Int32] = []
    /// Items known to be unreadable before decoding (broken links), with the reason.
    private(set) var preset: [Int: String] = [:]

    init(size: Int, maxPixels: UInt64, channels: Int = 3) {
        self.size = size
        imageSize = [size, size, channels]
        limits = ffio_image_limits(max_pixels: maxPixels, max_file_bytes: 0)
    }

    /// Appends a file; returns its item number. `failure` marks a file already known to be
    /// unreadable (it is reported like one that fails to decode).
    @discardableResult
    func add(path: FSPath, name: String, label: Int, failure: String? = nil) -> Int {
        paths.append(path)
        names.append(name)
        labelValues.append(Int32(label))
        if let f = failure { preset[paths.count - 1] = f }
        return paths.count - 1
    }

    func labels(of item: Int) -> [Int32] { [labelValues[item]] }
    func name(of item: Int) -> String { names[item] }

    func decode(_ item: Int, into out: UnsafeMutablePointer<UInt8>) -> String? {
        if let f = preset[item] { return f }
        var err = [CChar](repeating: 0, count: 512)
        var lim = limits
        guard imageSize[2] == 1 else {
            let rc = paths[item].withCString { ffio_image_prepare($0, Int32(size), &lim, out, nil, nil, &err, err.count) }
            return rc == 0 ? nil : String(cString: err)
        }
        // Gray: ITU-R 601 luma of the RGB image, rounded as `repro predict` does.
        var rgb = [UInt8](repeating: 0, count: size * size * 3)
        let rc = paths[item].withCString { ffio_image_prepare($0, Int32(size), &lim, &rgb, nil, nil, &err, err.count) }
        if rc != 0 { return String(cString: err) }
        for i in 0..<(size * size) {
            let r = Int(rgb[3 * i]), g = Int(rgb[3 * i + 1]), b = Int(rgb[3 * i + 2])
            out[i] = UInt8((299 * r + 587 * g + 114 * b + 500) / 1000)
        }
        return nil
    }
}

/// Listing helpers for image trees.
enum ImageTree {
    static let extensions: Set<String> = ["png", "jpg", "jpeg"]

    static func isImageName(_ name: FSPath) -> Bool {
        guard let dot = name.bytes.lastIndex(of: UInt8(ascii: ".")) else { return false }
        let ext = String(decoding: name.bytes[(dot + 1)...], as: UTF8.self).lowercased()
        return extensions.contains(ext)
    }

    /// Byte-wise order, independent of locale.
    static func sorted(_ names: [String]) -> [String] {
        names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    static func isDirectory(_ url: URL) -> Bool { FileTree.isDirectory(FSPath(url.path)) }

    /// Visible subfolders of `url` (links followed), by display name, in byte order; none
    /// if it cannot be read (callers that need the reason use FileTree).
    static func subdirectories(_ url: URL) -> [String] {
        ((try? FileTree.subdirectories(FSPath(url.path))) ?? []).map(\.display)
    }

    /// Class folders of `root` (visible subfolders, links followed), in byte order. An entry
    /// that cannot be examined (a broken link) is an error: it may be a class.
    static func classFolders(_ root: FSPath) throws -> [FSPath] {
        var out: [FSPath] = []
        for e in try FileTree.entries(root) {
            switch e.kind {
            case .directory: out.append(e.name)
            case .unreadable(let why):
                throw FFError(.source, "\(root.appending(e.name).display) cannot be examined (\(why)); it may be a "
                    + "class folder. Fix or remove it.", path: root.appending(e.name).display)
            default: continue
            }
        }
        return out
    }

    /// What the image listing noticed, for the end-of-listing note.
    struct Notes {
        var ignored = 0
        var nonUTF8 = 0
        var loops: [String] = []
        var emptyClasses: [String] = []

        mutating func add(_ other: Notes) {
            ignored += other.ignored
            nonUTF8 += other.nonUTF8
            loops += other.loops
            emptyClasses += other.emptyClasses
        }
    }

    /// Adds every image below `dir` with `label`; names are `namePrefix` + relative path.
    static func addImages(in dir: FSPath, label: Int, to source: ImageFileSource, namePrefix: String,
                          notes: inout Notes) throws -> [Int] {
        let found = try FileTree.files(below: dir, wanted: isImageName)
        notes.ignored += found.ignored
        notes.loops += found.loops.map { namePrefix + $0.display }
        var items: [Int] = []
        var listed: [(FSPath, String?)] = found.files.map { ($0, nil) } + found.unreadable.map { ($0.0, $0.1) }
        listed.sort { $0.0.bytes.lexicographicallyPrecedes($1.0.bytes) }
        for (rel, failure) in listed {
            if !rel.isUTF8 { notes.nonUTF8 += 1 }
            items.append(source.add(path: dir.appending(rel), name: namePrefix + rel.display, label: label, failure: failure))
        }
        return items
    }

    /// Adds every image under root/<class>/ for the given classes (label = position in
    /// `classes`). Classes without images are noted (`emptyClasses`).
    static func addClassFolders(_ root: FSPath, classes: [FSPath], to source: ImageFileSource, namePrefix: String,
                                notes: inout Notes) throws -> [Int] {
        var items: [Int] = []
        for (label, cls) in classes.enumerated() {
            let got = try addImages(in: root.appending(cls), label: label, to: source,
                                    namePrefix: "\(namePrefix)\(cls.display)/", notes: &notes)
            if got.isEmpty { notes.emptyClasses.append(namePrefix + cls.display) }
            items += got
        }
        return items
    }

    static func printNotes(_ n: Notes, options: PrepOptions) {
        guard options.progress else { return }
        var lines: [String] = []
        if n.ignored > 0 { lines.append("Ignored \(n.ignored) files that are not .png/.jpg/.jpeg.") }
        if n.nonUTF8 > 0 {
            lines.append("\(n.nonUTF8) file names are not valid UTF-8; they are converted and named with \\xNN escapes.")
        }
        if !n.loops.isEmpty {
            lines.append("Not followed (linked folders that lead back to a parent): " + n.loops.prefix(5).joined(separator: ", "))
        }
        if !n.emptyClasses.isEmpty {
            lines.append("Class folders without images: " + n.emptyClasses.prefix(10).joined(separator: ", ")
                + (n.emptyClasses.count > 10 ? ", ... (\(n.emptyClasses.count))" : ""))
        }
        if !lines.isEmpty { FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8)) }
    }

    /// Class names must be plain folder names: no separators, not "." or "..".
    static func checkClassName(_ name: String, file: URL, line: Int) throws {
        if name.isEmpty || name == "." || name == ".." || name.contains("/") || name.contains("\0") {
            throw FFError(.source, "\(file.path) line \(line): '\(name)' is not a class folder name (no '/', not '.' "
                + "or '..').", file: file)
        }
    }

    /// A list file of class names, one per line (blank lines skipped): each a plain folder
    /// name, none twice.
    static func readClassList(_ file: URL, what: String) throws -> [String] {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw FFError(.missing, "Cannot read \(what) \(file.path) (missing, unreadable or not UTF-8 text).", file: file)
        }
        var seen: [String: Int] = [:]
        var out: [String] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let name = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if name.isEmpty { continue }
            try checkClassName(name, file: file, line: i + 1)
            if let first = seen[name] {
                throw FFError(.source, "\(file.path) lists class \(name) twice (lines \(first) and \(i + 1)); every image "
                    + "of it would be stored twice under two labels. Remove the duplicate line.", file: file)
            }
            seen[name] = i + 1
            out.append(name)
        }
        if out.isEmpty { throw FFError(.source, "\(file.path) lists no classes.", file: file) }
        return out
    }
}
