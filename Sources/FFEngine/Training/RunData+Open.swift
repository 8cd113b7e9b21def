import Foundation

/// What a run knows about its converted dataset (from index.json). Stored in checkpoints
/// and results, so a number names the exact data it came from and a checkpoint can
/// preprocess new images without the dataset.
public struct DatasetInfo: Codable, Equatable {
    public var name: String
    /// Absolute path of the directory the run read.
    public var directory: String
    /// The conversion's fingerprint (index.json `conversion.fingerprint`): equal
    /// fingerprints mean the same images, labels and splits.
    public var fingerprint: String
    /// [height, width, channels] of the stored images.
    public var imageSize: [Int]
    /// Per-channel mean and standard deviation of pixel/255 over the train split.
    public var channelMean: [Double]
    public var channelStd: [Double]
    public var labelKey: String
    public var classNames: [String]
    /// Converted by the catalog's converter for this name (`repro prep cifar10`), not an
    /// image folder that happens to carry a built-in name.
    public var official: Bool
    /// Images per split of the whole conversion (before any subset).
    public var splitCounts: [String: Int]

    public init(name: String, directory: String, fingerprint: String, imageSize: [Int], channelMean: [Double],
                channelStd: [Double], labelKey: String, classNames: [String], official: Bool, splitCounts: [String: Int]) {
        self.name = name
        self.directory = directory
        self.fingerprint = fingerprint
        self.imageSize = imageSize
        self.channelMean = channelMean
        self.channelStd = channelStd
        self.labelKey = labelKey
        self.classNames = classNames
        self.official = official
        self.splitCounts = splitCounts
    }

    public init(index: DatasetIndex, directory: URL, labelKey: String) {
        name = index.dataset
        self.directory = directory.standardizedFileURL.path
        fingerprint = index.conversion.fingerprint
        imageSize = index.imageSize
        channelMean = index.channelMean
        channelStd = index.channelStd
        self.labelKey = labelKey
        classNames = index.labelSets[labelKey] ?? []
        // The catalog's own converter made it (`repro prep cifar10`, or `repro prep
        // imagefolder` for the catalog's image-folder datasets such as imagenette).
        func converter(_ command: String) -> String? {
            let words = command.split(separator: " ")
            return words.count >= 3 ? String(words[2]) : nil
        }
        official = DatasetCatalog.entries[index.dataset].map {
            converter($0.prepCommand) == converter(index.conversion.command)
        } ?? false
        splitCounts = index.splits.mapValues(\.count)
    }
}

/// The dataset a run will read, and the config adapted to it.
public struct DatasetChoice {
    public var config: RecipeConfig
    public var directory: URL
    public var index: DatasetIndex
    /// One line saying how the recipe was adapted to a dataset other than its own; nil
    /// when the data is the recipe's dataset.
    public var adaptation: String?
    public var info: DatasetInfo { DatasetInfo(index: index, directory: directory, labelKey: config.labels) }
}

extension RunData {
    /// The augmentation a config asks for, on stored images of `stored` x `stored`.
    public static func trainAugmentation(_ c: RecipeConfig, storedSize: Int) -> Augmentation {
        let size = c.inputSize ?? storedSize
        switch c.augment {
        case "flip": return .randomCrop(size: size, padding: 0, flip: true)
        case "crop-flip": return .randomCrop(size: size, padding: c.cropPadding, flip: true)
        case "rrc-flip": return .randomResizedCrop(size: size, scaleMin: c.rrcScaleMin, flip: true)
        default: return size == storedSize ? .none : .centerCrop(size: size)
        }
    }

    /// The input scaling a config asks for (`input_norm`).
    public static func inputScaling(_ c: RecipeConfig) -> InputScaling {
        c.inputNorm == "rms-scale" ? .rms(eps: Float(c.rmsEps)) : .standardize
    }

    /// The colour augmentation of the training split (`color_jitter`, `random_grayscale`), nil if none.
    public static func colorAugmentation(_ c: RecipeConfig) -> ColorAugmentation? {
        let j = c.colorJitter ?? []
        guard j.contains(where: { $0 > 0 }) || c.randomGrayscale > 0 else { return nil }
        return ColorAugmentation(brightness: j[0], contrast: j[1], saturation: j[2], hue: j[3], grayscale: c.randomGrayscale)
    }

    /// Finds the dataset of a run: `directory` (any converted dataset), or data/<dataset>.
    /// The recipe's dataset is a default, not a lock: for another dataset the config takes
    /// its name, and an `input_size` larger than its images is dropped (the network then
    /// reads the stored size; channels and classes always come from the shards). A missing
    /// or unfinished dataset raises an error that prints the `repro prep` command creating it.
    public static func choose(_ c: RecipeConfig, directory: URL?) throws -> DatasetChoice {
        let dir = directory ?? DatasetCatalog.defaultDirectory(for: c.dataset)
        let index: DatasetIndex
        let hasIndex = FileManager.default.fileExists(atPath: dir.appendingPathComponent(ShardFormat.indexFileName).path)
        if let given = directory, !hasIndex, let error = notAConversion(given, dataset: c.dataset) { throw error }
        if directory == nil || !hasIndex, DatasetCatalog.entries[c.dataset] != nil {
            // The catalog's messages name the prep command; for the default directory the
            // stored name must match too (data/cifar10 holding something else is a mistake).
            index = try directory == nil ? DatasetCatalog.check(c.dataset) : DatasetCatalog.check(c.dataset, directory: dir)
        } else if !hasIndex {
            throw FFError(.missing, "There is no converted dataset in \(dir.path)"
                + (directory == nil ? " (the default directory of dataset '\(c.dataset)')" : "")
                + ". Convert an image folder with:\n  repro prep imagefolder --src <folder> --size <side> --out \(dir.path)"
                + (directory == nil ? " --name \(c.dataset)" : "") + "\nor pass --data DIR of a dataset made by `repro prep`.",
                file: dir)
        } else {
            index = try DatasetIndex.load(directory: dir)
        }
        if index.labelSets[c.labels] == nil {
            throw FFError(.invalidArgument, "Dataset \(dir.path) has no '\(c.labels)' labels (it has: "
                + index.labelSets.keys.sorted().joined(separator: ", ") + ").", file: dir)
        }
        var config = c
        var note: String?
        if index.dataset != c.dataset {
            config.dataset = index.dataset
            let stored = min(index.imageSize[0], index.imageSize[1])
            var changes: [String] = []
            if let s = c.inputSize, s > stored {
                config.inputSize = nil
                changes.append("input_size \(s) dropped (the images are \(stored) px)")
            }
            let classes = index.labelSets[c.labels]?.count ?? 0
            let side = config.inputSize ?? stored
            let own = DatasetCatalog.entries[c.dataset].map {
                " (the recipe's \(c.dataset): \($0.imageSize[2])x\($0.imageSize[0])x\($0.imageSize[1]), \($0.classCount) classes)"
            } ?? ""
            note = "\(c.name) adapted to dataset '\(index.dataset)': input \(index.imageSize[2])x\(side)x\(side), "
                + "\(classes) classes\(own)" + (changes.isEmpty ? "" : "; " + changes.joined(separator: "; "))
                + "; no paper comparison"
        }
        return DatasetChoice(config: config, directory: dir, index: index, adaptation: note)
    }

    /// The error for a `--data` folder that is neither a conversion nor an unfinished one (no
    /// shards), so the message does not ask to convert into it: an image folder is a source
    /// for `repro prep imagefolder`; any other non-empty folder (`/`, a home folder) is simply
    /// the wrong one. Nil for a missing, empty or partly converted folder (the catalog's
    /// messages cover those).
    static func notAConversion(_ dir: URL, dataset: String) -> FFError? {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue,
              let names = try? fm.contentsOfDirectory(atPath: dir.path), !names.isEmpty,
              !names.contains(where: { $0.hasSuffix(".h5") || AtomicFile.isTemporaryName($0) }) else { return nil }
        let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]
        func hasImages(_ d: URL, depth: Int) -> Bool {
            let inside = ((try? fm.contentsOfDirectory(atPath: d.path)) ?? []).sorted().prefix(200)
            if inside.contains(where: { imageExtensions.contains(($0 as NSString).pathExtension.lowercased()) }) { return true }
            return depth > 0 && inside.contains { hasImages(d.appendingPathComponent($0), depth: depth - 1) }
        }
        let own = DatasetCatalog.entries[dataset].map { "\n  \($0.prepCommand)" } ?? ""
        if hasImages(dir, depth: 2) {
            let name = dir.standardizedFileURL.lastPathComponent
            return FFError(.missing, "\(dir.path) holds images, not a converted dataset. Convert it into its own "
                + "directory with:\n  repro prep imagefolder --src \(dir.path) --size <side> --out data/\(name)\n"
                + "then pass --data data/\(name).", file: dir)
        }
        return FFError(.missing, "\(dir.path) is not a converted dataset (it has no \(ShardFormat.indexFileName) and no "
            + "shards). Pass --data the directory `repro prep` wrote\(own.isEmpty ? "." : ", or create '\(dataset)' with:\(own)")",
            file: dir)
    }

    /// Opens a chosen dataset for training: train with the recipe's augmentation and
    /// subset, val/test (when converted) with the evaluation transform.
    public static func open(_ choice: DatasetChoice) throws -> RunData {
        let c = choice.config, dir = choice.directory
        guard choice.index.splits["train"] != nil else {
            throw FFError(.missing, "Dataset \(dir.path) has no train split; convert it again with the command "
                + "`repro prep \(c.dataset) ...` (see `repro prep --help`).", file: dir)
        }
        let aug = trainAugmentation(c, storedSize: c.resize ?? min(choice.index.imageSize[0], choice.index.imageSize[1]))
        let train = try ShardLoader(directory: dir, split: "train", options: LoaderOptions(
            seed: c.seed, shuffle: true, augmentation: aug, subset: c.subset, labelKey: c.labels,
            subsetSeed: c.subsetSeed, resize: c.resize, color: colorAugmentation(c), scaling: inputScaling(c)))
        // An empty split is no split: nothing is measured on it, so nothing is reported as 0 %.
        func eval(_ split: String) throws -> ShardLoader? {
            (choice.index.splits[split]?.count ?? 0) == 0 ? nil : try evaluationLoader(choice, split: split)
        }
        return RunData(train: train, val: try eval("val"), test: try eval("test"), dataset: choice.info)
    }

    /// One split with the evaluation transform and `eval_subset` (for `repro eval`).
    public static func evaluationLoader(_ choice: DatasetChoice, split: String) throws -> ShardLoader {
        let c = choice.config
        guard choice.index.splits[split] != nil else {
            throw FFError(.invalidArgument, "Dataset \(choice.directory.path) has no '\(split)' split; it has "
                + choice.index.splits.keys.sorted().joined(separator: ", ") + ".", file: choice.directory)
        }
        if choice.index.splits[split]?.count == 0 {
            let others = choice.index.splits.filter { $0.value.count > 0 }.keys.sorted()
            throw FFError(.invalidArgument, "Dataset \(choice.directory.path) has no images in its '\(split)' split "
                + "(splits with images: \(others.isEmpty ? "none" : others.joined(separator: ", "))); there is nothing "
                + "to evaluate.", file: choice.directory)
        }
        let aug = trainAugmentation(c, storedSize: c.resize ?? min(choice.index.imageSize[0], choice.index.imageSize[1])).evaluation
        return try ShardLoader(directory: choice.directory, split: split, options: LoaderOptions(
            seed: c.seed, shuffle: false, augmentation: aug, subset: c.evalSubset, labelKey: c.labels,
            resize: c.resize, scaling: inputScaling(c)))
    }

    /// `choose` then `open`.
    public static func open(_ c: RecipeConfig, directory: URL?) throws -> RunData {
        try open(choose(c, directory: directory))
    }
}
