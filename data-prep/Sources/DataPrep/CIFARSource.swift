import FFEngine
import FFIO
import Foundation

/// CIFAR-10/100, official binary version: records of label byte(s) + 3072 bytes of R, G
/// and B planes (32x32). Items are training records then test records.
final class CIFARSource: ItemSource {
    let imageSize = [32, 32, 3]
    let labelKeys: [String]
    let hundred: Bool
    let records: [UInt8]
    let trainCount: Int
    let recordSize: Int

    init(hundred: Bool, records: [UInt8], trainCount: Int) {
        self.hundred = hundred
        self.records = records
        self.trainCount = trainCount
        recordSize = hundred ? 3074 : 3073
        labelKeys = hundred ? ["labels", "coarse_labels"] : ["labels"]
    }

    var count: Int { records.count / recordSize }

    func labels(of item: Int) -> [Int32] {
        let r = item * recordSize
        return hundred ? [Int32(records[r + 1]), Int32(records[r])] : [Int32(records[r])]
    }

    func name(of item: Int) -> String {
        let file = hundred ? (item < trainCount ? "train.bin" : "test.bin")
            : (item < trainCount ? "data_batch_\(item / 10000 + 1).bin" : "test_batch.bin")
        let local = hundred ? (item < trainCount ? item : item - trainCount) : (item < trainCount ? item % 10000 : item - trainCount)
        return "\(file)#\(local)"
    }

    func decode(_ item: Int, into out: UnsafeMutablePointer<UInt8>) -> String? {
        let base = item * recordSize + (hundred ? 2 : 1)
        records.withUnsafeBufferPointer { r in
            let p = r.baseAddress! + base
            for i in 0..<1024 {
                out[3 * i] = p[i]
                out[3 * i + 1] = p[1024 + i]
                out[3 * i + 2] = p[2048 + i]
            }
        }
        return nil
    }

    static let cifar10Names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    static func convert(hundred: Bool, source: URL, output: URL, options: PrepOptions) throws -> PrepResult {
        let dataset = hundred ? "cifar100" : "cifar10"
        let trainFiles = hundred ? ["train.bin"] : (1...5).map { "data_batch_\($0).bin" }
        let testFiles = hundred ? ["test.bin"] : ["test_batch.bin"]
        let metaFiles = hundred ? ["fine_label_names.txt", "coarse_label_names.txt"] : ["batches.meta.txt"]
        let archive = hundred ? "cifar-100-binary.tar.gz" : "cifar-10-binary.tar.gz"
        let expected = "\(archive), or its extracted folder (\(hundred ? "cifar-100-binary" : "cifar-10-batches-bin")) "
            + "containing \((trainFiles + testFiles).joined(separator: ", "))."
        var files = try gather(source, wanted: trainFiles + testFiles + metaFiles, dataset: dataset, expected: expected)
        let missing = (trainFiles + testFiles).filter { files[$0] == nil }
        if !missing.isEmpty {
            let names = files.keys.sorted()
            var hint = "Missing: \(missing.joined(separator: ", "))."
            if names.contains("data_batch_1") || (names.contains("train") && names.contains("meta")) {
                hint += " This looks like the Python version; download the binary version (\(archive))."
            } else if (hundred && names.contains("data_batch_1.bin")) || (!hundred && names.contains("train.bin")) {
                hint += " This looks like the other CIFAR dataset (CIFAR-\(hundred ? 10 : 100))."
            }
            throw SourceProblem.error(dataset, source, expected: expected, hint: hint)
        }
        let recordSize = hundred ? 3074 : 3073
        var records: [UInt8] = []
        var trainCount = 0
        for (k, f) in (trainFiles + testFiles).enumerated() {
            let data = files.removeValue(forKey: f)!
            guard data.count % recordSize == 0, !data.isEmpty else {
                throw FFError(.source, "\(source.path): \(f) has \(data.count) bytes, not a multiple of the \(recordSize)-byte "
                    + "record; the file is truncated or not the binary version. Download \(archive) again.", file: source)
            }
            records += data
            if k < trainFiles.count { trainCount += data.count / recordSize }
        }
        let src = CIFARSource(hundred: hundred, records: records, trainCount: trainCount)
        for i in 0..<src.count {
            let l = src.labels(of: i)
            if l[0] >= (hundred ? 100 : 10) || (hundred && l[1] >= 20) {
                throw FFError(.source, "\(source.path): record \(src.name(of: i)) has label \(l); the file is damaged.", file: source)
            }
        }
        func names(_ file: String, count: Int, fallback: [String]) -> [String] {
            guard let d = files[file] else { return fallback }
            let list = String(decoding: d, as: UTF8.self).split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            return list.count == count ? list : fallback
        }
        let labelSets: [(key: String, names: [String])] = hundred
            ? [("labels", names("fine_label_names.txt", count: 100, fallback: (0..<100).map { "class\($0)" })),
               ("coarse_labels", names("coarse_label_names.txt", count: 20, fallback: (0..<20).map { "superclass\($0)" }))]
            : [("labels", names("batches.meta.txt", count: 10, fallback: cifar10Names))]
        let defaultVal = DataPrep.defaultVal(dataset, trainCount: trainCount)
        let val = options.val ?? defaultVal
        let (train, held) = try Holdout.split(Array(0..<trainCount), val: val, seed: options.seed, dataset: dataset) { src.labels(of: $0)[0] }
        let plan = ConversionPlan(
            dataset: dataset, source: "CIFAR-\(hundred ? 100 : 10) binary version (\(archive))",
            command: "repro prep \(dataset) --src \(source.path)" + PrepCommandText.flags(options, val: val, defaultVal: defaultVal),
            labelSets: labelSets, splits: [("train", train), ("val", held), ("test", Array(trainCount..<src.count))],
            val: val, seed: options.seed, size: nil, shardBytes: options.shardBytes)
        return try Converter.run(plan, source: src, output: output, options: options)
    }

    /// Reads the wanted files (by base name) from a .tar.gz/.tar archive or a folder (the
    /// files directly inside it or inside one subfolder).
    static func gather(_ source: URL, wanted: [String], dataset: String, expected: String) throws -> [String: [UInt8]] {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: source.path, isDirectory: &isDir) else {
            throw SourceProblem.error(dataset, source, expected: expected)
        }
        var out: [String: [UInt8]] = [:]
        if !isDir.boolValue {
            var data: UnsafeMutablePointer<UInt8>? = nil
            var len = 0
            guard ffio_read_file(source.path, &data, &len) == 0, let d = data else {
                throw FFError(.source, "Cannot read \(source.path): \(String(cString: ffio_last_error())). Download it again.", file: source)
            }
            let bytes = Array(UnsafeBufferPointer(start: d, count: len))
            ffio_free(d)
            guard let entries = Tar.entries(bytes) else {
                throw SourceProblem.error(dataset, source, expected: expected, hint: "The file is not a (gzip-compressed) tar archive.")
            }
            for e in entries {
                let base = (e.name as NSString).lastPathComponent
                out[base] = wanted.contains(base) ? Array(e.data) : []
            }
            return out
        }
        var dirs = [source]
        for sub in ((try? fm.contentsOfDirectory(atPath: source.path)) ?? []).sorted() {
            var d: ObjCBool = false
            let u = source.appendingPathComponent(sub)
            if fm.fileExists(atPath: u.path, isDirectory: &d), d.boolValue { dirs.append(u) }
        }
        for dir in dirs {
            for name in ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []) where out[name] == nil {
                if wanted.contains(name) {
                    guard let data = fm.contents(atPath: dir.appendingPathComponent(name).path) else {
                        throw FFError(.source, "Cannot read \(dir.appendingPathComponent(name).path).", file: dir)
                    }
                    out[name] = Array(data)
                } else {
                    out[name] = []
                }
            }
        }
        return out
    }
}
