import Histogram
import NetprobeCore

/// Latencies of a set of requests in an HdrHistogram (3 significant digits, up to one hour),
/// plus the exact count, sum, minimum and maximum.
struct LatencyHistogram {
    static let highestTrackable: UInt64 = 3_600_000_000_000

    private(set) var histogram = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: LatencyHistogram.highestTrackable,
        numberOfSignificantValueDigits: .three)
    private(set) var count = 0
    private(set) var sumNs: Int64 = 0
    private(set) var minNs: Int64 = .max
    private(set) var maxNs: Int64 = 0

    @inline(__always)
    mutating func record(_ ns: Int64) {
        let v = max(ns, 0)
        count += 1
        sumNs &+= v
        if v < minNs { minNs = v }
        if v > maxNs { maxNs = v }
        _ = histogram.record(min(UInt64(v), Self.highestTrackable))
    }

    mutating func add(_ other: LatencyHistogram) {
        guard other.count > 0 else { return }
        histogram.add(other.histogram)
        count += other.count
        sumNs &+= other.sumNs
        minNs = min(minNs, other.minNs)
        maxNs = max(maxNs, other.maxNs)
    }

    /// The value at `percentile` (0...100) in ns, never above the exact maximum; nil when empty.
    func valueNs(atPercentile percentile: Double) -> Int64? {
        guard count > 0 else { return nil }
        if percentile >= 100 { return maxNs }
        return min(Int64(histogram.valueAtPercentile(percentile)), maxNs)
    }
}

/// Latency percentiles in microseconds (the same fields as the trace report's `LatencySummary`);
/// null when no request was answered.
public struct LoadLatency: Codable, Sendable, Equatable {
    public var count: Int
    public var p50: Double?
    public var p90: Double?
    public var p99: Double?
    public var p999: Double?
    public var max: Double?
    public var min: Double?
    public var mean: Double?

    init(_ h: LatencyHistogram) {
        func us(_ ns: Int64?) -> Double? { ns.map { Double($0) / 1000 } }
        count = h.count
        p50 = us(h.valueNs(atPercentile: 50))
        p90 = us(h.valueNs(atPercentile: 90))
        p99 = us(h.valueNs(atPercentile: 99))
        p999 = us(h.valueNs(atPercentile: 99.9))
        max = us(h.count > 0 ? h.maxNs : nil)
        min = us(h.count > 0 ? h.minNs : nil)
        mean = h.count > 0 ? Double(h.sumNs) / Double(h.count) / 1000 : nil
    }

    enum CodingKeys: String, CodingKey { case count, p50, p90, p99, p999, max, min, mean }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(count, forKey: .count)
        try c.encode(p50, forKey: .p50) // Optional: encodes null when unknown
        try c.encode(p90, forKey: .p90)
        try c.encode(p99, forKey: .p99)
        try c.encode(p999, forKey: .p999)
        try c.encode(max, forKey: .max)
        try c.encode(min, forKey: .min)
        try c.encode(mean, forKey: .mean)
    }
}

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
