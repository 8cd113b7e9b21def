import FFEngine
import FFIO
import Foundation

/// MNIST and Fashion-MNIST: the four IDX files (gzip or raw; "train-images-idx3-ubyte" or
/// "train-images.idx3-ubyte" spellings). Items 0..<60000 are the training file's records,
/// then the test file's.
final class IDXSource: ItemSource {
    enum Variant {
        case mnist, fashion
        var dataset: String { self == .mnist ? "mnist" : "fashion-mnist" }
        var classNames: [String] {
            self == .mnist ? (0..<10).map(String.init)
                : ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        }
    }

    static let required = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]

    let imageSize: [Int]
    let labelKeys = ["labels"]
    let pixels: [UInt8]   // train records then test records
    let labelValues: [Int32]
    let trainCount: Int
    let fileNames: [String]

    init(pixels: [UInt8], labels: [Int32], height: Int, width: Int, trainCount: Int, fileNames: [String]) {
        self.pixels = pixels
        self.labelValues = labels
        self.imageSize = [height, width, 1]
        self.trainCount = trainCount
        self.fileNames = fileNames
    }

    func labels(of item: Int) -> [Int32] { [labelValues[item]] }

    func name(of item: Int) -> String {
        item < trainCount ? "\(fileNames[0])#\(item)" : "\(fileNames[2])#\(item - trainCount)"
    }

    func decode(_ item: Int, into out: UnsafeMutablePointer<UInt8>) -> String? {
        let n = imageSize[0] * imageSize[1]
        pixels.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + item * n, count: n) }
        return nil
    }

    /// Canonical name of an IDX file: lower case, without .gz, "." separators as "-".
    static func canonical(_ name: String) -> String {
        var n = name.lowercased()
        if n.hasSuffix(".gz") { n.removeLast(3) }
        return n.replacingOccurrences(of: ".", with: "-")
    }

    /// Largest IDX file accepted (MNIST's training images are 47 MB).
    static let maxFileBytes: UInt64 = 1 << 30

    static func load(_ url: URL) throws -> [UInt8] {
        var data: UnsafeMutablePointer<UInt8>? = nil
        var len = 0
        guard ffio_read_file(url.path, maxFileBytes, &data, &len) == 0, let d = data else {
            throw FFError(.source, "Cannot read \(url.path): \(String(cString: ffio_last_error())). Download the file again.", file: url)
        }
        defer { ffio_free(d) }
        return Array(UnsafeBufferPointer(start: d, count: len))
    }

    static func bigEndian(_ b: [UInt8], _ at: Int) -> Int {
        Int(b[at]) << 24 | Int(b[at + 1]) << 16 | Int(b[at + 2]) << 8 | Int(b[at + 3])
    }

    /// Parses an IDX file: magic 0x0000_08_<rank> (unsigned bytes), big-endian sizes.
    static func parse(_ b: [UInt8], rank: Int, url: URL) throws -> (dims: [Int], body: ArraySlice<UInt8>) {
        let header = 4 + 4 * rank
        guard b.count >= header, b[0] == 0, b[1] == 0, b[2] == 0x08, Int(b[3]) == rank else {
            throw FFError(.source, "\(url.path) is not an IDX file of unsigned bytes with \(rank) dimension(s) (its header "
                + "starts \(b.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ")), expected 00 00 08 0\(rank)).", file: url)
        }
        let dims = (0..<rank).map { bigEndian(b, 4 + 4 * $0) }
        // Sizes come from the file: multiply without trapping on overflow.
        var want = 1
        for d in dims {
            let (p, overflow) = want.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw FFError(.source, "\(url.path) declares dimensions \(dims), whose product overflows; the header is "
                    + "damaged. Download the file again.", file: url)
            }
            want = p
        }
        if rank == 3, dims[1] < 1 || dims[2] < 1 || dims[1] > 4096 || dims[2] > 4096 {
            throw FFError(.source, "\(url.path) declares \(dims[1])x\(dims[2]) images; expected sides of 1...4096 "
                + "(28x28 for MNIST). The header is damaged.", file: url)
        }
        guard b.count - header == want else {
            throw FFError(.source, "\(url.path) should hold \(want) bytes of data for dimensions \(dims) but has "
                + "\(b.count - header): the file is truncated or damaged. Download it again.", file: url)
        }
        return (dims, b[header...])
    }

    static func convert(variant: Variant, source: URL, output: URL, options: PrepOptions) throws -> PrepResult {
        let fm = FileManager.default
        let expected = "a directory with the four IDX files " + required.map { $0 + "[.gz]" }.joined(separator: ", ")
            + " (a '.' before idx is accepted too)."
        let entries = (try? fm.contentsOfDirectory(atPath: source.path)) ?? []
        var found: [String: String] = [:]
        for e in entries.sorted() {
            let c = canonical(e)
            if required.contains(c) && found[c] == nil { found[c] = e }
        }
        let missing = required.filter { found[$0] == nil }
        if !missing.isEmpty {
            var hint = "Missing: \(missing.joined(separator: ", "))."
            if variant == .fashion && source == DataPrep.defaultFashionMNISTSource {
                hint += " On Debian, `apt-get install dataset-fashion-mnist` installs them there."
            }
            throw SourceProblem.error(variant.dataset, source, expected: expected, hint: hint)
        }
        let files = required.map { source.appendingPathComponent(found[$0]!) }
        var pixels: [UInt8] = [], labels: [Int32] = []
        var h = 0, w = 0, trainCount = 0
        for part in 0..<2 {
            let (idims, ibody) = try parse(load(files[2 * part]), rank: 3, url: files[2 * part])
            let (ldims, lbody) = try parse(load(files[2 * part + 1]), rank: 1, url: files[2 * part + 1])
            guard idims[0] == ldims[0] else {
                throw FFError(.source, "\(files[2 * part].path) has \(idims[0]) images but \(files[2 * part + 1].path) has "
                    + "\(ldims[0]) labels; the files do not belong together.", file: files[2 * part])
            }
            if part == 0 { (h, w, trainCount) = (idims[1], idims[2], idims[0]) }
            guard idims[1] == h && idims[2] == w else {
                throw FFError(.source, "\(files[2].path) has \(idims[1])x\(idims[2]) images, the training file \(h)x\(w).", file: files[2])
            }
            if let bad = lbody.first(where: { $0 >= 10 }) {
                throw FFError(.source, "\(files[2 * part + 1].path) has label \(bad); expected 0...9.", file: files[2 * part + 1])
            }
            pixels += ibody
            labels += lbody.map { Int32($0) }
        }
        let src = IDXSource(pixels: pixels, labels: labels, height: h, width: w, trainCount: trainCount,
                            fileNames: required.map { found[$0]! })
        let val = options.val ?? DataPrep.defaultVal(variant.dataset, trainCount: trainCount)
        let (train, held) = try Holdout.split(Array(0..<trainCount), val: val, seed: options.seed, dataset: variant.dataset) { labels[$0] }
        let name = variant == .mnist ? "MNIST" : "Fashion-MNIST"
        var command = "repro prep \(variant.dataset)"
        if !(variant == .fashion && source == DataPrep.defaultFashionMNISTSource) { command += " --src \(source.path)" }
        let plan = ConversionPlan(
            dataset: variant.dataset, source: "\(name) IDX files (\(src.fileNames.joined(separator: ", ")))",
            command: command + PrepCommandText.flags(options, val: val, defaultVal: DataPrep.defaultVal(variant.dataset, trainCount: trainCount)),
            labelSets: [("labels", variant.classNames)],
            splits: [("train", train), ("val", held), ("test", Array(trainCount..<labels.count))],
            val: val, seed: options.seed, size: nil, shardBytes: options.shardBytes)
        return try Converter.run(plan, source: src, output: output, options: options)
    }
}

/// The non-default flags of a conversion, for the `command` recorded in the index.
enum PrepCommandText {
    static func flags(_ o: PrepOptions, val: Int, defaultVal: Int, size: Int? = nil, defaultSize: Int? = nil) -> String {
        var s = ""
        if let size = size, size != defaultSize { s += " --size \(size)" }
        if val != defaultVal { s += " --val \(val)" }
        if o.seed != 0 { s += " --seed \(o.seed)" }
        if o.shardBytes != PrepOptions().shardBytes { s += " --shard-mb \(Double(o.shardBytes) / 1048576)" }
        if let n = o.name { s += " --name \(n)" }
        if o.channels != 3 { s += " --channels \(o.channels)" }
        return s
    }
}
