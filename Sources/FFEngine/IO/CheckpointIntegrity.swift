import FFIO
import Foundation

/// Checksums that make a damaged or edited checkpoint fail loudly instead of evaluating
/// garbage. They are additions to format version 1, so older files stay valid:
///
/// - every dataset carries a string attribute `sha256`: the hex SHA-256 of its data as stored
///   (little-endian float32 for tensors, uint64 for arrays), in row-major order;
/// - the root attribute `ffrepro_checksums` = "sha256-v1" says that every dataset has one
///   (a missing one is then an error);
/// - the root attribute `ffrepro_attributes_sha256` is the SHA-256 of the run attributes
///   (config, input_shape, classes, history, ...): for each key in byte order, the key, a NUL
///   byte, the UTF-8 value, a NUL byte.
///
/// Files without `ffrepro_checksums` (written before it existed, or by other tools) are read
/// without these checks; NaN/Inf tensors are refused either way.
extension Checkpoint {
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

    static func attributesDigest(_ attributes: [String: String]) -> String {
        var bytes: [UInt8] = []
        for key in attributes.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            bytes += Array(key.utf8) + [0] + Array((attributes[key] ?? "").utf8) + [0]
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

        init(_ file: HDF5File, attributes: [String: String], foreign: Bool) throws {
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
                let computed = Checkpoint.attributesDigest(attributes)
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
