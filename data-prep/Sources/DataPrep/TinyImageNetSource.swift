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
        let fm = FileManager.default
        let wnidsURL = source.appendingPathComponent("wnids.txt")
        let annURL = source.appendingPathComponent("val/val_annotations.txt")
        guard let wnidText = try? String(contentsOf: wnidsURL, encoding: .utf8),
              ImageTree.isDirectory(source.appendingPathComponent("train")) else {
            var hint = ""
            if ImageTree.isDirectory(source.appendingPathComponent("tiny-imagenet-200")) {
                hint = "Pass \(source.appendingPathComponent("tiny-imagenet-200").path) instead."
            }
            throw SourceProblem.error(dataset, source, expected: expected, hint: hint)
        }
        let classes = ImageTree.sorted(wnidText.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        let labelOf = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })

        var names = classes
        if let words = try? String(contentsOf: source.appendingPathComponent("words.txt"), encoding: .utf8) {
            var table: [String: String] = [:]
            for line in words.split(whereSeparator: \.isNewline) {
                let parts = line.split(separator: "\t", maxSplits: 1).map(String.init)
                if parts.count == 2, labelOf[parts[0]] != nil { table[parts[0]] = parts[1] }
            }
            names = classes.map { table[$0] ?? $0 }
        }

        let size = options.size ?? 64
        let src = ImageFileSource(size: size)
        var trainItems: [Int] = []
        var ignored = 0
        let trainRoot = source.appendingPathComponent("train")
        for (label, wnid) in classes.enumerated() {
            var dir = trainRoot.appendingPathComponent(wnid).appendingPathComponent("images")
            if !ImageTree.isDirectory(dir) { dir = trainRoot.appendingPathComponent(wnid) }
            guard ImageTree.isDirectory(dir) else {
                throw SourceProblem.error(dataset, source, expected: expected, hint: "train/\(wnid)/images/ is missing.")
            }
            let (files, ign) = ImageTree.images(in: dir)
            ignored += ign
            let rel = dir.path.dropFirst(source.path.count + 1)
            for f in files { trainItems.append(src.add(path: dir.appendingPathComponent(f).path, name: "\(rel)/\(f)", label: label)) }
        }
        guard let ann = try? String(contentsOf: annURL, encoding: .utf8) else {
            throw SourceProblem.error(dataset, source, expected: expected, hint: "val/val_annotations.txt is missing.")
        }
        var testItems: [Int] = []
        var rows: [(String, Int)] = []
        for line in ann.split(whereSeparator: \.isNewline) {
            let f = line.split(separator: "\t").map(String.init)
            guard f.count >= 2 else { continue }
            guard let label = labelOf[f[1]] else {
                throw FFError(.source, "\(annURL.path) labels \(f[0]) with \(f[1]), which is not in wnids.txt; the "
                    + "files do not belong together.", file: annURL)
            }
            rows.append((f[0], label))
        }
        for (file, label) in rows.sorted(by: { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }) {
            let path = source.appendingPathComponent("val/images").appendingPathComponent(file)
            // A listed but absent file is reported like an unreadable one.
            testItems.append(src.add(path: path.path, name: "val/images/\(file)", label: label))
        }
        if !fm.fileExists(atPath: source.appendingPathComponent("val/images").path) {
            throw SourceProblem.error(dataset, source, expected: expected, hint: "val/images/ is missing.")
        }
        ImageTree.noteIgnored(ignored, options: options)
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
