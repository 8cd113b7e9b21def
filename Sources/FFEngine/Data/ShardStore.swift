import Foundation

/// The images and labels of (a selection of rows of) one split. Small selections are read
/// into one memory block at open; large ones stay in the shards and are read per request,
/// chunk-aligned through HDF5 hyperslabs. Labels are always held in memory.
final class ShardStore {
    struct Part {
        let file: HDF5File
        let images: HDF5Dataset
        let first: Int   // global row of the shard's first image
        let count: Int
    }

    let directory: URL
    let height: Int, width: Int, channels: Int
    let imageBytes: Int
    /// Global row ids (ascending) of the selected samples; local index i is rows[i].
    let rows: [Int]
    /// Labels of the selected samples, by local index.
    let labels: [Int32]
    let inMemory: Bool
    private var parts: [Part] = []
    private var resident: UnsafeMutablePointer<UInt8>?

    var count: Int { rows.count }

    /// `rows` nil selects the whole split. `memoryLimit` bytes decides between resident and
    /// streamed. Every shard is opened and checked against the index.
    init(directory: URL, index: DatasetIndex, split: String, rows selected: [Int]?, labelKey: String,
         memoryLimit: Int) throws {
        self.directory = directory
        height = index.imageSize[0]
        width = index.imageSize[1]
        channels = index.imageSize[2]
        imageBytes = index.imageBytes
        let info = try index.split(split, directory: directory)
        rows = selected ?? Array(0..<info.count)
        inMemory = rows.count * imageBytes <= memoryLimit

        var allLabels = [Int32]()
        allLabels.reserveCapacity(info.count)
        var first = 0
        for shard in info.shards {
            let url = directory.appendingPathComponent(shard.file)
            let file = try HDF5File(url)
            try ShardStore.checkShard(file, index: index, split: split, count: shard.count)
            let images = try file.dataset("images")
            guard images.type == .uint8, images.shape == [shard.count] + index.imageSize else {
                throw FFError(.format, "Shard \(url.path): dataset 'images' is \(images.type) \(images.shape), expected "
                    + "uint8 \([shard.count] + index.imageSize). The shard does not belong to this index; convert the "
                    + "dataset again.", file: url)
            }
            guard file.exists(labelKey) else {
                throw FFError(.invalidArgument, "Shard \(url.path) has no label set '\(labelKey)'; this dataset has "
                    + index.labelSets.keys.sorted().joined(separator: ", ") + ".", file: url)
            }
            let lab = try file.dataset(labelKey)
            guard lab.shape == [shard.count] else {
                throw FFError(.format, "Shard \(url.path): '\(labelKey)' has shape \(lab.shape), expected [\(shard.count)].", file: url)
            }
            allLabels += try lab.read(as: Int32.self)
            parts.append(Part(file: file, images: images, first: first, count: shard.count))
            first += shard.count
        }
        if first != info.count {
            throw FFError(.corrupt, "The index in \(directory.path) says split '\(split)' has \(info.count) images "
                + "but its shards hold \(first). Convert the dataset again.", file: directory)
        }
        labels = rows.map { allLabels[$0] }
        let classes = index.labelSets[labelKey]?.count ?? 0
        if let bad = labels.first(where: { $0 < 0 || Int($0) >= classes }) {
            throw FFError(.corrupt, "Split '\(split)' in \(directory.path) has label \(bad) outside [0, \(classes)).", file: directory)
        }
        if inMemory { try loadResident() }
    }

    deinit { resident?.deallocate() }

    static func checkShard(_ file: HDF5File, index: DatasetIndex, split: String, count: Int) throws {
        let path = file.path
        guard file.hasAttribute("format"), (try? file.stringAttribute("format")) == ShardFormat.name else {
            throw FFError(.format, "\(path) is an HDF5 file but not an ffrepro dataset shard (its 'format' attribute "
                + "is missing or differs). Point the loader at a directory made by `repro prep`.", path: path)
        }
        let version = try file.attribute("format_version", as: Int64.self)
        guard version == [Int64(ShardFormat.version)] else {
            throw FFError(.format, "Shard \(path) has format version \(version.first ?? -1), this build reads "
                + "\(ShardFormat.version). Convert the dataset again.", path: path)
        }
        let ds = try file.stringAttribute("dataset"), sp = try file.stringAttribute("split")
        guard ds == index.dataset, sp == split else {
            throw FFError(.format, "Shard \(path) belongs to \(ds)/\(sp), not \(index.dataset)/\(split); the directory "
                + "mixes conversions. Convert the dataset again into an empty directory.", path: path)
        }
    }

    private func loadResident() throws {
        let buf = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, rows.count * imageBytes))
        resident = buf
        var local = 0
        for part in parts {
            // Selected rows of this shard (rows is ascending).
            var hi = local
            while hi < rows.count && rows[hi] < part.first + part.count { hi += 1 }
            let n = hi - local
            if n == part.count {
                try part.images.read(into: UnsafeMutableBufferPointer(start: buf + local * imageBytes, count: n * imageBytes))
            } else if n > 0 {
                try part.images.readRows(rows[local..<hi].map { Int64($0 - part.first) }, into: buf + local * imageBytes)
            }
            local = hi
        }
        for part in parts { try part.file.close() }
        parts = []
    }

    /// Pointer to a resident image (memory mode only).
    func image(_ local: Int) -> UnsafePointer<UInt8> {
        UnsafePointer(resident! + local * imageBytes)
    }

    /// Reads the images of `locals` (any order) into consecutive slots of `dst` (streamed mode).
    func read(_ locals: [Int], into dst: UnsafeMutablePointer<UInt8>) throws {
        if let r = resident {
            for (i, l) in locals.enumerated() { (dst + i * imageBytes).update(from: r + l * imageBytes, count: imageBytes) }
            return
        }
        // Group by shard and read each group in row order, then scatter.
        var byPart = [[(slot: Int, row: Int)]](repeating: [], count: parts.count)
        for (slot, l) in locals.enumerated() {
            let g = rows[l]
            let p = partIndex(of: g)
            byPart[p].append((slot, g - parts[p].first))
        }
        let tmp = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, locals.count * imageBytes))
        defer { tmp.deallocate() }
        for (p, list) in byPart.enumerated() where !list.isEmpty {
            let sorted = list.sorted { $0.row < $1.row }
            try parts[p].images.readRows(sorted.map { Int64($0.row) }, into: tmp)
            for (k, item) in sorted.enumerated() {
                (dst + item.slot * imageBytes).update(from: tmp + k * imageBytes, count: imageBytes)
            }
        }
    }

    private func partIndex(of row: Int) -> Int {
        var lo = 0, hi = parts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if parts[mid].first <= row { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }
}
