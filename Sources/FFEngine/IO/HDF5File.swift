import FFIO
import Foundation

/// Element types that can be stored in HDF5 datasets and numeric attributes.
public protocol HDF5Element {
    static var hdf5Type: HDF5Type { get }
    init()
}

public enum HDF5Type: Int32, CustomStringConvertible {
    case uint8 = 1, int32 = 2, int64 = 3, uint64 = 4, float32 = 5, float64 = 6, string = 7, other = 8

    public var description: String {
        switch self {
        case .uint8: return "uint8"
        case .int32: return "int32"
        case .int64: return "int64"
        case .uint64: return "uint64"
        case .float32: return "float32"
        case .float64: return "float64"
        case .string: return "string"
        case .other: return "another type"
        }
    }
}

extension UInt8: HDF5Element { public static var hdf5Type: HDF5Type { .uint8 } }
extension Int32: HDF5Element { public static var hdf5Type: HDF5Type { .int32 } }
extension Int64: HDF5Element { public static var hdf5Type: HDF5Type { .int64 } }
extension UInt64: HDF5Element { public static var hdf5Type: HDF5Type { .uint64 } }
extension Float: HDF5Element { public static var hdf5Type: HDF5Type { .float32 } }
extension Double: HDF5Element { public static var hdf5Type: HDF5Type { .float64 } }

/// An open HDF5 file (through FFIO's C wrappers). Every error names the file.
public final class HDF5File {
    public enum Mode { case read, readWrite, create }

    public let url: URL
    private(set) var id: Int64
    public var path: String { url.path }

    /// `userblock` (create only): bytes reserved before the HDF5 data (0, or a power of two >= 512).
    public init(_ url: URL, mode: Mode = .read, userblock: Int = 0) throws {
        self.url = url
        let path = url.path
        if mode != .create {
            guard FileManager.default.fileExists(atPath: path) else {
                throw FFError(.missing, "The file \(path) does not exist.", path: path)
            }
            let sig = ffio_h5_is_hdf5(path)
            if sig < 0 {
                throw FFError(.io, "Cannot read \(path): check its permissions.", path: path)
            }
            if sig == 0 {
                throw FFError(.format, "\(path) is not an HDF5 file (no HDF5 signature); "
                    + "it is a different kind of file or was overwritten.", path: path)
            }
        }
        let h = mode == .create ? ffio_h5_create_ex(path, Int64(userblock)) : ffio_h5_open(path, mode == .readWrite ? 1 : 0)
        guard h >= 0 else {
            let reason = String(cString: ffio_last_error())
            if mode == .create {
                throw FFError(.io, "Cannot create \(path): \(reason). Check that the directory exists "
                    + "and is writable.", path: path)
            }
            throw FFError(.corrupt, "\(path) is damaged (probably truncated by an interrupted write or "
                + "copy): \(reason). Delete it and create it again.", path: path)
        }
        id = h
    }

    deinit { if id >= 0 { _ = ffio_h5_close(id) } }

    /// False once closed; datasets of a closed file are closed with it.
    public var isOpen: Bool { id >= 0 }

    public func close() throws {
        guard id >= 0 else { return }
        let rc = ffio_h5_close(id)
        id = -1
        if rc < 0 { throw error("cannot close the file") }
    }

    public func flush() throws {
        if ffio_h5_flush(id) < 0 { throw error("cannot flush the file") }
    }

    /// An error naming this file, with FFIO's last message.
    func error(_ what: String, kind: FFError.Kind = .corrupt) -> FFError {
        let reason = String(cString: ffio_last_error())
        return FFError(kind, "\(path): \(what)\(reason.isEmpty ? "" : " (\(reason))").", path: path)
    }

    public func exists(_ name: String) -> Bool { ffio_h5_exists(id, name) == 1 }

    /// Paths of all datasets, depth first in name order.
    public func datasetNames() throws -> [String] {
        guard let p = ffio_h5_list_datasets(id) else { throw error("cannot list the datasets") }
        defer { ffio_free(p) }
        return String(cString: p).split(separator: "\n").map(String.init)
    }

    public func dataset(_ name: String) throws -> HDF5Dataset {
        let d = ffio_h5_dset_open(id, name)
        guard d >= 0 else {
            if !exists(name) {
                throw FFError(.format, "\(path) has no dataset '\(name)'.", path: path)
            }
            throw error("cannot open dataset '\(name)'")
        }
        return try HDF5Dataset(file: self, name: name, id: d)
    }

    /// A new dataset; parent groups are created as needed. `shape` [] is a scalar.
    public func createDataset(_ name: String, type: HDF5Type, shape: [Int], chunk: [Int]? = nil) throws -> HDF5Dataset {
        let dims = shape.map(Int64.init)
        let d: Int64 = dims.withUnsafeBufferPointer { dp in
            if let chunk = chunk {
                let c = chunk.map(Int64.init)
                return c.withUnsafeBufferPointer { cp in
                    ffio_h5_dset_create(id, name, type.rawValue, Int32(shape.count), dp.baseAddress, cp.baseAddress)
                }
            }
            return ffio_h5_dset_create(id, name, type.rawValue, Int32(shape.count), dp.baseAddress, nil)
        }
        guard d >= 0 else { throw error("cannot create dataset '\(name)'", kind: .io) }
        return try HDF5Dataset(file: self, name: name, id: d)
    }

    /// Writes a whole dataset in one call.
    public func write<T: HDF5Element>(_ name: String, shape: [Int], values: UnsafeBufferPointer<T>) throws {
        let d = try createDataset(name, type: T.hdf5Type, shape: shape)
        try d.write(values, start: nil, count: nil)
    }

    // MARK: attributes ("/" is the root group)

    public func hasAttribute(_ name: String, on obj: String = "/") -> Bool {
        ffio_h5_attr_exists(id, obj, name) == 1
    }

    public func attributeNames(on obj: String = "/") throws -> [String] {
        guard let p = ffio_h5_attr_names(id, obj) else { throw error("cannot list the attributes of '\(obj)'") }
        defer { ffio_free(p) }
        return String(cString: p).split(separator: "\n").map(String.init)
    }

    /// Type and element count of an attribute.
    public func attributeInfo(_ name: String, on obj: String = "/") throws -> (HDF5Type, Int) {
        var t: Int32 = 0
        var n: Int64 = 0
        guard ffio_h5_attr_info(id, obj, name, &t, &n) == 0 else {
            throw FFError(.format, "\(path) has no attribute '\(name)' on '\(obj)'.", path: path)
        }
        return (HDF5Type(rawValue: t) ?? .other, Int(n))
    }

    public func setAttribute(_ name: String, _ value: String, on obj: String = "/") throws {
        if ffio_h5_attr_write_string(id, obj, name, value) < 0 { throw error("cannot write attribute '\(name)'", kind: .io) }
    }

    /// A numeric attribute; `scalar` stores a single value without a dimension.
    public func setAttribute<T: HDF5Element>(_ name: String, _ values: [T], scalar: Bool = false, on obj: String = "/") throws {
        precondition(!scalar || values.count == 1, "a scalar attribute has one value")
        let rc = values.withUnsafeBufferPointer {
            ffio_h5_attr_write(id, obj, name, T.hdf5Type.rawValue, scalar ? 0 : 1, Int64(values.count), $0.baseAddress)
        }
        if rc < 0 { throw error("cannot write attribute '\(name)'", kind: .io) }
    }

    public func stringAttribute(_ name: String, on obj: String = "/") throws -> String {
        guard let p = ffio_h5_attr_read_string(id, obj, name) else {
            if !hasAttribute(name, on: obj) {
                throw FFError(.format, "\(path) has no attribute '\(name)'.", path: path)
            }
            throw error("cannot read attribute '\(name)' as a string", kind: .format)
        }
        defer { ffio_free(p) }
        return String(cString: p)
    }

    public func attribute<T: HDF5Element>(_ name: String, as: T.Type = T.self, on obj: String = "/") throws -> [T] {
        let (_, n) = try attributeInfo(name, on: obj)
        var out = [T](repeating: T(), count: n)
        let rc = out.withUnsafeMutableBufferPointer {
            ffio_h5_attr_read(id, obj, name, T.hdf5Type.rawValue, Int64(n), $0.baseAddress)
        }
        if rc < 0 { throw error("cannot read attribute '\(name)'", kind: .format) }
        return out
    }
}

/// An open dataset. Keeps its file alive.
public final class HDF5Dataset {
    public let file: HDF5File
    public let name: String
    let id: Int64
    public let shape: [Int]
    public let type: HDF5Type

    init(file: HDF5File, name: String, id: Int64) throws {
        self.file = file
        self.name = name
        self.id = id
        var t: Int32 = 0
        var rank: Int32 = 0
        var dims = [Int64](repeating: 0, count: Int(FFIO_MAX_RANK))
        guard ffio_h5_dset_info(id, &t, &rank, &dims) == 0 else {
            _ = ffio_h5_dset_close(id)
            throw file.error("cannot read the shape of dataset '\(name)'")
        }
        // Dimensions come from the file: negative (over 2^63) or overflowing ones are damage.
        let s = dims.prefix(Int(rank)).map { Int($0) }
        var total = 1
        for d in s {
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            guard d >= 0, !overflow else {
                _ = ffio_h5_dset_close(id)
                throw FFError(.corrupt, "\(file.path): dataset '\(name)' declares an impossible shape; the file is damaged.",
                              path: file.path)
            }
            total = p
        }
        shape = s
        count = total
        type = HDF5Type(rawValue: t) ?? .other
    }

    // After the file is closed its datasets are gone too (ffio_h5_close closes them).
    deinit { if file.isOpen { _ = ffio_h5_dset_close(id) } }

    /// Number of elements (checked for overflow when opened).
    public let count: Int

    /// Byte offset of the data in the file, for a contiguous dataset with data written.
    public var fileOffset: Int? {
        let o = ffio_h5_dset_offset(id)
        return o >= 0 ? Int(o) : nil
    }

    /// Writes rows [row, row + count) of a uint8 dataset (all other axes whole); whole
    /// chunks go to the file directly.
    public func writeRows(_ values: UnsafeBufferPointer<UInt8>, row: Int, count: Int) throws {
        let rowElements = shape.dropFirst().reduce(1, *)
        precondition(values.count >= count * rowElements && type == .uint8, "writeRows to \(name)")
        if ffio_h5_dset_write_rows(id, Int64(row), Int64(count), values.baseAddress) < 0 {
            throw file.error("cannot write dataset '\(name)'", kind: .io)
        }
    }

    /// Changes the shape (chunked datasets; shrinking drops the rows beyond the new size).
    public func setExtent(_ dims: [Int]) throws {
        let d = dims.map(Int64.init)
        let rc = d.withUnsafeBufferPointer { ffio_h5_dset_set_extent(id, Int32(d.count), $0.baseAddress) }
        if rc < 0 { throw file.error("cannot resize dataset '\(name)'", kind: .io) }
    }

    /// Writes the block [start, start+count) (both nil: everything).
    public func write<T: HDF5Element>(_ values: UnsafeBufferPointer<T>, start: [Int]?, count: [Int]?) throws {
        let n = count?.reduce(1, *) ?? self.count
        precondition(values.count >= n, "write to \(name): \(values.count) values for \(n)")
        let rc = withBlock(start, count) { s, c in ffio_h5_dset_write(id, T.hdf5Type.rawValue, s, c, values.baseAddress) }
        if rc < 0 { throw file.error("cannot write dataset '\(name)'", kind: .io) }
    }

    /// Reads the block [start, start+count) (both nil: everything), converting to T.
    public func read<T: HDF5Element>(into buffer: UnsafeMutableBufferPointer<T>, start: [Int]? = nil, count: [Int]? = nil) throws {
        let n = count?.reduce(1, *) ?? self.count
        precondition(buffer.count >= n, "read from \(name): room for \(buffer.count) of \(n) values")
        let rc = withBlock(start, count) { s, c in ffio_h5_dset_read(id, T.hdf5Type.rawValue, s, c, buffer.baseAddress) }
        if rc < 0 { throw file.error("cannot read dataset '\(name)'") }
    }

    public func read<T: HDF5Element>(as: T.Type = T.self) throws -> [T] {
        var out = [T](repeating: T(), count: count)
        try out.withUnsafeMutableBufferPointer { try read(into: $0) }
        return out
    }

    /// Rows `rows` (indices along axis 0, any order) into consecutive rows of `buffer`.
    public func readRows<T: HDF5Element>(_ rows: [Int64], into buffer: UnsafeMutablePointer<T>) throws {
        let rc = rows.withUnsafeBufferPointer { ffio_h5_dset_read_rows(id, T.hdf5Type.rawValue, $0.baseAddress, Int64(rows.count), buffer) }
        if rc < 0 { throw file.error("cannot read rows of dataset '\(name)'") }
    }

    private func withBlock(_ start: [Int]?, _ count: [Int]?, _ body: (UnsafePointer<Int64>?, UnsafePointer<Int64>?) -> Int32) -> Int32 {
        guard let start = start, let count = count else { return body(nil, nil) }
        precondition(start.count == shape.count && count.count == shape.count, "block rank differs from \(shape)")
        let s = start.map(Int64.init), c = count.map(Int64.init)
        return s.withUnsafeBufferPointer { sp in c.withUnsafeBufferPointer { cp in body(sp.baseAddress, cp.baseAddress) } }
    }
}
