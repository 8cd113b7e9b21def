import Foundation

/// A training checkpoint: named float32 tensors, named uint64 arrays (RNG states, counters),
/// string attributes and typed numeric attributes, stored in one HDF5 file.
///
/// On disk: a tensor "params/layer3.conv.weight" is the float32 dataset of that path (the
/// groups "params" etc. are created), uint64 arrays likewise; attributes are variable-length
/// UTF-8 string attributes of the root group, numbers are int64 or float64 attributes
/// (scalars without a dimension, lists one-dimensional). Reserved root attributes: `ffrepro_format`
/// ("ffrepro-checkpoint"), `ffrepro_format_version` and `ffrepro_order` (JSON list of the
/// dataset names in insertion order). Files are written atomically.
public struct Checkpoint {
    public static let format = "ffrepro-checkpoint"
    public static let formatVersion = "1"
    static let reserved: Set<String> = ["ffrepro_format", "ffrepro_format_version", "ffrepro_order"]

    public var tensors: [(String, Tensor)]
    public var uint64Arrays: [(String, [UInt64])]
    public var attributes: [String: String]
    /// Numeric root attributes (h5py reads them as numbers, not strings).
    public var numbers: [String: NumericAttribute] = [:]
    /// The file this checkpoint was read from (for error messages); nil if built in memory.
    public var source: URL?

    public init(tensors: [(String, Tensor)] = [], attributes: [String: String] = [:],
                uint64Arrays: [(String, [UInt64])] = []) {
        self.tensors = tensors
        self.attributes = attributes
        self.uint64Arrays = uint64Arrays
    }

    public func tensor(_ name: String) -> Tensor? { tensors.first { $0.0 == name }?.1 }
    public func uint64Array(_ name: String) -> [UInt64]? { uint64Arrays.first { $0.0 == name }?.1 }

    // MARK: writing

    /// Writes to a temporary file next to `url`, fsyncs and renames it; on any failure the
    /// temporary file is removed and an existing file at `url` is left untouched.
    public func write(to url: URL) throws {
        let names = tensors.map(\.0) + uint64Arrays.map(\.0)
        try Checkpoint.checkNames(names, file: url)
        if let bad = attributes.keys.first(where: { numbers[$0] != nil }) {
            throw FFError(.invalidArgument, "Cannot write checkpoint \(url.path): the attribute '\(bad)' is given both "
                + "as a string and as a number.", file: url)
        }
        if let bad = Set(attributes.keys).union(numbers.keys).first(where: { Checkpoint.reserved.contains($0) }) {
            throw FFError(.invalidArgument, "Cannot write checkpoint \(url.path): the attribute name '\(bad)' "
                + "is reserved by the checkpoint format; rename it.", file: url)
        }
        let temp = AtomicFile.temporaryURL(for: url)
        do {
            let file = try HDF5File(temp, mode: .create)
            for (name, t) in tensors {
                let d = try file.createDataset(name, type: .float32, shape: t.shape)
                try d.write(UnsafeBufferPointer(t.buffer), start: nil, count: nil)
            }
            for (name, values) in uint64Arrays {
                let d = try file.createDataset(name, type: .uint64, shape: [values.count])
                try values.withUnsafeBufferPointer { try d.write($0, start: nil, count: nil) }
            }
            try file.setAttribute("ffrepro_format", Checkpoint.format)
            try file.setAttribute("ffrepro_format_version", Checkpoint.formatVersion)
            let order = try JSONSerialization.data(withJSONObject: names)
            try file.setAttribute("ffrepro_order", String(decoding: order, as: UTF8.self))
            for key in attributes.keys.sorted() { try file.setAttribute(key, attributes[key]!) }
            for key in numbers.keys.sorted() { try numbers[key]!.write(to: file, name: key) }
            try file.close()
            try AtomicFile.commit(temp, to: url)
        } catch {
            try? FileManager.default.removeItem(at: temp)
            if let e = error as? FFError {
                throw FFError(e.kind, "Cannot write checkpoint \(url.path): \(e.message) "
                    + "Nothing was written; an existing file there is unchanged.", file: url)
            }
            throw error
        }
    }

    static func checkNames(_ names: [String], file: URL) throws {
        var seen = Set<String>()
        for n in names {
            let parts = n.split(separator: "/", omittingEmptySubsequences: false)
            if n.isEmpty || parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
                throw FFError(.invalidArgument, "Cannot write checkpoint \(file.path): '\(n)' is not a valid "
                    + "tensor name (use non-empty components separated by '/').", file: file)
            }
            if !seen.insert(n).inserted {
                throw FFError(.invalidArgument, "Cannot write checkpoint \(file.path): the name '\(n)' is used twice.", file: file)
            }
        }
    }

    // MARK: reading

    /// Reads a checkpoint. `allowForeign` accepts HDF5 files written by other tools (for
    /// example h5py): every float dataset becomes a tensor, every integer one a uint64 array.
    public static func read(from url: URL, allowForeign: Bool = false) throws -> Checkpoint {
        let file = try HDF5File(url)
        let attrs = try readAttributes(file, allowForeign: allowForeign)
        var order = try file.datasetNames()
        if file.hasAttribute("ffrepro_order"),
           let data = try file.stringAttribute("ffrepro_order").data(using: .utf8),
           let listed = try? JSONSerialization.jsonObject(with: data) as? [String] {
            let present = Set(order)
            if let gone = listed.first(where: { !present.contains($0) }) {
                throw FFError(.corrupt, "Checkpoint \(url.path) lists '\(gone)' but has no such dataset; "
                    + "the file is damaged. Use an earlier checkpoint.", file: url)
            }
            order = listed + order.filter { !Set(listed).contains($0) }
        }
        var ckpt = Checkpoint(attributes: attrs)
        ckpt.numbers = try readNumbers(file)
        ckpt.source = url
        for name in order {
            let d = try file.dataset(name)
            switch d.type {
            case .float32, .float64:
                let t = Tensor(uninitialized: d.shape)
                try d.read(into: t.buffer)
                ckpt.tensors.append((name, t))
            case .uint8, .int32, .int64, .uint64:
                ckpt.uint64Arrays.append((name, try d.read(as: UInt64.self)))
            default:
                if !allowForeign {
                    throw FFError(.format, "Checkpoint \(url.path): dataset '\(name)' has type \(d.type), "
                        + "not float32 or uint64.", file: url)
                }
            }
        }
        return ckpt
    }

    /// Only the string attributes (cheap: no tensor data is read).
    public static func readAttributes(from url: URL, allowForeign: Bool = false) throws -> [String: String] {
        try readAttributes(HDF5File(url), allowForeign: allowForeign)
    }

    static func readAttributes(_ file: HDF5File, allowForeign: Bool) throws -> [String: String] {
        if !allowForeign {
            guard file.hasAttribute("ffrepro_format"),
                  (try? file.stringAttribute("ffrepro_format")) == format else {
                var hint = ""
                if (try? file.stringAttribute("format")) == ShardFormat.name { hint = " It is a dataset shard." }
                throw FFError(.format, "\(file.path) is an HDF5 file but not an ffrepro checkpoint (its "
                    + "'ffrepro_format' attribute is missing or differs).\(hint) Pass the path of a checkpoint "
                    + "written by repro.", file: file.url)
            }
            let version = try file.stringAttribute("ffrepro_format_version")
            if version != formatVersion {
                throw FFError(.format, "Checkpoint \(file.path) has format version \(version); this build reads "
                    + "version \(formatVersion). Use the repro version that wrote it.", file: file.url)
            }
        }
        var out: [String: String] = [:]
        for name in try file.attributeNames() where !reserved.contains(name) {
            let (type, _) = try file.attributeInfo(name)
            if type == .string { out[name] = try file.stringAttribute(name) }
        }
        return out
    }

    /// Only the numeric attributes (cheap: no tensor data is read).
    public static func readNumbers(from url: URL) throws -> [String: NumericAttribute] {
        let file = try HDF5File(url)
        _ = try readAttributes(file, allowForeign: false)
        return try readNumbers(file)
    }

    static func readNumbers(_ file: HDF5File) throws -> [String: NumericAttribute] {
        var out: [String: NumericAttribute] = [:]
        for name in try file.attributeNames() where !reserved.contains(name) {
            let (type, count) = try file.attributeInfo(name)
            switch type {
            case .int32, .int64, .uint8:
                let v = try file.attribute(name, as: Int64.self)
                out[name] = count == 1 ? .int(v[0]) : .ints(v)
            case .uint64:
                let v = try file.attribute(name, as: UInt64.self).map { Int64(truncatingIfNeeded: $0) }
                out[name] = count == 1 ? .int(v[0]) : .ints(v)
            case .float32, .float64:
                let v = try file.attribute(name, as: Double.self)
                out[name] = count == 1 ? .double(v[0]) : .doubles(v)
            default:
                continue
            }
        }
        return out
    }

    // MARK: validation

    /// One sentence per problem: missing tensors, shape mismatches, and (unless
    /// `allowExtra`) tensors the model does not have. Empty if everything matches.
    public func problems(expected: [(String, [Int])], allowExtra: Bool = true) -> [String] {
        var out: [String] = []
        var have: [String: [Int]] = [:]
        for (n, t) in tensors { have[n] = t.shape }
        for (name, shape) in expected {
            guard let found = have[name] else {
                out.append("parameter '\(name)' (expected shape \(shape)) is missing")
                continue
            }
            if found != shape {
                out.append("parameter '\(name)' has shape \(found) in the file but the model expects \(shape)")
            }
        }
        if !allowExtra {
            let wanted = Set(expected.map(\.0))
            for (n, t) in tensors where !wanted.contains(n) {
                out.append("the file has parameter '\(n)' (shape \(t.shape)) that the model does not have")
            }
        }
        return out
    }

    /// Throws an error naming the file and every problem if the tensors do not match.
    public func validate(expected: [(String, [Int])], allowExtra: Bool = true) throws {
        let p = problems(expected: expected, allowExtra: allowExtra)
        guard !p.isEmpty else { return }
        let where_ = source.map { "Checkpoint \($0.path)" } ?? "The checkpoint"
        throw FFError(.mismatch, "\(where_) does not match the model: " + p.joined(separator: "; ")
            + ". It was written for a different model configuration; load it with the configuration stored "
            + "in its 'config' attribute, or start a new run.", path: source?.path)
    }
}

/// A numeric checkpoint attribute. A one-element list reads back as a scalar (HDF5 keeps
/// the difference, the reader here does not need it): use `integers`/`reals` for lists.
public enum NumericAttribute: Equatable {
    case int(Int64)
    case ints([Int64])
    case double(Double)
    case doubles([Double])

    public var integers: [Int]? {
        switch self {
        case let .int(v): return [Int(v)]
        case let .ints(v): return v.map { Int($0) }
        default: return nil
        }
    }

    public var integer: Int? { integers.flatMap { $0.count == 1 ? $0[0] : nil } }

    public var reals: [Double] {
        switch self {
        case let .int(v): return [Double(v)]
        case let .ints(v): return v.map(Double.init)
        case let .double(v): return [v]
        case let .doubles(v): return v
        }
    }

    func write(to file: HDF5File, name: String) throws {
        switch self {
        case let .int(v): try file.setAttribute(name, [v], scalar: true)
        case let .ints(v): try file.setAttribute(name, v)
        case let .double(v): try file.setAttribute(name, [v], scalar: true)
        case let .doubles(v): try file.setAttribute(name, v)
        }
    }
}
