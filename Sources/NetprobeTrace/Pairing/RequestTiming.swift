import NetprobeModel
/// One Redis request paired with its response, as seen at one vantage point.
public struct RequestTiming: Sendable, Equatable {
    /// Index of the vantage point in the analysis result.
    public var vantage: Int
    /// Connection number within the vantage point (in order of first appearance).
    public var connection: Int
    public var client: Endpoint
    public var server: Endpoint
    /// Upper-case command name, "CONFIG GET" style for container commands, "?" when unknown.
    public var command: String
    /// TCP sequence number of the request's first byte: identical at every vantage point on the path.
    public var requestSequence: UInt32
    public var requestFirstByteNs: Int64
    public var requestLastByteNs: Int64
    public var responseFirstByteNs: Int64
    public var responseLastByteNs: Int64
    /// The reply was an error.
    public var isError: Bool
    /// Bytes the client had sent on this connection before the request (nil when the capture did
    /// not see the connection's SYN): how a load generator's own records are matched to packets.
    public var requestOffset: UInt32? = nil

    /// What `report` calls latency at this vantage point: request's last byte to response's first.
    public var latencyNs: Int64 { responseFirstByteNs - requestLastByteNs }
}

/// Why a request was never paired with a response.
public enum UnpairedReason: String, Sendable, Codable, CaseIterable {
    /// The connection closed (FIN or RST) before the response was seen.
    case connectionClosed = "connection-closed"
    /// The trace ended first.
    case traceEnded = "trace-ended"
    /// A stream could not be decoded any more (bytes lost or malformed): pairing stopped there.
    case streamDesynchronised = "stream-desynchronised"
    /// MONITOR or replication (SYNC, PSYNC) turned the reply stream into something else: no pairing
    /// from there on. (CLIENT REPLY and pub/sub are followed: `ReplyRule`.)
    case replyModeChanged = "reply-mode-changed"
    /// The connection was idle longer than the idle timeout and was dropped.
    case idleTimeout = "idle-timeout"
}
