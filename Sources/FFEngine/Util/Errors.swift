/// A user-facing error: `message` is a full sentence that names the file or setting at
/// fault and, where there is one, the fix. The CLI prints it as is (no stack trace).
public struct FFError: Error, CustomStringConvertible {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
