import FFEngine
import Foundation

/// Tiny-ImageNet as distributed (tiny-imagenet-200.zip, extracted): wnids.txt,
/// train/<wnid>/images/*.JPEG, val/images/*.JPEG with val/val_annotations.txt, and
/// optionally words.txt for class names. The official val (labelled) becomes `test`; the
/// official test (unlabelled) is not used.
enum TinyImageNetSource {
    static let expected = "the extracted tiny-imagenet-200 folder: wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG "
        + "and val/val_annotations.txt (words.txt optional)."

    static func convert(source: URL, output: URL, options: PrepOptions) throws -> PrepResult {
        let dataset = "tiny-imagenet"
        let wnidsURL = source.appendingPathComponent("wnids.txt")
        let annURL = source.appendingPathComponent("val/val_annotations.txt")
        guard FileManager.default.fileExists(atPath: wnidsURL.path),
              ImageTree.isDirectory(source.appendingPathComponent("train")) else {
            var hint = ""
            if ImageTree.isDirectory(source.appendingPathComponent("tiny-imagenet-200")) {
                hint = "Pass \(source.appendingPathComponent("tiny-imagenet-200").path) instead."
            }
            throw SourceProblem.error(dataset, source, expected: expected, hint: hint)
        }
        let classes = ImageTree.sorted(try ImageTree.readClassList(wnidsURL, what: "wnids.txt"))
        let labelOf = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })

        var names = classes
        if let words = try? String(contentsOf: source.appendingPathComponent("words.txt"), encoding: .utf8) {
            var table: [String: String] = [:]
            for line in words.split(whereSeparator: \.isNewline) {
                let parts = line.split(separator: "\t", maxSplits: 1).map(String.init)
                if parts.count == 2, labelOf[parts[0]] != nil, table[parts[0]] == nil { table[parts[0]] = parts[1] }
            }
            names = classes.map { table[$0] ?? $0 }
        }

        let size = options.size ?? 64
        let src = ImageFileSource(size: size, maxPixels: options.maxImagePixels)
        var trainItems: [Int] = []
        var notes = ImageTree.Notes()
        let trainRoot = FSPath(source.appendingPathComponent("train").path)
        for (label, wnid) in classes.enumerated() {
            var dir = trainRoot.appending(wnid).appending("images")
            var rel = "train/\(wnid)/images/"
            if !FileTree.isDirectory(dir) {
                dir = trainRoot.appending(wnid)
                rel = "train/\(wnid)/"
            }
            guard FileTree.isDirectory(dir) else {
                throw SourceProblem.error(dataset, source, expected: expected, hint: "train/\(wnid)/images/ is missing.")
            }
            let got = try ImageTree.addImages(in: dir, label: label, to: src, namePrefix: rel, notes: &notes)
            if got.isEmpty {
                throw FFError(.source, "\(dir.display) holds no images; class \(wnid) of wnids.txt would have none. "
                    + "The source is incomplete; extract tiny-imagenet-200.zip again.", path: dir.display)
            }
            trainItems += got
        }
        guard let ann = try? String(contentsOf: annURL, encoding: .utf8) else {
            throw SourceProblem.error(dataset, source, expected: expected, hint: "val/val_annotations.txt is missing.")
        }
        if !ImageTree.isDirectory(source.appendingPathComponent("val/images")) {
            throw SourceProblem.error(dataset, source, expected: expected, hint: "val/images/ is missing.")
        }
        var testItems: [Int] = []
        var rows: [(String, Int)] = []
        var seen: [String: Int] = [:]
        for (i, line) in ann.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let f = line.split(separator: "\t").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            if f.allSatisfy(\.isEmpty) { continue }
            guard f.count >= 2 else {
                throw FFError(.source, "\(annURL.path) line \(i + 1) has no tab-separated label: '\(line.prefix(80))'.", file: annURL)
            }
            // A plain file name inside val/images: no path components, nothing hidden.
            let file = f[0]
            if file.isEmpty || file.hasPrefix(".") || file.contains("/") || file.contains("\\") || file.contains("\0") {
                throw FFError(.source, "\(annURL.path) line \(i + 1) names '\(file)', which is not a file name inside "
                    + "val/images (no '/', no leading '.'); the annotations are damaged or crafted.", file: annURL)
            }
            if let first = seen[file] {
                throw FFError(.source, "\(annURL.path) lists \(file) twice (lines \(first) and \(i + 1)); the image would be "
                    + "tested twice. Remove the duplicate line.", file: annURL)
            }
            seen[file] = i + 1
            guard let label = labelOf[f[1]] else {
                throw FFError(.source, "\(annURL.path) labels \(file) with \(f[1]), which is not in wnids.txt; the "
                    + "files do not belong together.", file: annURL)
            }
            rows.append((file, label))
        }
        let valImages = FSPath(source.appendingPathComponent("val/images").path)
        for (file, label) in rows.sorted(by: { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }) {
            // A listed but absent file is reported like an unreadable one.
            testItems.append(src.add(path: valImages.appending(file), name: "val/images/\(file)", label: label))
        }
        ImageTree.printNotes(notes, options: options)
        let defaultVal = DataPrep.defaultVal(dataset, trainCount: trainItems.count)
        let val = options.val ?? defaultVal
        let split = try Holdout.split(trainItems, val: val, seed: options.seed, dataset: dataset) { src.labels(of: $0)[0] }
        let command = "repro prep tiny-imagenet --src \(source.path)"
            + PrepCommandText.flags(options, val: val, defaultVal: defaultVal, size: size, defaultSize: 64)
        let plan = ConversionPlan(
            dataset: dataset, source: "Tiny-ImageNet (tiny-imagenet-200; official val as test)",
            command: command, labelSets: [("labels", names)],
            splits: [("train", split.train), ("val", split.val), ("test", testItems)],
            val: val, seed: options.seed, size: size, shardBytes: options.shardBytes)
        return try Converter.run(plan, source: src, output: output, options: options)
    }
}
