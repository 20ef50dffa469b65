import NetprobeModel
/// A problem found while reading a trace file: where it is and what was expected there.
///
/// Errors never discard what was read before them: the reader stops, and the packets already
/// returned stay valid for the analysis. `description` is what the CLI prints.
public struct TraceError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file being read (as given by the user).
    public var file: String
    /// Byte offset in the file where the problem starts.
    public var offset: Int64
    /// What was expected there and what was found.
    public var message: String

    public init(file: String, offset: Int64, _ message: String) {
        self.file = file
        self.offset = offset
        self.message = message
    }

    public var description: String { "\(file): at byte offset \(offset): \(message)" }
}

/// A non-fatal remark about a trace (for example a truncated last block), kept in the report.
public struct TraceWarning: Sendable, Codable, Equatable, CustomStringConvertible {
    public var offset: Int64
    public var message: String
    public init(offset: Int64, message: String) {
        self.offset = offset
        self.message = message
    }
    public var description: String { "at byte offset \(offset): \(message)" }
}
