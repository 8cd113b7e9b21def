import FFEngine
import FFIO
import Foundation

/// Imagenette (fast.ai's 10-class ImageNet subset): the official archive
/// (imagenette2.tgz, imagenette2-320.tgz or imagenette2-160.tgz) or its extracted folder, with
/// train/<wnid>/ and val/<wnid>/ JPEG folders. The official val becomes the test split; val
/// is held out from train. The index stores readable class names ("tench", ...).
enum ImagenetteSource {
    static let classes: [(wnid: String, name: String)] = [
        ("n01440764", "tench"), ("n02102040", "English springer"), ("n02979186", "cassette player"),
        ("n03000684", "chain saw"), ("n03028079", "church"), ("n03394916", "French horn"),
        ("n03417042", "garbage truck"), ("n03425413", "gas pump"), ("n03445777", "golf ball"),
        ("n03888605", "parachute"),
    ]
    static let expected = "the Imagenette archive (imagenette2-160.tgz, imagenette2-320.tgz or imagenette2.tgz) or its "
        + "extracted folder, holding train/<wnid>/*.JPEG and val/<wnid>/*.JPEG for the 10 classes"

    static func convert(source: URL, output: URL, options: PrepOptions) throws -> PrepResult {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source.path, isDirectory: &isDir) else {
            throw SourceProblem.error("imagenette", source, expected: expected)
        }
        var root = source
        var extracted: URL?
        defer { if let e = extracted { try? FileManager.default.removeItem(at: e) } }
        if !isDir.boolValue {
            let tmp = output.standardizedFileURL.deletingLastPathComponent()
                .appendingPathComponent(".\(output.lastPathComponent).imagenette.tmp.\(getpid())")
            extracted = tmp
            try extract(source, into: tmp)
            root = tmp
        }
        // The archive (and a folder extracted by tar) has one top folder, imagenette2-*/.
        if !ImageTree.subdirectories(root).contains("train"),
           let inner = ImageTree.subdirectories(root).first(where: { $0.hasPrefix("imagenette") }) {
            root = root.appendingPathComponent(inner)
        }
        for split in ["train", "val"] {
            let have = Set(ImageTree.subdirectories(root.appendingPathComponent(split)))
            let missing = classes.map(\.wnid).filter { !have.contains($0) }
            if !missing.isEmpty {
                throw SourceProblem.error("imagenette", source, expected: expected,
                                          hint: "\(root.appendingPathComponent(split).path) lacks the class folders "
                                            + missing.joined(separator: ", ") + ".")
            }
        }
        var o = options
        o.name = "imagenette"
        if o.size == nil { o.size = 160 }
        return try ImageFolderSource.convertFolder(
            source: root, output: output, options: o,
            classTitles: Dictionary(uniqueKeysWithValues: classes.map { ($0.wnid, $0.name) }),
            command: "repro prep imagenette --src \(source.path)")
    }

    /// Writes the archive's regular files under `dir`, refusing names that leave it.
    static func extract(_ archive: URL, into dir: URL) throws {
        var data: UnsafeMutablePointer<UInt8>? = nil
        var len = 0
        guard ffio_read_file(archive.path, &data, &len) == 0, let d = data else {
            throw FFError(.source, "Cannot read \(archive.path): \(String(cString: ffio_last_error())). Download it again.",
                          file: archive)
        }
        let bytes = Array(UnsafeBufferPointer(start: d, count: len))
        ffio_free(d)
        guard let entries = Tar.entries(bytes), !entries.isEmpty else {
            throw SourceProblem.error("imagenette", archive, expected: expected,
                                      hint: "The file is not a (gzip-compressed) tar archive.")
        }
        let fm = FileManager.default
        try? fm.removeItem(at: dir)
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        for e in entries {
            let parts = e.name.split(separator: "/").filter { $0 != "." }
            if e.name.hasPrefix("/") || parts.contains("..") || parts.isEmpty {
                throw FFError(.source, "\(archive.path) holds the entry '\(e.name)', which points outside the archive; "
                    + "it is not an Imagenette archive.", file: archive)
            }
            let url = parts.reduce(dir) { $0.appendingPathComponent(String($1)) }
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            guard fm.createFile(atPath: url.path, contents: Data(e.data)) else {
                throw FFError(.io, "Cannot write \(url.path) while extracting \(archive.path); check the free disk space.",
                              file: url)
            }
        }
    }
}
