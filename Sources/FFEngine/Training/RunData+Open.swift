import Foundation

extension RunData {
    /// The augmentation a config asks for, on stored images of `stored` x `stored`.
    public static func trainAugmentation(_ c: RecipeConfig, storedSize: Int) -> Augmentation {
        let size = c.inputSize ?? storedSize
        switch c.augment {
        case "crop-flip": return .randomCrop(size: size, padding: c.cropPadding, flip: true)
        case "rrc-flip": return .randomResizedCrop(size: size, scaleMin: c.rrcScaleMin, flip: true)
        default: return size == storedSize ? .none : .centerCrop(size: size)
        }
    }

    /// Opens the converted dataset of a recipe (`directory`, or data/<dataset>): train with
    /// the recipe's augmentation and subset, val/test (when converted) with the evaluation
    /// transform. A missing or unfinished dataset raises an error that prints the exact
    /// `repro prep` command creating it.
    public static func open(_ c: RecipeConfig, directory: URL?, splits: Set<String> = ["train", "val", "test"]) throws -> RunData {
        let index = try DatasetCatalog.check(c.dataset, directory: directory)
        let dir = directory ?? DatasetCatalog.defaultDirectory(for: c.dataset)
        if index.labelSets[c.labels] == nil {
            throw FFError(.invalidArgument, "Dataset \(dir.path) has no '\(c.labels)' labels (it has: "
                + index.labelSets.keys.sorted().joined(separator: ", ") + ").", file: dir)
        }
        let stored = min(index.imageSize[0], index.imageSize[1])
        let aug = trainAugmentation(c, storedSize: stored)
        func loader(_ split: String, train: Bool) throws -> ShardLoader? {
            guard splits.contains(split), index.splits[split] != nil else { return nil }
            let opts = LoaderOptions(seed: c.seed, shuffle: train, augmentation: train ? aug : aug.evaluation,
                                     subset: train ? c.subset : c.evalSubset, labelKey: c.labels)
            return try ShardLoader(directory: dir, split: split, options: opts)
        }
        // The first requested split that exists stands in for `train` when train is not asked for (eval).
        var first = try loader("train", train: true)
        for s in ["val", "test"] where first == nil && !splits.contains("train") && splits.contains(s) {
            first = try loader(s, train: false)
        }
        guard let train = first else {
            let wanted = splits.sorted().map { "'\($0)'" }.joined(separator: ", ")
            throw FFError(.missing, "Dataset \(dir.path) has no \(wanted) split (it has: "
                + index.splits.keys.sorted().joined(separator: ", ") + "); convert it again with the command "
                + "`repro prep \(c.dataset) ...` (see `repro prep --help`).", file: dir)
        }
        return RunData(train: train, val: try loader("val", train: false), test: try loader("test", train: false))
    }
}
