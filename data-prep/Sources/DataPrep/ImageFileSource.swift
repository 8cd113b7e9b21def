import FFEngine
import FFIO
import Foundation

/// Image files (PNG/JPEG) decoded with libpng/libjpeg-turbo, resized so the shorter side is
/// `size` and center-cropped to size x size RGB.
final class ImageFileSource: ItemSource {
    let imageSize: [Int]
    let labelKeys = ["labels"]
    let size: Int
    private(set) var paths: [String] = []
    private(set) var names: [String] = []
    private(set) var labelValues: [Int32] = []

    init(size: Int) {
        self.size = size
        imageSize = [size, size, 3]
    }

    /// Appends a file; returns its item number.
    @discardableResult
    func add(path: String, name: String, label: Int) -> Int {
        paths.append(path)
        names.append(name)
        labelValues.append(Int32(label))
        return paths.count - 1
    }

    func labels(of item: Int) -> [Int32] { [labelValues[item]] }
    func name(of item: Int) -> String { names[item] }

    func decode(_ item: Int, into out: UnsafeMutablePointer<UInt8>) -> String? {
        var err = [CChar](repeating: 0, count: 512)
        let rc = ffio_image_prepare(paths[item], Int32(size), out, nil, nil, &err, err.count)
        return rc == 0 ? nil : String(cString: err)
    }
}

/// Directory listing helpers for image trees.
enum ImageTree {
    static let extensions: Set<String> = ["png", "jpg", "jpeg"]

    static func isImageName(_ name: String) -> Bool {
        extensions.contains((name as NSString).pathExtension.lowercased())
    }

    /// Byte-wise order, independent of locale.
    static func sorted(_ names: [String]) -> [String] {
        names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    static func isDirectory(_ url: URL) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &d) && d.boolValue
    }

    /// Visible subdirectories of `url`, sorted.
    static func subdirectories(_ url: URL) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return sorted(names.filter { !$0.hasPrefix(".") && isDirectory(url.appendingPathComponent($0)) })
    }

    /// Image files below `dir` (recursively, hidden entries skipped) as paths relative to
    /// `dir`, sorted; `ignored` counts other regular files.
    static func images(in folder: URL) -> (files: [String], ignored: Int) {
        var files: [String] = []
        var ignored = 0
        // Class folders are often symbolic links into a shared copy of the dataset.
        let dir = folder.resolvingSymlinksInPath()
        let base = dir.standardizedFileURL.path
        guard let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: [.isRegularFileKey],
                                                     options: [.skipsHiddenFiles]) else { return ([], 0) }
        for case let url as URL in e {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            let path = url.standardizedFileURL.path
            let rel = path.hasPrefix(base + "/") ? String(path.dropFirst(base.count + 1)) : url.lastPathComponent
            if isImageName(rel) { files.append(rel) } else { ignored += 1 }
        }
        return (sorted(files), ignored)
    }

    /// Adds every image under root/<class>/ for the given classes (label = position in
    /// `classes`); returns the item numbers and the count of ignored non-image files.
    static func addClassFolders(_ root: URL, classes: [String], to source: ImageFileSource, namePrefix: String) -> ([Int], Int) {
        var items: [Int] = []
        var ignored = 0
        for (label, cls) in classes.enumerated() {
            let dir = root.appendingPathComponent(cls)
            let (files, ign) = images(in: dir)
            ignored += ign
            for f in files {
                items.append(source.add(path: dir.appendingPathComponent(f).path, name: "\(namePrefix)\(cls)/\(f)", label: label))
            }
        }
        return (items, ignored)
    }

    static func noteIgnored(_ count: Int, options: PrepOptions) {
        guard count > 0, options.progress else { return }
        FileHandle.standardError.write(Data("Ignored \(count) files that are not .png/.jpg/.jpeg.\n".utf8))
    }
}
