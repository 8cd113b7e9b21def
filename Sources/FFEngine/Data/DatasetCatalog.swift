import Foundation

/// The datasets the recipes use: where they live by default, how to create them, and what
/// they hold once converted.
public enum DatasetCatalog {
    public struct Entry {
        public let name: String
        /// Default directory, relative to the data root ("data/<name>").
        public let directory: String
        /// The command that creates `directory` (paths in <...> are the user's downloads).
        public let prepCommand: String
        public let classCount: Int
        /// Stored [height, width, channels].
        public let imageSize: [Int]
        public let splits: [String]
        public let labelKeys: [String]
        /// Where the source comes from, for the error message.
        public let sourceHint: String
    }

    public static let entries: [String: Entry] = {
        func e(_ name: String, _ cmd: String, _ classes: Int, _ size: [Int], _ hint: String,
               labels: [String] = ["labels"]) -> Entry {
            Entry(name: name, directory: "data/\(name)", prepCommand: cmd, classCount: classes, imageSize: size,
                  splits: ShardFormat.splits, labelKeys: labels, sourceHint: hint)
        }
        let list = [
            e("mnist", "repro prep mnist --src <mnist-dir> --out data/mnist", 10, [28, 28, 1],
              "<mnist-dir> holds the four IDX files (train-images-idx3-ubyte.gz, ...)."),
            e("fashion-mnist", "repro prep fashion-mnist --out data/fashion-mnist", 10, [28, 28, 1],
              "The source defaults to /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist); "
                + "add --src <dir> for another copy of the four IDX files."),
            e("cifar10", "repro prep cifar10 --src <cifar-10-binary.tar.gz> --out data/cifar10", 10, [32, 32, 3],
              "The source is the official binary version (cifar-10-binary.tar.gz or its extracted folder)."),
            e("cifar100", "repro prep cifar100 --src <cifar-100-binary.tar.gz> --out data/cifar100", 100, [32, 32, 3],
              "The source is the official binary version (cifar-100-binary.tar.gz or its extracted folder).",
              labels: ["labels", "coarse_labels"]),
            e("imagenet100", "repro prep imagenet100 --src <ILSVRC2012-root> --out data/imagenet100 --size 256", 100,
              [256, 256, 3], "<ILSVRC2012-root> has train/<wnid>/ and val/<wnid>/ folders of JPEGs."),
            e("imagenet", "repro prep imagefolder --src <ILSVRC2012-root> --size 256 --name imagenet --val 10000 --out data/imagenet",
              1000, [256, 256, 3], "<ILSVRC2012-root> has train/<wnid>/ and val/<wnid>/ folders of JPEGs (the official "
                + "val images sorted into class folders); the official val becomes the test split."),
            e("tiny-imagenet", "repro prep tiny-imagenet --src <tiny-imagenet-200> --out data/tiny-imagenet", 200,
              [64, 64, 3], "<tiny-imagenet-200> is the extracted tiny-imagenet-200.zip (wnids.txt, train/, val/)."),
            e("imagenette", "repro prep imagenette --src <imagenette2-160.tgz> --out data/imagenette", 10, [160, 160, 3],
              "<imagenette2-160.tgz> is fast.ai's official archive (or imagenette2-320.tgz, or either extracted folder "
                + "with train/<wnid>/ and val/<wnid>/)."),
        ]
        return Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
    }()

    public static var names: [String] { entries.keys.sorted() }

    public static func entry(_ name: String) throws -> Entry {
        guard let e = entries[name] else {
            throw FFError(.invalidArgument, "Unknown dataset '\(name)'; known datasets: \(names.joined(separator: ", ")).")
        }
        return e
    }

    /// The data root: $FFREPRO_DATA if set, else ./data.
    public static var dataRoot: URL {
        if let env = ProcessInfo.processInfo.environment["FFREPRO_DATA"], !env.isEmpty {
            return URL(fileURLWithPath: env, isDirectory: true)
        }
        return URL(fileURLWithPath: "data", isDirectory: true)
    }

    /// <data root>/<name>.
    public static func defaultDirectory(for name: String) -> URL {
        dataRoot.appendingPathComponent(name, isDirectory: true)
    }

    /// Checks that `directory` (default: the default directory) holds a finished conversion
    /// of `name`, and returns its index. The error names the directory, says whether it is
    /// missing or incomplete, and prints the command that creates it.
    @discardableResult
    public static func check(_ name: String, directory: URL? = nil) throws -> DatasetIndex {
        let entry = try entry(name)
        let dir = directory ?? defaultDirectory(for: name)
        let command = directory == nil ? entry.prepCommand
            : entry.prepCommand.replacingOccurrences(of: "--out \(entry.directory)", with: "--out \(dir.path)")
        let indexURL = dir.appendingPathComponent(ShardFormat.indexFileName)
        var isDir: ObjCBool = false
        if !FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir) || !isDir.boolValue {
            throw FFError(.missing, "Dataset '\(name)' is missing: \(dir.path) does not exist. Create it with:\n  "
                + "\(command)\n\(entry.sourceHint)", file: dir)
        }
        if !FileManager.default.fileExists(atPath: indexURL.path) {
            throw FFError(.missing, "Dataset '\(name)' in \(dir.path) is incomplete: it has no \(ShardFormat.indexFileName), "
                + "so its conversion did not finish. Run again (it resumes from the finished shards):\n  \(command)\n"
                + entry.sourceHint, file: dir)
        }
        let index: DatasetIndex
        do {
            index = try DatasetIndex.load(directory: dir)
        } catch let e as FFError {
            throw FFError(e.kind, "Dataset '\(name)' in \(dir.path) is unusable: \(e.message) To recreate it, delete "
                + "the directory and run:\n  \(command)", file: dir)
        }
        if index.dataset != name {
            throw FFError(.format, "\(dir.path) holds dataset '\(index.dataset)', not '\(name)'. Convert '\(name)' with:\n  "
                + command, file: dir)
        }
        return index
    }
}
