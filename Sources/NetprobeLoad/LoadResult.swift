import NetprobeCore

/// Latency percentiles of the load generator's requests use the trace report's types:
/// `LatencyRecorder` (HdrHistogram + exact count, sum, min, max) and `LatencySummary` (us).
public typealias LoadLatency = LatencySummary

/// One row of the summary: a command, or "TOTAL" for all of them.
public struct LoadCommandSummary: Codable, Sendable, Equatable {
    public var command: String
    /// Requests answered (error replies included).
    public var requests: Int
    public var requestsPerSecond: Double
    /// Answers that were RESP errors (`-ERR ...`).
    public var errorReplies: Int
    public var latencyUs: LoadLatency
}

/// What a run did, as printed by `netprobe load` (text, or JSON with the same field names).
public struct LoadResult: Codable, Sendable, Equatable {
    /// Why the run ended.
    public enum StopReason: String, Codable, Sendable {
        /// Every requested request was answered (or lost with its connection).
        case requestsDone = "requests-done"
        /// The configured duration passed.
        case durationReached = "duration-reached"
        /// `stop()` was called (Ctrl-C in the CLI).
        case interrupted
        /// Every connection failed.
        case connectionsFailed = "connections-failed"
    }

    /// The configuration, as given.
    public struct Settings: Codable, Sendable, Equatable {
        public var target: String
        public var connections: Int
        public var pipeline: Int
        /// Set when the run was limited by a request count.
        public var requests: Int?
        /// Set when the run was limited by time.
        public var durationSeconds: Double?
        public var ratio: String
        public var dataSize: Int
        public var keySpace: Int
        public var keyPrefix: String
        /// Requests per second over all connections; null when closed-loop.
        public var rate: Double?
    }

    /// One connection: client and server address, as `ADDRESS:PORT`.
    public struct ConnectionSummary: Codable, Sendable, Equatable {
        public var index: Int
        public var client: String
        public var server: String
        /// Why it failed during the run; null when it did not.
        public var failure: String?
    }

    public var netprobe = NetprobeVersion.string
    public var settings: Settings
    public var connections: [ConnectionSummary]
    /// First request sent and last reply received (CLOCK_REALTIME ns).
    public var startNs: Int64
    public var endNs: Int64
    public var elapsedSeconds: Double
    public var stopReason: StopReason
    /// Requests answered, over all commands.
    public var requests: Int
    public var requestsPerSecond: Double
    /// Requests sent whose replies never came (their connection failed, or the drain timed out).
    public var unanswered: Int
    public var errorReplies: Int
    /// Connections that failed during the run (reset, closed by the server, protocol error).
    public var connectionErrors: Int
    public var bytesSent: UInt64
    public var bytesReceived: UInt64
    /// One row per command that was sent, in `LoadCommandKind` order.
    public var commands: [LoadCommandSummary]
    /// All commands together.
    public var totals: LoadCommandSummary
}

/// A periodic look at a running load (about twice a second), for progress lines.
public struct LoadProgress: Sendable, Equatable {
    public var elapsedSeconds: Double
    /// Requests answered so far.
    public var requests: Int
    /// Completed share of the run (by requests or by time), 0...1.
    public var fraction: Double
    /// Rate since the previous progress report.
    public var currentRequestsPerSecond: Double
    /// Rate since the start.
    public var averageRequestsPerSecond: Double
    public var errorReplies: Int
    public var connectionErrors: Int
    /// Median latency since the start, in microseconds; nil before the first reply.
    public var p50Us: Double?
}
