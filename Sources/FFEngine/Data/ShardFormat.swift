import Foundation

/// Names and constants of the dataset shard format (see data-prep/FORMAT.md).
public enum ShardFormat {
    /// `format` attribute of every shard.
    public static let name = "ffrepro-shard"
    /// `format` field of index.json.
    public static let indexFormat = "ffrepro-dataset"
    public static let version = 1
    public static let indexFileName = "index.json"
    public static let splits = ["train", "val", "test"]

    public static func shardFileName(split: String, number: Int) -> String {
        "\(split)-" + String(format: "%05d", number) + ".h5"
    }

    /// Rows per HDF5 chunk: a few images, about 64 KiB, at least one.
    public static func chunkRows(imageBytes: Int, count: Int) -> Int {
        max(1, min(count, 65536 / max(1, imageBytes)))
    }
}

/// index.json: the table of contents of a converted dataset. It is written last, so its
/// presence means the conversion finished.
public struct DatasetIndex: Codable, Equatable {
    public struct Shard: Codable, Equatable {
        public var file: String
        public var count: Int
        public var bytes: Int
        public var sha256: String
        public init(file: String, count: Int, bytes: Int, sha256: String) {
            self.file = file
            self.count = count
            self.bytes = bytes
            self.sha256 = sha256
        }
    }

    public struct Split: Codable, Equatable {
        public var count: Int
        public var shards: [Shard]
        public init(count: Int, shards: [Shard]) {
            self.count = count
            self.shards = shards
        }
    }

    public struct Skipped: Codable, Equatable {
        public var path: String
        public var reason: String
        public init(path: String, reason: String) {
            self.path = path
            self.reason = reason
        }
    }

    /// What produced the data (no machine-specific paths, so equal inputs give equal files).
    public struct Conversion: Codable, Equatable {
        public var command: String
        public var val: Int
        public var seed: UInt64
        public var size: Int?
        public var shardBytes: Int
        public var fingerprint: String
        public init(command: String, val: Int, seed: UInt64, size: Int?, shardBytes: Int, fingerprint: String) {
            self.command = command
            self.val = val
            self.seed = seed
            self.size = size
            self.shardBytes = shardBytes
            self.fingerprint = fingerprint
        }
    }

    public var format: String
    public var formatVersion: Int
    public var dataset: String
    public var source: String
    /// [height, width, channels] of every stored image.
    public var imageSize: [Int]
    /// Per-channel mean and standard deviation of pixel/255 over the train split.
    public var channelMean: [Double]
    public var channelStd: [Double]
    /// Label dataset name ("labels", "coarse_labels") -> class names.
    public var labelSets: [String: [String]]
    public var splits: [String: Split]
    public var conversion: Conversion
    public var skipped: [Skipped]

    public init(dataset: String, source: String, imageSize: [Int], channelMean: [Double], channelStd: [Double],
                labelSets: [String: [String]], splits: [String: Split], conversion: Conversion, skipped: [Skipped]) {
        format = ShardFormat.indexFormat
        formatVersion = ShardFormat.version
        self.dataset = dataset
        self.source = source
        self.imageSize = imageSize
        self.channelMean = channelMean
        self.channelStd = channelStd
        self.labelSets = labelSets
        self.splits = splits
        self.conversion = conversion
        self.skipped = skipped
    }

    public var imageBytes: Int { imageSize.reduce(1, *) }

    /// Canonical JSON: sorted keys, so equal indexes are equal bytes.
    public func encoded() throws -> Data {
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try enc.encode(self)
        data.append(0x0A)
        return data
    }

    /// Reads and checks directory/index.json. The error says what to run if it is absent.
    public static func load(directory: URL) throws -> DatasetIndex {
        let url = directory.appendingPathComponent(ShardFormat.indexFileName)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDir), isDir.boolValue else {
            throw FFError(.missing, "The dataset directory \(directory.path) does not exist. Create it with "
                + "`repro prep <dataset> --src <source> --out \(directory.path)`.", file: directory)
        }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw FFError(.missing, "\(directory.path) has no \(ShardFormat.indexFileName): the conversion did not "
                + "finish. Run the same `repro prep ...` command again; it resumes from the finished shards.",
                file: url)
        }
        return try decode(data, url: url)
    }

    /// Parses and checks index.json bytes (`url` names the file in messages).
    public static func decode(_ data: Data, url: URL) throws -> DatasetIndex {
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        let index: DatasetIndex
        do {
            index = try dec.decode(DatasetIndex.self, from: data)
        } catch {
            throw FFError(.corrupt, "\(url.path) is not a valid dataset index (\(error)). Delete the directory "
                + "and run `repro prep ...` again.", file: url)
        }
        guard index.format == ShardFormat.indexFormat else {
            throw FFError(.format, "\(url.path) is not an ffrepro dataset index (format '\(index.format)').", file: url)
        }
        guard index.formatVersion == ShardFormat.version else {
            throw FFError(.format, "\(url.path) has format version \(index.formatVersion) but this build reads "
                + "version \(ShardFormat.version). Convert the dataset again with this build's `repro prep`.", file: url)
        }
        try index.check(url)
        return index
    }

    /// Everything the loader later relies on, so a damaged or crafted index fails here with
    /// its field named instead of deep inside (huge allocations, paths outside the directory).
    func check(_ url: URL) throws {
        func bad(_ what: String) -> FFError {
            FFError(.corrupt, "\(url.path): \(what). The index is damaged; convert the dataset again with `repro prep`.", file: url)
        }
        guard imageSize.count == 3, imageSize[0] >= 1, imageSize[0] <= 65536, imageSize[1] >= 1, imageSize[1] <= 65536,
              imageSize[2] >= 1, imageSize[2] <= 4, imageSize.reduce(1, *) <= 1 << 31 else {
            throw bad("image_size \(imageSize) is not [H, W, C] with sides 1...65536 and 1...4 channels")
        }
        guard channelMean.count == imageSize[2], channelStd.count == imageSize[2],
              channelMean.allSatisfy({ $0.isFinite }), channelStd.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw bad("channel_mean \(channelMean) / channel_std \(channelStd) do not fit \(imageSize[2]) channel(s) "
                + "(finite, std > 0)")
        }
        guard !labelSets.isEmpty, labelSets.values.allSatisfy({ !$0.isEmpty && $0.count <= 1_000_000 }) else {
            throw bad("label_sets is empty or has a set without class names")
        }
        for (name, split) in splits {
            guard ShardFormat.splits.contains(name) else { throw bad("split '\(name)' is not one of \(ShardFormat.splits)") }
            var total = 0
            for (k, shard) in split.shards.enumerated() {
                guard shard.file == ShardFormat.shardFileName(split: name, number: k) else {
                    throw bad("shard \(k) of split '\(name)' is named '\(shard.file)', expected "
                        + "'\(ShardFormat.shardFileName(split: name, number: k))'")
                }
                let (need, overflow) = shard.count.multipliedReportingOverflow(by: imageBytes)
                guard shard.count >= 0, shard.bytes >= 0, !overflow, need <= shard.bytes else {
                    throw bad("shard \(shard.file) claims \(shard.count) images of \(imageBytes) bytes in a file of "
                        + "\(shard.bytes) bytes")
                }
                total += shard.count
            }
            guard total == split.count else {
                throw bad("split '\(name)' has count \(split.count) but its shards hold \(total)")
            }
        }
    }

    /// The split's shard list, or an error listing the splits that exist.
    public func split(_ name: String, directory: URL) throws -> Split {
        guard let s = splits[name] else {
            throw FFError(.invalidArgument, "The dataset in \(directory.path) has no split '\(name)'; it has "
                + splits.keys.sorted().joined(separator: ", ") + ".", file: directory)
        }
        return s
    }

    /// Checks that the split's shard files exist with the recorded sizes and, if
    /// `checksums`, the recorded SHA-256.
    public func verify(split name: String, directory: URL, checksums: Bool) throws {
        for shard in try split(name, directory: directory).shards {
            let url = directory.appendingPathComponent(shard.file)
            guard let size = AtomicFile.size(of: url) else {
                throw FFError(.missing, "Shard \(url.path) listed in the index is missing. Run `\(conversion.command) --out \(directory.path)` "
                    + "again to recreate it.", file: url)
            }
            if size != shard.bytes {
                throw FFError(.corrupt, "Shard \(url.path) has \(size) bytes but the index records \(shard.bytes): "
                    + "the file is truncated or was replaced. Delete it and run `\(conversion.command) --out \(directory.path)` again.", file: url)
            }
            if checksums {
                let sum = try AtomicFile.sha256(of: url)
                if sum != shard.sha256 {
                    throw FFError(.corrupt, "Shard \(url.path) does not match its checksum in the index (sha256 \(sum), "
                        + "expected \(shard.sha256)): the file is damaged. Delete it and run `\(conversion.command) --out \(directory.path)` "
                        + "again.", file: url)
                }
            }
        }
    }
}
