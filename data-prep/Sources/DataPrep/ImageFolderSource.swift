import FFEngine
import Foundation

/// `imagefolder` and `imagenet100`: trees of class folders of PNG/JPEG files.
enum ImageFolderSource {
    static let expected = "ROOT/<class>/*.{png,jpg,jpeg} (class folders of images), or ROOT/train/<class>/... next to "
        + "ROOT/val/<class>/... and/or ROOT/test/<class>/..."

    /// Layout rule: if ROOT's subfolders are only train/val/test and train/ is among them,
    /// they are splits; otherwise ROOT's subfolders are the classes (all training data).
    /// `classTitles` maps class folder names to the names stored in the index (Imagenette's
    /// wnids to readable names); `command` replaces the imagefolder command in the index.
    static func convertFolder(source: URL, output: URL, options: PrepOptions, classTitles: [String: String] = [:],
                              command base: String? = nil) throws -> PrepResult {
        guard let size = options.size else {
            throw FFError(.invalidArgument, "imagefolder needs --size N (the stored side length, e.g. 64 or 256).")
        }
        let dataset = options.name ?? source.standardizedFileURL.lastPathComponent
        guard ImageTree.isDirectory(source) else { throw SourceProblem.error("imagefolder", source, expected: expected) }
        let root = FSPath(source.path)
        let top = try FileTree.subdirectories(root).map(\.display)
        let splitLayout = top.contains("train") && top.allSatisfy { ShardFormat.splits.contains($0) }
        let trainRoot = splitLayout ? root.appending("train") : root
        let classDirs = try ImageTree.classFolders(trainRoot)
        guard !classDirs.isEmpty else {
            throw SourceProblem.error("imagefolder", source, expected: expected, hint: "No class folders were found in \(trainRoot.display).")
        }
        let classes = try distinctNames(classDirs, in: trainRoot)
        let src = ImageFileSource(size: size, maxPixels: options.maxImagePixels, channels: options.channels)
        var notes = ImageTree.Notes()
        var trainItems = try ImageTree.addClassFolders(trainRoot, classes: classDirs, to: src,
                                                       namePrefix: splitLayout ? "train/" : "", notes: &notes)
        guard !trainItems.isEmpty else {
            throw SourceProblem.error("imagefolder", source, expected: expected,
                                      hint: "The class folders of \(trainRoot.display) contain no .png/.jpg/.jpeg files.")
        }
        if !notes.emptyClasses.isEmpty {
            throw FFError(.source, "Class folders without any image: \(notes.emptyClasses.prefix(10).joined(separator: ", "))"
                + "\(notes.emptyClasses.count > 10 ? ", ..." : ""). Each would still become a class (a label that no "
                + "image has). Remove them, or add their images.", file: source)
        }
        var official: [String: [Int]] = [:]
        for split in ["val", "test"] where splitLayout && top.contains(split) {
            let splitRoot = root.appending(split)
            let unknown = try ImageTree.classFolders(splitRoot).map(\.display).filter { !classes.contains($0) }
            if !unknown.isEmpty {
                throw SourceProblem.error("imagefolder", source, expected: expected, hint: "\(splitRoot.display) has class folders "
                    + "that train/ lacks: \(unknown.prefix(5).joined(separator: ", ")).")
            }
            let present = Set(try ImageTree.classFolders(splitRoot))
            var items: [Int] = []
            var splitNotes = ImageTree.Notes()
            for (label, cls) in classDirs.enumerated() where present.contains(cls) {
                items += try ImageTree.addImages(in: splitRoot.appending(cls), label: label, to: src,
                                                 namePrefix: "\(split)/\(cls.display)/", notes: &splitNotes)
            }
            notes.add(splitNotes)
            official[split] = items
        }
        ImageTree.printNotes(notes, options: options)
        // With both val/ and test/, both are used as they are; with only val/, it is the
        // test split (as for ImageNet) and val is held out from train.
        var valItems: [Int], testItems: [Int], val: Int
        // The default never depends on --name: an image folder called "cifar10" is still an image folder.
        let defaultVal = DataPrep.defaultVal("imagefolder", trainCount: trainItems.count)
        if let v = official["val"], let t = official["test"] {
            if let n = options.val, n > 0 {
                throw FFError(.invalidArgument, "\(source.path) has its own val/ folder, so --val \(n) cannot hold out "
                    + "more; leave --val out.", file: source)
            }
            (valItems, testItems, val) = (v, t, 0)
        } else {
            val = options.val ?? defaultVal
            let split = try Holdout.split(trainItems, val: val, seed: options.seed, dataset: dataset) { src.labels(of: $0)[0] }
            trainItems = split.train
            valItems = split.val
            testItems = official["val"] ?? official["test"] ?? []
        }
        var command = base ?? "repro prep imagefolder --src \(source.path)"
        command += PrepCommandText.flags(options, val: val, defaultVal: splitLayout && official.count == 2 ? 0 : defaultVal,
                                         size: size, defaultSize: nil)
        let plan = ConversionPlan(
            dataset: dataset, source: "image folder \(source.standardizedFileURL.lastPathComponent) (\(classes.count) classes)",
            command: command, labelSets: [("labels", classes.map { classTitles[$0] ?? $0 })],
            splits: [("train", trainItems), ("val", valItems), ("test", testItems)],
            val: val, seed: options.seed, size: size, shardBytes: options.shardBytes)
        return try Converter.run(plan, source: src, output: output, options: options)
    }

    static func convertImageNet100(source: URL, output: URL, options: PrepOptions) throws -> PrepResult {
        let dataset = "imagenet100"
        let size = options.size ?? 256
        let expected = "the ILSVRC-2012 root with train/<wnid>/*.JPEG and val/<wnid>/*.JPEG class folders."
        var wnids = ImageNet100.classes
        if let list = options.classList { wnids = try ImageTree.readClassList(list, what: "the class list") }
        let classes = ImageTree.sorted(wnids)
        let train = source.appendingPathComponent("train"), valRoot = source.appendingPathComponent("val")
        guard ImageTree.isDirectory(train), ImageTree.isDirectory(valRoot) else {
            throw SourceProblem.error(dataset, source, expected: expected)
        }
        for (root, name) in [(train, "train"), (valRoot, "val")] {
            let present = Set(try ImageTree.classFolders(FSPath(root.path)).map(\.display))
            let missing = classes.filter { !present.contains($0) }
            if !missing.isEmpty {
                var hint = "\(name)/ lacks \(missing.count) of the \(classes.count) ImageNet-100 classes, e.g. "
                    + missing.prefix(5).joined(separator: ", ") + "."
                if name == "val" && present.isEmpty {
                    hint += " The official val images must first be sorted into class folders (val/<wnid>/), as the "
                        + "usual ILSVRC-2012 preparation scripts do."
                }
                throw SourceProblem.error(dataset, source, expected: expected, hint: hint)
            }
        }
        let src = ImageFileSource(size: size, maxPixels: options.maxImagePixels)
        var notes = ImageTree.Notes()
        let classDirs = classes.map(FSPath.init)
        var trainItems = try ImageTree.addClassFolders(FSPath(train.path), classes: classDirs, to: src, namePrefix: "train/", notes: &notes)
        let testItems = try ImageTree.addClassFolders(FSPath(valRoot.path), classes: classDirs, to: src, namePrefix: "val/", notes: &notes)
        if !notes.emptyClasses.isEmpty {
            throw FFError(.source, "ImageNet-100 class folders without any image: "
                + notes.emptyClasses.prefix(10).joined(separator: ", ")
                + ". The source is incomplete; copy those classes again.", file: source)
        }
        ImageTree.printNotes(notes, options: options)
        let defaultVal = DataPrep.defaultVal(dataset, trainCount: trainItems.count)
        let val = options.val ?? defaultVal
        let split = try Holdout.split(trainItems, val: val, seed: options.seed, dataset: dataset) { src.labels(of: $0)[0] }
        trainItems = split.train
        var command = "repro prep imagenet100 --src \(source.path)"
        command += PrepCommandText.flags(options, val: val, defaultVal: defaultVal, size: size, defaultSize: 256)
        if let list = options.classList { command += " --classes \(list.path)" }
        let plan = ConversionPlan(
            dataset: dataset, source: "ILSVRC-2012, ImageNet-100 classes (official val as test)",
            command: command, labelSets: [("labels", classes)],
            splits: [("train", trainItems), ("val", split.val), ("test", testItems)],
            val: val, seed: options.seed, size: size, shardBytes: options.shardBytes)
        return try Converter.run(plan, source: src, output: output, options: options)
    }

    /// Display names of class folders, which must stay distinct (names that are not UTF-8
    /// are shown with \xNN escapes, which could in theory meet a real name).
    static func distinctNames(_ dirs: [FSPath], in root: FSPath) throws -> [String] {
        let names = dirs.map(\.display)
        var seen = Set<String>()
        for n in names where !seen.insert(n).inserted {
            throw FFError(.source, "Two class folders of \(root.display) are both shown as '\(n)' (one name is not "
                + "UTF-8); rename one.", path: root.display)
        }
        return names
    }
}
