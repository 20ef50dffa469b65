import NetprobeModel
/// The Redis commands the load generator sends.
public enum LoadCommandKind: UInt8, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// `SET key value`
    case set = 1
    /// `GET key`
    case get = 2

    /// The command name as Redis spells it ("SET", "GET").
    public var name: String {
        switch self {
        case .set: "SET"
        case .get: "GET"
        }
    }

    public var description: String { name }
}

/// Where the load goes (HOST:PORT, see `HostPort`).
public typealias LoadTarget = HostPort

/// The share of SETs and GETs, as memtier's `--ratio SET:GET`.
///
/// Commands follow a fixed cycle over the whole run: of every `set + get` requests, the first
/// `set` are SETs. The counts are therefore exact whenever the request total is a multiple of
/// `set + get`, and within one cycle of the ratio otherwise.
public struct CommandRatio: Sendable, Equatable, Codable, CustomStringConvertible {
    public var set: Int
    public var get: Int

    public init(set: Int, get: Int) {
        self.set = set
        self.get = get
    }

    /// Parses `SET:GET`, e.g. `1:10`; nil when malformed.
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let s = Int(parts[0]), let g = Int(parts[1]) else { return nil }
        self.init(set: s, get: g)
    }

    /// The command of the request with this run-wide sequence number.
    @inline(__always)
    func command(forRequest n: Int) -> LoadCommandKind {
        n % (set + get) < set ? .set : .get
    }

    public var description: String { "\(set):\(get)" }
}

/// When a run ends on its own.
public enum LoadLimit: Sendable, Equatable {
    /// After this many requests in total (over all connections) have been answered.
    case requests(Int)
    /// After this long; requests still in flight then are waited for (up to the drain timeout).
    case duration(Duration)

    /// Parses a duration in the one syntax of every command (`TimeSpan`): `10s`, `500ms`,
    /// `1m30s`, a plain number of seconds.
    public static func parseDuration(_ text: String) -> Duration? { TimeSpan(parsing: text)?.duration }
}

/// Everything that shapes a load run. `LoadGenerator` validates it before connecting.
public struct LoadConfiguration: Sendable, Equatable {
    /// The Redis server. Traffic goes to this address and nowhere else.
    public var target: LoadTarget
    /// TCP connections, all served by one thread.
    public var connections = 10
    /// Requests kept in flight on each connection (1 = wait for each reply before the next).
    public var pipeline = 1
    /// When the run stops.
    public var limit = LoadLimit.requests(100_000)
    public var ratio = CommandRatio(set: 1, get: 10)
    /// Bytes in each SET's value.
    public var dataSize = 32
    /// Keys are `keyPrefix` + a number in `0..<keySpace`, zero-padded to a fixed width, chosen
    /// uniformly at random.
    public var keySpace = 10_000
    public var keyPrefix = "key:"
    /// Requests per second over all connections; nil runs closed-loop (as fast as replies come).
    /// Request n is sent no earlier than `n / rate` seconds after the start.
    public var rate: Double?
    /// Seed of the key sequence, so two runs can send the same keys.
    public var seed: UInt64 = 0x6E65_7470_726F_6265
    /// How long one connection attempt may take.
    public var connectTimeout = Duration.seconds(5)
    /// How long to wait for replies still in flight once the run stops (duration reached, or
    /// `stop()`); what has not arrived by then is counted as unanswered.
    public var drainTimeout = Duration.seconds(2)

    public init(target: LoadTarget) {
        self.target = target
    }

    /// Largest value accepted for `dataSize`: every connection buffers `pipeline` requests.
    public static let maximumDataSize = 1 << 20
    public static let maximumConnections = 10_000
    public static let maximumPipeline = 10_000

    /// The problems with this configuration, as messages for people; empty when it is usable.
    public func problems() -> [String] {
        var out: [String] = []
        if target.port == 0 { out.append("the target's port must be between 1 and 65535") }
        if !(1...Self.maximumConnections).contains(connections) {
            out.append("connections must be between 1 and \(Self.maximumConnections) (got \(connections))")
        }
        if !(1...Self.maximumPipeline).contains(pipeline) {
            out.append("pipeline must be between 1 and \(Self.maximumPipeline) (got \(pipeline))")
        }
        switch limit {
        case let .requests(n) where n < 1:
            out.append("requests must be at least 1 (got \(n))")
        case let .duration(d) where d <= .zero:
            out.append("duration must be positive (got \(d))")
        default:
            break
        }
        if ratio.set < 0 || ratio.get < 0 || ratio.set + ratio.get == 0 {
            out.append("ratio SET:GET needs non-negative numbers, not both zero (got \(ratio))")
        }
        if !(0...Self.maximumDataSize).contains(dataSize) {
            out.append("data size must be between 0 and \(Self.maximumDataSize) bytes (got \(dataSize))")
        }
        if !(1...1_000_000_000_000).contains(keySpace) {
            out.append("key space must be between 1 and 10^12 (got \(keySpace))")
        }
        if keyPrefix.utf8.count > 256 || keyPrefix.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F }) {
            out.append("the key prefix must be at most 256 printable bytes without spaces")
        }
        if let rate, !(rate > 0 && rate.isFinite) {
            out.append("rate must be a positive number of requests per second (got \(rate))")
        }
        if connectTimeout <= .zero { out.append("the connect timeout must be positive") }
        if drainTimeout < .zero { out.append("the drain timeout must not be negative") }
        return out
    }
}

extension Duration {
    /// Whole nanoseconds (saturating at Int64's range).
    var nanoseconds: Int64 {
        let (s, atto) = components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (s < 0 ? .min : .max) : ns &+ atto / 1_000_000_000
    }
}
