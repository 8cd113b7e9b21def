import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// TensorBoard event files (`repro run --tensorboard DIR`): the TFRecord framing (length,
/// masked CRC-32C of the length, data, masked CRC-32C of the data) around `Event` protocol
/// buffers with scalar `Summary` values, written by hand (no protobuf dependency). The
/// fields used: Event{1 wall_time double, 2 step int64, 3 file_version string, 5 summary},
/// Summary{1 repeated Value}, Value{1 tag string, 2 simple_value float}.
public final class EventWriter {
    public let url: URL
    private let handle: FileHandle

    /// Creates `directory` and a new event file in it (TensorBoard reads every file of a
    /// folder in name order, so a resumed run simply adds one).
    public init(directory: URL) throws {
        try DirectoryLock.createDirectory(directory)
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let name = "events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(String(cString: host)).\(getpid())"
        url = directory.appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: url.path, contents: nil), let h = FileHandle(forWritingAtPath: url.path) else {
            throw FFError(.io, "Cannot create the TensorBoard event file \(url.path); check that \(directory.path) is "
                + "writable.", file: url)
        }
        handle = h
        var e = ProtoWriter()
        e.double(1, Date().timeIntervalSince1970)
        e.string(3, "brain.Event:2")
        try record(e.bytes)
    }

    deinit { try? handle.close() }

    /// One scalar at a global step.
    public func scalar(_ tag: String, _ value: Double, step: Int) throws {
        try scalars([(tag, value)], step: step)
    }

    /// Several scalars of one step in one event.
    public func scalars(_ values: [(String, Double)], step: Int) throws {
        guard !values.isEmpty else { return }
        var summary = ProtoWriter()
        for (tag, v) in values where v.isFinite {
            var value = ProtoWriter()
            value.string(1, tag)
            value.float(2, Float(v))
            summary.message(1, value.bytes)
        }
        var e = ProtoWriter()
        e.double(1, Date().timeIntervalSince1970)
        e.varint(2, UInt64(bitPattern: Int64(step)))
        e.message(5, summary.bytes)
        try record(e.bytes)
    }

    private func record(_ data: [UInt8]) throws {
        var out: [UInt8] = []
        let n = UInt64(data.count)
        let len = (0..<8).map { UInt8((n >> (8 * UInt64($0))) & 0xff) }
        out += len
        out += EventWriter.le32(EventWriter.maskedCRC(len))
        out += data
        out += EventWriter.le32(EventWriter.maskedCRC(data))
        do {
            try handle.write(contentsOf: Data(out))
        } catch {
            throw FFError(.io, "Cannot write the TensorBoard event file \(url.path): \(error.localizedDescription).", file: url)
        }
    }

    static func le32(_ x: UInt32) -> [UInt8] { (0..<4).map { UInt8((x >> (8 * UInt32($0))) & 0xff) } }

    static let crcTable: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// CRC-32C (Castagnoli), as TFRecord uses it.
    static func crc32c(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func maskedCRC(_ bytes: [UInt8]) -> UInt32 {
        let c = crc32c(bytes)
        return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
    }

    /// The scalars of an event file (tag, step, value), checking every CRC: what a reader
    /// such as TensorBoard gets back.
    public static func readScalars(_ url: URL) throws -> [(tag: String, step: Int, value: Float)] {
        let data = [UInt8](try Data(contentsOf: url))
        func bad(_ why: String) -> FFError { FFError(.corrupt, "\(url.path) is not a valid event file: \(why).", file: url) }
        var out: [(String, Int, Float)] = []
        var i = 0
        while i < data.count {
            guard i + 12 <= data.count else { throw bad("a record header is cut short") }
            let lenBytes = Array(data[i..<(i + 8)])
            let n = lenBytes.enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
            guard le32(maskedCRC(lenBytes)) == Array(data[(i + 8)..<(i + 12)]) else { throw bad("length CRC mismatch") }
            guard i + 12 + n + 4 <= data.count else { throw bad("a record is cut short") }
            let body = Array(data[(i + 12)..<(i + 12 + n)])
            guard le32(maskedCRC(body)) == Array(data[(i + 12 + n)..<(i + 16 + n)]) else { throw bad("data CRC mismatch") }
            var step = 0
            var summaries: [[UInt8]] = []
            for (field, value) in try ProtoReader.fields(body) {
                if field == 2, case .varint(let v) = value { step = Int(Int64(bitPattern: v)) }
                if field == 5, case .bytes(let b) = value { summaries.append(b) }
            }
            for s in summaries {
                for (f, v) in try ProtoReader.fields(s) where f == 1 {
                    guard case .bytes(let valueBytes) = v else { continue }
                    var tag = "", x: Float = .nan
                    for (vf, vv) in try ProtoReader.fields(valueBytes) {
                        if vf == 1, case .bytes(let t) = vv { tag = String(decoding: t, as: UTF8.self) }
                        if vf == 2, case .fixed32(let bits) = vv { x = Float(bitPattern: bits) }
                    }
                    out.append((tag, step, x))
                }
            }
            i += 16 + n
        }
        return out
    }
}

/// Protocol-buffer encoding of the few wire types the events need.
struct ProtoWriter {
    var bytes: [UInt8] = []

    mutating func rawVarint(_ v: UInt64) {
        var x = v
        while x >= 0x80 { bytes.append(UInt8(x & 0x7f) | 0x80); x >>= 7 }
        bytes.append(UInt8(x))
    }
    mutating func key(_ field: Int, _ wire: UInt64) { rawVarint(UInt64(field) << 3 | wire) }
    mutating func varint(_ field: Int, _ v: UInt64) { key(field, 0); rawVarint(v) }
    mutating func double(_ field: Int, _ v: Double) {
        key(field, 1)
        bytes += (0..<8).map { UInt8((v.bitPattern >> (8 * UInt64($0))) & 0xff) }
    }
    mutating func float(_ field: Int, _ v: Float) {
        key(field, 5)
        bytes += (0..<4).map { UInt8((v.bitPattern >> (8 * UInt32($0))) & 0xff) }
    }
    mutating func message(_ field: Int, _ b: [UInt8]) { key(field, 2); rawVarint(UInt64(b.count)); bytes += b }
    mutating func string(_ field: Int, _ s: String) { message(field, Array(s.utf8)) }
}

/// The matching decoder (tests and `readScalars`).
enum ProtoReader {
    enum Value { case varint(UInt64), fixed64(UInt64), bytes([UInt8]), fixed32(UInt32) }

    static func fields(_ b: [UInt8]) throws -> [(Int, Value)] {
        var out: [(Int, Value)] = []
        var i = 0
        func varint() throws -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard i < b.count, shift < 64 else { throw FFError(.corrupt, "a protocol buffer is cut short") }
                let x = b[i]; i += 1
                v |= UInt64(x & 0x7f) << shift
                if x < 0x80 { return v }
                shift += 7
            }
        }
        func fixed(_ n: Int) throws -> UInt64 {
            guard i + n <= b.count else { throw FFError(.corrupt, "a protocol buffer is cut short") }
            let v = (0..<n).reduce(UInt64(0)) { $0 | UInt64(b[i + $1]) << (8 * UInt64($1)) }
            i += n
            return v
        }
        while i < b.count {
            let k = try varint()
            let field = Int(k >> 3)
            switch k & 7 {
            case 0: out.append((field, .varint(try varint())))
            case 1: out.append((field, .fixed64(try fixed(8))))
            case 2:
                let n = Int(try varint())
                guard n >= 0, i + n <= b.count else { throw FFError(.corrupt, "a protocol buffer is cut short") }
                out.append((field, .bytes(Array(b[i..<(i + n)]))))
                i += n
            case 5: out.append((field, .fixed32(UInt32(try fixed(4)))))
            default: throw FFError(.corrupt, "unknown protocol buffer wire type \(k & 7)")
            }
        }
        return out
    }
}

/// The checksum, for tests.
public enum EventWriterProbe {
    public static func crc32c(_ bytes: [UInt8]) -> UInt32 { EventWriter.crc32c(bytes) }
}
