extension FFError {
    /// A configuration/argument error (the common case in recipes and the CLI).
    public init(_ message: String) { self.init(.invalidArgument, message) }
}
