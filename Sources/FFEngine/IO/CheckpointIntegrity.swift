import FFIO
import Foundation

/// Checksums that make a damaged or edited checkpoint fail loudly instead of evaluating
/// garbage. They are additions to format version 1, so older files stay valid:
///
/// - the file starts with an HDF5 user block (512 bytes or a larger power of two, which HDF5
///   and h5py skip) holding a text integrity record, checked before HDF5 parses anything
///   (libhdf5 1.10 can crash on damaged metadata):
///       ffrepro-checkpoint-integrity 1
///       file <sha256 of bytes [U, end)> <U = user block size>
///       tensor <offset> <length> <sha256> <name>      (one line per dataset's raw data)
///   followed by an empty line and zero padding; a mismatch names the tensor whose bytes
///   changed, or says that the file's structure or attributes did;
/// - every dataset carries a string attribute `sha256`: the hex SHA-256 of its data as stored
///   (little-endian float32 for tensors, uint64 for arrays), in row-major order;
/// - the root attribute `ffrepro_checksums` = "sha256-v1" says that every dataset has one
///   (a missing one is then an error);
/// - the root attribute `ffrepro_attributes_sha256` is the SHA-256 of the run attributes
///   (config, input_shape, classes, history, ...): for each key in byte order, the key, a NUL
///   byte, the value, a NUL byte; a string value as its UTF-8, a number or list of numbers as
///   "i:" + decimal integers or "d:" + hex bit patterns of the doubles, comma-separated.
///
/// Files without `ffrepro_checksums` (written before it existed, or by other tools) are read
/// without these checks; NaN/Inf tensors are refused either way.
extension Checkpoint {
    static let integrityMagic = "ffrepro-checkpoint-integrity 1\n"

    /// A power of two >= 512 with room for the record of these datasets.
    static func userblockSize(_ names: [String]) -> Int {
        let need = 256 + names.reduce(0) { $0 + $1.utf8.count + 120 }
        var u = 512
        while u < need { u *= 2 }
        return u
    }

    /// Size of the integrity record's user block at the start of `head`, 0 if none.
    public static func userblockBytes(of head: [UInt8]) -> Int {
        guard head.starts(with: Array(integrityMagic.utf8)),
              let text = String(validating: head.prefix { $0 != 0 }, as: UTF8.self) else { return 0 }
        let lines = text.split(separator: "\n").map { $0.split(separator: " ") }
        guard lines.count > 1, lines[1].count == 3, let u = Int(lines[1][2]) else { return 0 }
        return u
    }

    static func writeIntegrityRecord(_ url: URL, regions: [(String, Int?, Int)]) throws {
        guard let size = AtomicFile.size(of: url) else { throw FFError(.io, "\(url.path) vanished while being written.", file: url) }
        let u = userblockSize(regions.map(\.0))
        var text = integrityMagic + "file \(try sha256(of: url, from: u, length: size - u)) \(u)\n"
        for (name, offset, length) in regions {
            let o = offset ?? 0
            let sum = offset == nil || length == 0 ? sha256(UnsafeRawBufferPointer(start: nil, count: 0))
                : try sha256(of: url, from: o, length: length)
            text += "tensor \(o) \(length) \(sum) \(name)\n"
        }
        text += "\n"
        var bytes = Array(text.utf8)
        guard bytes.count <= u else { throw FFError(.io, "internal: checkpoint integrity record too long", file: url) }
        bytes += [UInt8](repeating: 0, count: u - bytes.count)
        let h = try FileHandle(forUpdating: url)
        defer { try? h.close() }
        try h.seek(toOffset: 0)
        try h.write(contentsOf: Data(bytes))
    }

    static func sha256(of url: URL, from offset: Int, length: Int) throws -> String {
        var hex = [CChar](repeating: 0, count: 65)
        guard ffio_sha256_file_range(url.path, Int64(offset), Int64(length), &hex) == 0 else {
            throw FFError(.corrupt, "Checkpoint \(url.path): \(String(cString: ffio_last_error())) (bytes \(offset)+\(length)); "
                + "the file is truncated or damaged.", file: url)
        }
        return String(cString: hex)
    }

    /// Checks the integrity record before the file is handed to HDF5. Files without one
    /// (older checkpoints, other tools' files) pass unchecked; a user block that is not a
    /// valid record is damage.
    static func verifyIntegrityRecord(_ url: URL, foreign: Bool) throws {
        guard let h = FileHandle(forReadingAtPath: url.path) else { return }  // HDF5File reports it
        defer { try? h.close() }
        let head = [UInt8]((try? h.read(upToCount: 64 << 10)) ?? Data())
        let hdf5: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        if head.starts(with: hdf5) { return }
        guard head.starts(with: Array(integrityMagic.utf8)) else {
            // HDF5 behind a user block that is not our record: most likely a checkpoint
            // whose first bytes are damaged; refused rather than parsed unchecked.
            if ffio_h5_is_hdf5(url.path) == 1 {
                throw FFError(.corrupt, "\(url.path) is an HDF5 file with a user block that is not an ffrepro integrity "
                    + "record: a checkpoint whose first bytes are damaged, or a file not written by repro.", file: url)
            }
            return
        }
        func damaged(_ why: String) -> FFError {
            FFError(.corrupt, "Checkpoint \(url.path): \(why); the file is damaged. Use another checkpoint (best.h5 / "
                + "last.h5) or train again.", file: url)
        }
        guard let end = head.firstIndex(of: 0) ?? Optional(head.count), let text = String(validating: head[..<end], as: UTF8.self) else {
            throw damaged("its integrity record is not text")
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let first = lines.count > 1 ? lines[1].split(separator: " ").map(String.init) : []
        guard first.count == 3, first[0] == "file", let u = Int(first[2]), u >= 512, u <= 1 << 24, u & (u - 1) == 0,
              let size = AtomicFile.size(of: url), size > u else {
            throw damaged("its integrity record is malformed")
        }
        if try sha256(of: url, from: u, length: size - u) == first[1] { return }
        for line in lines.dropFirst(2) where line.hasPrefix("tensor ") {
            let f = line.split(separator: " ", maxSplits: 4).map(String.init)
            guard f.count == 5, let o = Int(f[1]), let n = Int(f[2]), o >= u, n >= 0, o <= size - n else { continue }
            if n > 0, try sha256(of: url, from: o, length: n) != f[3] {
                throw damaged("tensor '\(f[4])' does not match its checksum (bytes \(o)..<\(o + n) changed)")
            }
        }
        throw damaged("its structure or attributes (not the tensor data) do not match the file checksum")
    }

    public static let checksumsKey = "ffrepro_checksums"
    public static let checksumsScheme = "sha256-v1"
    public static let attributesChecksumKey = "ffrepro_attributes_sha256"
    public static let datasetChecksumKey = "sha256"

    static func sha256(_ bytes: UnsafeRawBufferPointer) -> String {
        var ctx = ffio_sha256_ctx()
        ffio_sha256_init(&ctx)
        if let base = bytes.baseAddress { ffio_sha256_update(&ctx, base, bytes.count) }
        var digest = [UInt8](repeating: 0, count: 32)
        ffio_sha256_final(&ctx, &digest)
        return digest.map { String(format: "%02x", $0) }.joined()
    }

    /// See the file comment: strings as key NUL value NUL; numbers as key NUL "i:" or "d:"
    /// and the comma-separated values (doubles as bit patterns) NUL, a scalar like a list of
    /// one; all in byte order of the keys.
    static func attributesDigest(_ attributes: [String: String], _ numbers: [String: NumericAttribute] = [:]) -> String {
        var entries: [(String, [UInt8])] = attributes.map { ($0.key, Array($0.value.utf8)) }
        for (key, value) in numbers {
            let text: String
            if let ints = value.integers {
                text = "i:" + ints.map(String.init).joined(separator: ",")
            } else {
                text = "d:" + value.reals.map { String($0.bitPattern, radix: 16) }.joined(separator: ",")
            }
            entries.append((key, Array(text.utf8)))
        }
        var bytes: [UInt8] = []
        for (key, value) in entries.sorted(by: { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }) {
            bytes += Array(key.utf8) + [0] + value + [0]
        }
        return bytes.withUnsafeBytes { sha256($0) }
    }

    /// Number of NaN/Inf values, nil if none.
    static func nonFinite(_ values: UnsafeBufferPointer<Float>) -> Int? {
        var bad = 0
        for v in values where !v.isFinite { bad += 1 }
        return bad == 0 ? nil : bad
    }

    /// What one file promises about itself, checked dataset by dataset while reading.
    struct Integrity {
        let file: HDF5File
        let required: Bool

        init(_ file: HDF5File, attributes: [String: String], numbers: [String: NumericAttribute], foreign: Bool) throws {
            self.file = file
            let scheme = file.hasAttribute(Checkpoint.checksumsKey) ? try? file.stringAttribute(Checkpoint.checksumsKey) : nil
            required = scheme != nil
            if let s = scheme, s != Checkpoint.checksumsScheme {
                throw FFError(.format, "Checkpoint \(file.path) uses checksum scheme '\(s)'; this build knows "
                    + "'\(Checkpoint.checksumsScheme)'. Use the repro version that wrote it.", file: file.url)
            }
            if required {
                guard file.hasAttribute(Checkpoint.attributesChecksumKey),
                      let stored = try? file.stringAttribute(Checkpoint.attributesChecksumKey) else {
                    throw FFError(.corrupt, "Checkpoint \(file.path) lacks '\(Checkpoint.attributesChecksumKey)'; the file "
                        + "is damaged or was edited.", file: file.url)
                }
                let computed = Checkpoint.attributesDigest(attributes, numbers)
                if stored != computed {
                    throw FFError(.corrupt, "Checkpoint \(file.path): its run attributes (config, input_shape, classes, "
                        + "history, ...) do not match their checksum; the file was edited or is damaged. Use another "
                        + "checkpoint, or one written by `repro run`.", file: file.url)
                }
            }
        }

        /// Verifies dataset `name` (its bytes as read, `stored` its type in the file).
        func check(_ name: String, bytes: UnsafeRawBufferPointer, stored: HDF5Type) throws {
            let has = file.hasAttribute(Checkpoint.datasetChecksumKey, on: name)
            guard has else {
                if required {
                    throw FFError(.corrupt, "Checkpoint \(file.path): dataset '\(name)' has no checksum although the file "
                        + "promises one for every dataset; it was added or replaced after writing.", file: file.url)
                }
                return
            }
            let expected = try file.stringAttribute(Checkpoint.datasetChecksumKey, on: name)
            // Our tensors are float32 and our arrays uint64; another stored type means the
            // dataset was rewritten.
            guard stored == .float32 || stored == .uint64 else {
                throw FFError(.corrupt, "Checkpoint \(file.path): tensor '\(name)' is stored as \(stored), not as written "
                    + "(float32 or uint64); the file was edited. Use another checkpoint.", file: file.url)
            }
            let computed = Checkpoint.sha256(bytes)
            if computed != expected {
                throw FFError(.corrupt, "Checkpoint \(file.path): tensor '\(name)' does not match its checksum (sha256 "
                    + "\(computed.prefix(16))..., recorded \(expected.prefix(16))...); the file is damaged. Use another "
                    + "checkpoint (best.h5 / last.h5) or train again.", file: file.url)
            }
        }
    }
}

extension Checkpoint {
    /// A digest of the model's weights alone (`params/` and `buffers/` tensors, not the
    /// optimizer state or attributes), read from the integrity record without parsing HDF5:
    /// a run's best.h5 and a weights-only export of it share it. Nil for files without a
    /// record (older checkpoints, other tools' files).
    public static func weightsDigest(of url: URL) -> String? {
        guard let h = FileHandle(forReadingAtPath: url.path) else { return nil }
        defer { try? h.close() }
        let head = [UInt8]((try? h.read(upToCount: 64 << 10)) ?? Data())
        guard head.starts(with: Array(integrityMagic.utf8)), let end = head.firstIndex(of: 0) ?? Optional(head.count),
              let text = String(validating: head[..<end], as: UTF8.self) else { return nil }
        var entries: [String] = []
        for line in text.split(separator: "\n") where line.hasPrefix("tensor ") {
            let f = line.split(separator: " ", maxSplits: 4).map(String.init)
            guard f.count == 5, f[4].hasPrefix("params/") || f[4].hasPrefix("buffers/") else { continue }
            entries.append("\(f[4])\u{0}\(f[3])")
        }
        guard !entries.isEmpty else { return nil }
        let bytes = Array(entries.sorted().joined(separator: "\n").utf8)
        return bytes.withUnsafeBytes { sha256($0) }
    }
}
