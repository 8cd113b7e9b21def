import Foundation

/// The error type of ffrepro. `description` is a complete sentence (or a few) that names the
/// file involved and says how to fix the problem; the CLI prints it as is.
public struct FFError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public enum Kind: String, Sendable {
        /// A file or directory that should exist does not.
        case missing
        /// A file exists but is damaged: truncated, unreadable, checksum mismatch.
        case corrupt
        /// A readable file that is not what was expected (foreign HDF5, other dataset).
        case format
        /// Tensor shapes or names differ from what the caller expects.
        case mismatch
        /// Source data for a converter is absent or laid out differently.
        case source
        /// Bad arguments or options.
        case invalidArgument
        /// Too many unreadable inputs, or another data-quality limit was exceeded.
        case quality
        /// Operating-system level I/O failure (disk full, permissions).
        case io
        /// Another process holds the output directory's lock.
        case busy
    }

    public let kind: Kind
    public let message: String
    /// The file or directory concerned, if any.
    public let path: String?

    public init(_ kind: Kind, _ message: String, path: String? = nil) {
        self.kind = kind
        self.message = message
        self.path = path
    }

    public init(_ kind: Kind, _ message: String, file: URL) {
        self.init(kind, message, path: file.path)
    }

    /// Process exit status for this kind (sysexits.h values), as `repro` uses them.
    public var exitCode: Int32 {
        switch kind {
        case .invalidArgument: return 64  // EX_USAGE
        case .source, .format, .corrupt, .mismatch, .quality: return 65  // EX_DATAERR
        case .missing: return 66  // EX_NOINPUT
        case .io: return 74  // EX_IOERR
        case .busy: return 75  // EX_TEMPFAIL
        }
    }

    public var description: String { message }
    public var errorDescription: String? { message }
}

extension FFError {
    /// A JSON parse or decode error in words, instead of Foundation's "Code=3840" or a
    /// DecodingError dump; `text` is the JSON that failed.
    public static func plainJSON(_ error: Error, text: String) -> String {
        if let e = error as? DecodingError {
            switch e {
            case .keyNotFound(let key, _): return "the field '\(key.stringValue)' is missing"
            case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
                let path = c.codingPath.map(\.stringValue).joined(separator: ".")
                return path.isEmpty ? c.debugDescription : "the field '\(path)' is not valid: \(c.debugDescription)"
            @unknown default: return "\(e)"
            }
        }
        if let e = error as? FFError { return e.message }
        let ns = error as NSError
        var why = (ns.userInfo["NSDebugDescription"] as? String) ?? ns.localizedDescription
        if text.range(of: #"(?<![A-Za-z"])(NaN|-?Infinity|inf)(?![A-Za-z"])"#, options: .regularExpression) != nil {
            why += "; NaN and Infinity are not JSON numbers, so a field holds a value no run writes"
        }
        return "it is not valid JSON (\(why))"
    }
}
