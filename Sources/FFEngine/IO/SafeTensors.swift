import Foundation

/// The safetensors format (Hugging Face; what timm and other hubs publish):
///   8 bytes   little-endian u64 N, the header length
///   N bytes   JSON: {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
///              "__metadata__": {"<key>": "<string>"}} (optional metadata)
///   the data  raw little-endian tensors, row-major; offsets are relative to its start
/// Reading parses and validates the header only; tensors are read on demand, converted to
/// float32 (from F32, F16, BF16, F64) or to Int64 (integer dtypes).
public struct SafeTensors {
    public struct Entry {
        public let name: String
        public let dtype: String
        public let shape: [Int]
        /// Byte range inside the data section.
        public let begin: Int
        public let end: Int
        public var isFloat: Bool { SafeTensors.floatSizes[dtype] != nil }
    }

    static let floatSizes = ["F32": 4, "F16": 2, "BF16": 2, "F64": 8]
    static let intSizes = ["I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1, "U16": 2, "U32": 4, "U64": 8]
    /// Headers are small (names and shapes); a larger one means a damaged or hostile file.
    /// Bounds on what a header may ask of memory: Foundation's JSON objects take ~4 kB per
    /// entry, so 1.6 M tiny entries once cost 6.4 GB. The largest published CNN state dicts
    /// have a few thousand tensors and headers of ~200 kB.
    static let maxHeaderBytes = 16 << 20
    static let maxEntries = 100_000

    public let url: URL
    public let metadata: [String: String]
    /// Entries in file (data) order.
    public let entries: [Entry]
    let dataStart: Int

    public func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }

    public static func read(_ url: URL) throws -> SafeTensors {
        func bad(_ why: String) -> FFError {
            FFError(.corrupt, "\(url.path) is not a readable safetensors file: \(why).", file: url)
        }
        try RegularFile.check(url, what: "safetensors file", hint: "Give a .safetensors file.")
        guard let h = FileHandle(forReadingAtPath: url.path) else {
            throw FFError(.missing, "cannot open \(url.path): the file does not exist or is not readable.", file: url)
        }
        defer { try? h.close() }
        let fileSize = Int((try? h.seekToEnd()) ?? 0)
        try h.seek(toOffset: 0)
        guard let lenBytes = try h.read(upToCount: 8), lenBytes.count == 8 else { throw bad("shorter than its 8-byte header length") }
        let n = lenBytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard n >= 2, n <= UInt64(maxHeaderBytes), Int(n) + 8 <= fileSize else {
            throw bad("its header length \(n) does not fit a file of \(fileSize) bytes")
        }
        guard let headerData = try h.read(upToCount: Int(n)), headerData.count == Int(n) else {
            throw bad("its header is cut short")
        }
        // Counted before parsing: every entry has exactly one "data_offsets" key.
        let entryCount = headerData.withUnsafeBytes { raw -> Int in
            let key = Array("data_offsets".utf8), b = raw.bindMemory(to: UInt8.self)
            var count = 0, i = 0
            while i + key.count <= b.count {
                if b[i] == key[0], zip(key.indices, key).allSatisfy({ b[i + $0] == $1 }) { count += 1; i += key.count } else { i += 1 }
            }
            return count
        }
        guard entryCount <= maxEntries else {
            throw bad("its header lists \(entryCount) tensors, more than the \(maxEntries) a model file can hold")
        }
        guard let root = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw bad("its header is not a JSON object")
        }
        let dataStart = 8 + Int(n), dataSize = fileSize - dataStart
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for (name, value) in root {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw bad("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw bad("__metadata__[\(k)] is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offs = info["data_offsets"] as? [Int], offs.count == 2 else {
                throw bad("the entry '\(name)' lacks dtype, shape or data_offsets")
            }
            guard let size = floatSizes[dtype] ?? intSizes[dtype] else {
                throw bad("tensor '\(name)' has dtype \(dtype), which ffrepro does not read")
            }
            guard shape.allSatisfy({ $0 >= 0 && $0 < (1 << 40) }) else { throw bad("tensor '\(name)' has shape \(shape)") }
            var count = 1
            for d in shape {
                let (m, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow, m <= dataSize else { throw bad("tensor '\(name)' has shape \(shape), larger than the file") }
                count = m
            }
            guard offs[0] >= 0, offs[0] <= offs[1], offs[1] <= dataSize, offs[1] - offs[0] == count * size else {
                throw bad("tensor '\(name)' (\(dtype) \(shape)) has data_offsets \(offs) that do not match its size "
                    + "or lie outside the \(dataSize) data bytes")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: offs[0], end: offs[1]))
        }
        entries.sort { $0.begin < $1.begin }
        for (a, b) in zip(entries, entries.dropFirst()) where a.end > b.begin {
            throw bad("tensors '\(a.name)' and '\(b.name)' overlap")
        }
        return SafeTensors(url: url, metadata: metadata, entries: entries, dataStart: dataStart)
    }

    private func bytes(_ e: Entry) throws -> Data {
        guard let h = FileHandle(forReadingAtPath: url.path) else {
            throw FFError(.missing, "cannot reopen \(url.path).", file: url)
        }
        defer { try? h.close() }
        try h.seek(toOffset: UInt64(dataStart + e.begin))
        guard let d = try h.read(upToCount: e.end - e.begin), d.count == e.end - e.begin else {
            throw FFError(.corrupt, "\(url.path): tensor '\(e.name)' is cut short; the file is truncated.", file: url)
        }
        return d
    }

    /// A floating-point tensor as float32.
    public func tensor(_ e: Entry) throws -> Tensor {
        guard e.isFloat else {
            throw FFError(.format, "\(url.path): tensor '\(e.name)' is \(e.dtype), not floating point.", file: url)
        }
        let d = try bytes(e)
        let t = Tensor(uninitialized: e.shape)
        let out = t.pointer
        d.withUnsafeBytes { raw in
            let n = t.count
            switch e.dtype {
            case "F32" where 1.littleEndian == 1: _ = raw.copyBytes(to: UnsafeMutableRawBufferPointer(start: out, count: 4 * n))
            case "F32": for i in 0..<n { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            case "F64": for i in 0..<n { out[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
            case "BF16": for i in 0..<n { out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
            default: for i in 0..<n { out[i] = SafeTensors.half(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
            }
        }
        return t
    }

    /// An integer tensor as Int64 values.
    public func integers(_ e: Entry) throws -> [Int64] {
        guard let size = SafeTensors.intSizes[e.dtype] else {
            throw FFError(.format, "\(url.path): tensor '\(e.name)' is \(e.dtype), not an integer type.", file: url)
        }
        let d = try bytes(e)
        let signed = e.dtype.hasPrefix("I")
        return d.withUnsafeBytes { raw in
            (0..<(d.count / size)).map { i -> Int64 in
                var v: UInt64 = 0
                for b in 0..<size { v |= UInt64(raw[i * size + b]) << (8 * UInt64(b)) }
                if signed && size < 8 && v & (1 << (8 * UInt64(size) - 1)) != 0 { v |= ~0 << (8 * UInt64(size)) }
                return Int64(bitPattern: v)
            }
        }
    }

    /// IEEE 754 binary16 to Float (subnormals, infinities and NaN included).
    static func half(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31, exp = Int((h >> 10) & 0x1F), frac = UInt32(h & 0x3FF)
        if exp == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (frac << 13)) }
        if exp == 0 {
            let m = Float(frac) * Float(sign != 0 ? -1 : 1)
            return m * 5.960_464_5e-8   // 2^-24
        }
        return Float(bitPattern: sign | (UInt32(exp + 112) << 23) | (frac << 13))
    }

    /// Writes float32 tensors and int64 arrays as a safetensors file, atomically.
    public static func write(_ tensors: [(String, Tensor)], integers: [(String, [Int64])] = [],
                             metadata: [String: String] = [:], to url: URL) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var data = Data()
        for (name, t) in tensors {
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [data.count, data.count + 4 * t.count]]
            if 1.littleEndian == 1 {
                data.append(UnsafeBufferPointer(start: t.pointer, count: t.count))
            } else {
                for i in 0..<t.count { withUnsafeBytes(of: t[i].bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            }
        }
        for (name, v) in integers {
            header[name] = ["dtype": "I64", "shape": [v.count], "data_offsets": [data.count, data.count + 8 * v.count]]
            for x in v { withUnsafeBytes(of: x.littleEndian) { data.append(contentsOf: $0) } }
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }   // the format pads the header with spaces
        var file = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        file.append(data)
        try AtomicFile.write(file, to: url)
    }
}
