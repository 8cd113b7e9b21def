import ArgumentParser
import DataPrep
import FFEngine
import Foundation

/// `repro prep ...`: dataset converters (see data-prep/FORMAT.md).
struct PrepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prep",
        abstract: "Convert a dataset to HDF5 shards (once; training then reads the shards).",
        discussion: "Rerunning an interrupted conversion resumes from the finished shards.",
        subcommands: [PrepMNIST.self, PrepFashionMNIST.self, PrepCIFAR10.self, PrepCIFAR100.self,
                      PrepImageFolder.self, PrepImageNet100.self, PrepImagenette.self, PrepTinyImageNet.self, PrepCheck.self])
}

/// Flags every converter takes.
struct PrepFlags: ParsableArguments {
    @Option(help: "Output directory (created if needed).")
    var out: String

    @Option(parsing: .unconditional, help: "Images held out from the official training set for validation (default: 10000 for MNIST, Fashion-MNIST and Tiny-ImageNet, 5000 for CIFAR-10/100 and ImageNet-100, else a tenth of the training images up to 5000).")
    var val: Int?

    @Option(parsing: .unconditional, help: "Seed of the validation hold-out (stratified: each class keeps its share).")
    var seed: UInt64 = 0

    @Option(name: .customLong("max-bad"), parsing: .unconditional, help: "Fail if more than this percentage of images is unreadable (0.1 = 0.1%).")
    var maxBad: String = "0.1"

    @Option(parsing: .unconditional, help: "Decoding threads (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("shard-mb"), parsing: .unconditional, help: "Upper bound of one shard's image data, in MiB.")
    var shardMB: Double = 256

    @Flag(help: "Convert everything again: replace an existing conversion (also one made with other options).")
    var force = false

    @Option(name: .customLong("max-image-pixels"), parsing: .unconditional,
            help: "Refuse images declaring more pixels than this (decompression bombs; default 89478485, as PIL).")
    var maxImagePixels: UInt64 = PrepOptions.defaultMaxImagePixels

    @Flag(help: "No progress lines.")
    var quiet = false

    func options(size: Int? = nil) throws -> PrepOptions {
        let text = maxBad.hasSuffix("%") ? String(maxBad.dropLast()) : maxBad
        guard let pct = Double(text), pct.isFinite, pct >= 0, pct <= 100 else {
            throw FFError(.invalidArgument, "--max-bad '\(maxBad)' is not a percentage between 0 and 100 (e.g. 0.1 or 0.1%).")
        }
        guard shardMB.isFinite, shardMB > 0, shardMB <= 4096 else {
            throw FFError(.invalidArgument, "--shard-mb \(shardMB) is outside (0, 4096] MiB (two shards are held in memory "
                + "while converting).")
        }
        _ = try checkedOut()
        let o = PrepOptions(val: val, seed: seed, size: size, maxBad: pct / 100, threads: threads ?? 0,
                            shardBytes: max(1, Int(shardMB * 1_048_576)), force: force,
                            maxImagePixels: maxImagePixels, progress: !quiet)
        try o.validate()
        return o
    }

    func checkedOut() throws -> URL {
        guard !out.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw FFError(.invalidArgument, "--out is empty; give the output directory, e.g. --out data/NAME.")
        }
        return URL(fileURLWithPath: (out as NSString).expandingTildeInPath, isDirectory: true)
    }

    var outURL: URL { URL(fileURLWithPath: (out as NSString).expandingTildeInPath, isDirectory: true) }
}

func srcURL(_ s: String) -> URL {
    URL(fileURLWithPath: (s as NSString).expandingTildeInPath).standardizedFileURL
}

/// Prints what a conversion produced.
func reportPrep(_ r: PrepResult) {
    let i = r.index
    if r.alreadyComplete {
        print("\(r.directory.path) already holds this conversion of \(i.dataset) (every shard checked); nothing to do.")
        if !i.skipped.isEmpty {
            print("\(i.skipped.count) image(s) were skipped as unreadable (listed in index.json); after fixing them, "
                + "add --force to convert again.")
        }
        return
    }
    let counts = ShardFormat.splits.compactMap { s in i.splits[s].map { "\(s) \($0.count)" } }.joined(separator: ", ")
    let shards = i.splits.values.reduce(0) { $0 + $1.shards.count }
    print("Wrote \(i.dataset) to \(r.directory.path): \(counts) images of \(i.imageSize.map(String.init).joined(separator: "x")) "
        + "in \(shards) shard(s) (\(r.shardsResumed) resumed).")
    print(String(format: "%d images in %.1f s (%.0f images/s).", r.imagesWritten, r.seconds, r.imagesPerSecond))
    print("Channel mean \(i.channelMean.map { String(format: "%.4f", $0) }), std \(i.channelStd.map { String(format: "%.4f", $0) }).")
    if !i.skipped.isEmpty { print("\(i.skipped.count) unreadable image(s) skipped; listed under \"skipped\" in index.json.") }
}

struct PrepMNIST: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mnist", abstract: "MNIST from the four IDX files (.gz or raw).")
    @Option(help: "Directory with train-images-idx3-ubyte[.gz] and the other three IDX files.") var src: String
    @OptionGroup var flags: PrepFlags
    func run() throws {
        try Repro.guarded { reportPrep(try DataPrep.mnist(source: srcURL(src), output: flags.outURL, options: flags.options())) }
    }
}

struct PrepFashionMNIST: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fashion-mnist", abstract: "Fashion-MNIST from the four IDX files.")
    @Option(help: "Directory with the IDX files (default: /usr/share/datasets/fashion-mnist).") var src: String?
    @OptionGroup var flags: PrepFlags
    func run() throws {
        try Repro.guarded {
            reportPrep(try DataPrep.fashionMNIST(source: src.map(srcURL), output: flags.outURL, options: flags.options()))
        }
    }
}

struct PrepCIFAR10: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cifar10", abstract: "CIFAR-10, binary version.")
    @Option(help: "cifar-10-binary.tar.gz or its extracted folder.") var src: String
    @OptionGroup var flags: PrepFlags
    func run() throws {
        try Repro.guarded { reportPrep(try DataPrep.cifar10(source: srcURL(src), output: flags.outURL, options: flags.options())) }
    }
}

struct PrepCIFAR100: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cifar100", abstract: "CIFAR-100, binary version (fine and coarse labels).")
    @Option(help: "cifar-100-binary.tar.gz or its extracted folder.") var src: String
    @OptionGroup var flags: PrepFlags
    func run() throws {
        try Repro.guarded { reportPrep(try DataPrep.cifar100(source: srcURL(src), output: flags.outURL, options: flags.options())) }
    }
}

struct PrepImageFolder: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imagefolder", abstract: "Class folders of PNG/JPEG images.",
        discussion: "ROOT/<class>/*.{png,jpg,jpeg}, or ROOT/train/<class>/... with ROOT/val and/or ROOT/test. "
            + "Images are resized (shorter side to --size) and center-cropped; EXIF orientation is ignored.")
    @Option(help: "Root folder.") var src: String
    @Option(parsing: .unconditional, help: "Stored side length (e.g. 64 or 256).") var size: Int
    @Option(help: "Dataset name stored in the index (default: the folder name).") var name: String?
    @Option(parsing: .unconditional, help: "Stored channels: 3 (RGB, default) or 1 (gray, ITU-R 601 luma).") var channels = 3
    @OptionGroup var flags: PrepFlags
    func run() throws {
        try Repro.guarded {
            var o = try flags.options(size: size)
            o.name = name
            o.channels = channels
            try o.validate()
            let dataset = name ?? srcURL(src).lastPathComponent
            if let entry = DatasetCatalog.entries[dataset], !entry.prepCommand.hasPrefix("repro prep imagefolder") {
                print("note: '\(dataset)' is also a built-in dataset; this image folder keeps the image-folder defaults "
                    + "(validation hold-out, size), and recipes treat it as a dataset of that name, not as the official "
                    + "conversion: no paper comparison.")
            }
            reportPrep(try DataPrep.imageFolder(source: srcURL(src), output: flags.outURL, options: o))
        }
    }
}

struct PrepImageNet100: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imagenet100", abstract: "ImageNet-100 (CMC class list) from an ILSVRC-2012 root with train/ and val/ class folders.")
    @Option(help: "ILSVRC-2012 root with train/<wnid>/ and val/<wnid>/.") var src: String
    @Option(parsing: .unconditional, help: "Stored side length.") var size: Int = 256
    @Option(help: "Class list file (default: the built-in list, data-prep/imagenet100.txt).") var classes: String?
    @OptionGroup var flags: PrepFlags
    func run() throws {
        try Repro.guarded {
            var o = try flags.options(size: size)
            o.classList = classes.map(srcURL)
            reportPrep(try DataPrep.imagenet100(source: srcURL(src), output: flags.outURL, options: o))
        }
    }
}

struct PrepImagenette: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imagenette", abstract: "Imagenette (10 ImageNet classes) from its official .tgz or extracted folder.")
    @Option(help: "imagenette2-160.tgz, imagenette2-320.tgz, imagenette2.tgz, or the extracted folder.") var src: String
    @Option(help: "Stored side length (shorter side resized, center crop).") var size: Int = 160
    @OptionGroup var flags: PrepFlags
    func run() throws {
        try Repro.guarded {
            reportPrep(try DataPrep.imagenette(source: srcURL(src), output: flags.outURL, options: flags.options(size: size)))
        }
    }
}

struct PrepTinyImageNet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tiny-imagenet", abstract: "Tiny-ImageNet (tiny-imagenet-200).")
    @Option(help: "The extracted tiny-imagenet-200 folder.") var src: String
    @Option(parsing: .unconditional, help: "Stored side length.") var size: Int = 64
    @OptionGroup var flags: PrepFlags
    func run() throws {
        try Repro.guarded {
            reportPrep(try DataPrep.tinyImagenet(source: srcURL(src), output: flags.outURL, options: flags.options(size: size)))
        }
    }
}

struct PrepCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify a converted dataset (index, sizes, SHA-256) and time epochs through the loader.")
    @Option(help: "Dataset directory (made by repro prep).") var dir: String
    @Option(help: "Split to read.") var split: String = "train"
    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Batch size.") var batchSize: Int = 128
    @Option(help: ArgumentHelp("As the config field augment: none | crop-flip (random crop, padding 4, flip) | rrc-flip "
        + "(random-resized-crop 0.08, flip) | center (evaluation crop)."))
    var augment: String = "crop-flip"
    @Option(parsing: .unconditional, help: "Output side length for crop-flip/rrc-flip/center (default: the stored size).")
    var size: Int?
    @Option(parsing: .unconditional, help: "Epochs to time.") var epochs: Int = 2
    @Option(help: "Label set, as for repro run: fine (labels) or coarse (CIFAR-100 superclasses).")
    var labels: String = "fine"

    func run() throws {
        try Repro.guarded { try check() }
    }

    func check() throws {
        guard batchSize >= 1 && batchSize <= 65536 else {
            throw FFError(.invalidArgument, "--batch-size \(batchSize) is outside 1...65536.")
        }
        guard epochs >= 1 && epochs <= 1000 else { throw FFError(.invalidArgument, "--epochs \(epochs) is outside 1...1000.") }
        if let s = size, !(1...4096).contains(s) { throw FFError(.invalidArgument, "--size \(s) is outside 1...4096.") }
        guard ShardFormat.splits.contains(split) else {
            throw FFError(.invalidArgument, "--split '\(split)' is not one of: \(ShardFormat.splits.joined(separator: ", ")).")
        }
        let url = URL(fileURLWithPath: dir, isDirectory: true)
        let index = try DatasetIndex.load(directory: url)
        for s in index.splits.keys.sorted() { try index.verify(split: s, directory: url, checksums: true) }
        print("\(url.path): \(index.dataset), checksums of \(index.splits.values.reduce(0) { $0 + $1.shards.count }) shard(s) OK.")
        let side = size ?? index.imageSize[0]
        let aug: Augmentation
        switch augment {
        case "none": aug = .none
        case "crop-flip": aug = .randomCrop(size: side, padding: 4, flip: true)
        case "rrc-flip": aug = .randomResizedCrop(size: side, scaleMin: 0.08, flip: true)
        case "center": aug = .centerCrop(size: side)
        default: throw FFError(.invalidArgument, "--augment '\(augment)' is not one of: none, crop-flip, rrc-flip, center "
            + "(as `repro run`'s augment field).")
        }
        let key = labels == "fine" ? "labels" : labels == "coarse" ? "coarse_labels" : labels
        let loader = try ShardLoader(directory: url, split: split,
                                     options: LoaderOptions(seed: 0, augmentation: aug, labelKey: key, checksums: .sizesOnly))
        print("Split \(split): \(loader.sampleCount) images -> \(loader.sampleShape), \(loader.isInMemory ? "in memory" : "streamed").")
        for e in 0..<epochs {
            let start = Date()
            var n = 0
            var checksum: Float = 0
            let stream = loader.batches(epoch: e, batchSize: batchSize)
            while let b = try stream.next() {
                n += b.count
                checksum += b.images[0]
            }
            let t = Date().timeIntervalSince(start)
            print(String(format: "epoch %d: %d images in %.2f s = %.0f images/s (first-pixel sum %.3f)", e, n, t, Double(n) / max(t, 1e-9), checksum))
        }
    }
}
