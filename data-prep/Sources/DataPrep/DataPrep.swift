import FFEngine
import FFIO
import Foundation

/// Options shared by all converters (`repro prep ...` flags).
public struct PrepOptions {
    /// Images held out from the official training set as the validation split; nil uses
    /// the dataset's default (see `DataPrep.defaultVal`).
    public var val: Int?
    /// Seed of the validation hold-out.
    public var seed: UInt64
    /// Output side length for image-file datasets (shorter side resized, center crop).
    public var size: Int?
    /// Largest tolerated fraction of unreadable images (0.001 = 0.1%).
    public var maxBad: Double
    /// Decoding threads; 0 = all cores.
    public var threads: Int
    /// Upper bound of one shard file's image bytes.
    public var shardBytes: Int
    /// Dataset name stored in the index (imagefolder; default: the source folder's name).
    public var name: String?
    /// Class list file for imagenet100 (default: the built-in list, data-prep/imagenet100.txt).
    public var classList: URL?
    /// Replace an existing conversion made with different options.
    public var force: Bool
    /// Images declaring more pixels than this are refused before decoding (decompression
    /// bombs); the default is PIL's MAX_IMAGE_PIXELS.
    public var maxImagePixels: UInt64
    /// Stored channels of image-file datasets: 3 (RGB) or 1 (gray by ITU-R 601 luma, as
    /// `repro predict` converts for one-channel datasets).
    public var channels = 3
    /// Show progress lines on stderr.
    public var progress: Bool
    /// Tests only: stop with an error at a chosen point, as if the process were killed.
    public var testingFailure: TestingFailure?

    public enum TestingFailure: Equatable {
        /// After writing this many new shards.
        case afterShards(Int)
        /// After finalizing (writing channel statistics into) this many shards.
        case afterFinalizing(Int)
    }

    public init(val: Int? = nil, seed: UInt64 = 0, size: Int? = nil, maxBad: Double = 0.001, threads: Int = 0,
                shardBytes: Int = 256 << 20, name: String? = nil, classList: URL? = nil, force: Bool = false,
                maxImagePixels: UInt64 = PrepOptions.defaultMaxImagePixels, progress: Bool = true,
                testingFailure: TestingFailure? = nil) {
        self.val = val
        self.seed = seed
        self.size = size
        self.maxBad = maxBad
        self.threads = threads
        self.shardBytes = shardBytes
        self.name = name
        self.classList = classList
        self.force = force
        self.maxImagePixels = maxImagePixels
        self.progress = progress
        self.testingFailure = testingFailure
    }

    var threadCount: Int { threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount }

    public static let defaultMaxImagePixels = UInt64(FFIO_DEFAULT_MAX_PIXELS)
    /// Allowed ranges (each check names the flag, the value and the range).
    public static let sizeRange = 1...4096
    public static let maxThreads = 256
    public static let shardBytesRange = 1...(4 << 30)
    public static let maxImagePixelsRange: ClosedRange<UInt64> = 1...(1 << 34)

    /// Rejects values that cannot work, before anything is read or written.
    public func validate() throws {
        guard channels == 1 || channels == 3 else {
            throw FFError(.invalidArgument, "--channels \(channels) must be 1 (grayscale) or 3 (RGB).")
        }
        if let size = size, !PrepOptions.sizeRange.contains(size) {
            throw FFError(.invalidArgument, "--size \(size) is outside \(PrepOptions.sizeRange.lowerBound)..."
                + "\(PrepOptions.sizeRange.upperBound) (the stored side length in pixels, e.g. 64 or 256).")
        }
        if threads < 0 || threads > PrepOptions.maxThreads {
            throw FFError(.invalidArgument, "--threads \(threads) is outside 0...\(PrepOptions.maxThreads) (0 = all cores).")
        }
        if !PrepOptions.shardBytesRange.contains(shardBytes) {
            throw FFError(.invalidArgument, "The shard size of \(shardBytes) bytes is outside 1 byte...4096 MiB (--shard-mb); "
                + "two shards are held in memory while converting.")
        }
        if !(maxBad >= 0 && maxBad <= 1) {
            throw FFError(.invalidArgument, "--max-bad \(maxBad * 100)% is outside 0...100%.")
        }
        if let v = val, v < 0 { throw FFError(.invalidArgument, "--val \(v) must be at least 0.") }
        if !PrepOptions.maxImagePixelsRange.contains(maxImagePixels) {
            throw FFError(.invalidArgument, "--max-image-pixels \(maxImagePixels) is outside 1...\(PrepOptions.maxImagePixelsRange.upperBound).")
        }
        if let n = name, n.isEmpty || n.contains("/") || n.contains("\n") {
            throw FFError(.invalidArgument, "--name '\(n)' must be a non-empty name without '/' or line breaks.")
        }
    }
}

/// What a conversion did.
public struct PrepResult {
    public let directory: URL
    public let index: DatasetIndex
    /// Images written by this run (resumed shards not counted).
    public let imagesWritten: Int
    /// Shards found complete from an earlier run and kept.
    public let shardsResumed: Int
    public let shardsWritten: Int
    /// True if the directory already held this conversion and nothing was done.
    public let alreadyComplete: Bool
    public let seconds: Double
    public var skipped: [DatasetIndex.Skipped] { index.skipped }
    public var imagesPerSecond: Double { seconds > 0 ? Double(imagesWritten) / seconds : 0 }
}

/// Dataset converters: each reads an official distribution and writes HDF5 shards plus
/// index.json into `output` (format: data-prep/FORMAT.md).
public enum DataPrep {
    public static let defaultFashionMNISTSource = URL(fileURLWithPath: "/usr/share/datasets/fashion-mnist")

    /// Default validation hold-out per dataset, as in the papers (MNIST-like: 60k -> 50k/10k,
    /// CIFAR: 50k -> 45k/5k), and for datasets whose official val serves as test.
    public static func defaultVal(_ dataset: String, trainCount: Int) -> Int {
        switch dataset {
        case "mnist", "fashion-mnist": return 10000
        case "cifar10", "cifar100": return 5000
        case "imagenet100": return 5000
        case "tiny-imagenet": return 10000
        default: return min(5000, trainCount / 10)
        }
    }

    public static func mnist(source: URL, output: URL, options: PrepOptions = PrepOptions()) throws -> PrepResult {
        try options.validate()
        return try IDXSource.convert(variant: .mnist, source: source, output: output, options: options)
    }

    /// `source` nil uses /usr/share/datasets/fashion-mnist.
    public static func fashionMNIST(source: URL? = nil, output: URL, options: PrepOptions = PrepOptions()) throws -> PrepResult {
        try options.validate()
        return try IDXSource.convert(variant: .fashion, source: source ?? defaultFashionMNISTSource, output: output, options: options)
    }

    /// `source`: cifar-10-binary.tar.gz or its extracted folder.
    public static func cifar10(source: URL, output: URL, options: PrepOptions = PrepOptions()) throws -> PrepResult {
        try options.validate()
        return try CIFARSource.convert(hundred: false, source: source, output: output, options: options)
    }

    /// `source`: cifar-100-binary.tar.gz or its extracted folder. Stores `labels` (fine)
    /// and `coarse_labels`.
    public static func cifar100(source: URL, output: URL, options: PrepOptions = PrepOptions()) throws -> PrepResult {
        try options.validate()
        return try CIFARSource.convert(hundred: true, source: source, output: output, options: options)
    }

    /// ROOT/<class>/*.{png,jpg,jpeg}, or ROOT/{train,val,test}/<class>/... (see FORMAT.md).
    /// Requires `options.size`.
    public static func imageFolder(source: URL, output: URL, options: PrepOptions) throws -> PrepResult {
        try options.validate()
        return try ImageFolderSource.convertFolder(source: source, output: output, options: options)
    }

    /// ILSVRC-2012 root with train/<wnid>/ and val/<wnid>/, restricted to the ImageNet-100
    /// classes; the official val becomes `test`. Default size 256.
    public static func imagenet100(source: URL, output: URL, options: PrepOptions = PrepOptions()) throws -> PrepResult {
        try options.validate()
        return try ImageFolderSource.convertImageNet100(source: source, output: output, options: options)
    }

    /// Imagenette: the official .tgz or its extracted folder (train/, val/ of 10 wnid folders);
    /// the official val becomes `test`; default size 160.
    public static func imagenette(source: URL, output: URL, options: PrepOptions = PrepOptions()) throws -> PrepResult {
        try ImagenetteSource.convert(source: source, output: output, options: options)
    }

    /// tiny-imagenet-200 as distributed; the official val becomes `test`. Default size 64.
    public static func tinyImagenet(source: URL, output: URL, options: PrepOptions = PrepOptions()) throws -> PrepResult {
        try options.validate()
        return try TinyImageNetSource.convert(source: source, output: output, options: options)
    }
}
