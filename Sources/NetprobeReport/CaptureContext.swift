import NetprobeModel
import NetprobeTrace
import NetprobeAttribution
/// What a netprobe capture stored beside the packets, summarised for the report: the run's
/// metadata, the kernel's counters per interface during the run, and Redis's own view.
public struct CaptureContext: Codable, Sendable, Equatable {
    /// Netlink counters of one interface over the capture: differences between the first and
    /// the last sample, and the peak of the gauges.
    public struct InterfaceCounters: Codable, Sendable, Equatable {
        public var interface: String
        public var samples: Int
        public var seconds: Double
        public var rxPackets: UInt64
        public var txPackets: UInt64
        public var rxDropped: UInt64
        public var txDropped: UInt64
        public var rxErrors: UInt64
        public var txErrors: UInt64
        public var qdisc: String?
        public var qdiscDrops: UInt64?
        public var qdiscOverlimits: UInt64?
        public var qdiscRequeues: UInt64?
        public var peakBacklogBytes: UInt64?
        public var peakQueuePackets: UInt64?
    }

    /// One command in Redis's INFO commandstats, between the snapshots before and after the run.
    public struct RedisCommand: Codable, Sendable, Equatable {
        public var command: String
        public var calls: UInt64
        /// Time Redis spent executing these calls (not socket I/O, not waiting), microseconds.
        public var usec: UInt64
        public var usecPerCall: Double?
        /// nil when Redis does not count failed calls (before 6.2).
        public var failedCalls: UInt64?
    }

    /// Netlink counters over time, as rates between samples (at most 300 points per interface).
    public struct SeriesPoint: Codable, Sendable, Equatable {
        /// Seconds since the first sample of the capture.
        public var t: Double
        public var rxPacketsPerSecond: Double
        public var txPacketsPerSecond: Double
        public var droppedPerSecond: Double
        public var backlogBytes: UInt64?
        public var qlen: UInt64?
    }

    public struct InterfaceSeries: Codable, Sendable, Equatable {
        public var interface: String
        public var points: [SeriesPoint]
    }

    public var setup: String?
    public var vm: String?
    public var hypervisor: String?
    public var hostKernel: String?
    public var redisAddress: String?
    /// Where the capture took `redisAddress` from (`RedisAddressSource`); nil in traces made
    /// before it was recorded.
    public var redisAddressSource: RedisAddressSource?
    /// The Redis version INFO server gave (nil when the trace does not say).
    public var redisVersion: String?
    /// What the INFO snapshots could not tell, because that Redis does not report it (Redis 3.0
    /// and 3.2: latencystats, failed and rejected calls); nil when nothing is missing or there is
    /// no INFO.
    public var redisInfoMissing: [RedisInfo.MissingField]?
    public var loadCommand: [String]?
    /// Vantage roles from the capture (interface -> bridge, tap ...).
    public var roles: [String: String]
    public var interfaces: [InterfaceCounters]
    public var series: [InterfaceSeries]
    /// INFO commandstats deltas (empty when the trace has no before/after snapshots).
    public var redisCommands: [RedisCommand]
    /// INFO latencystats after the run (cumulative since Redis started or its stats were reset).
    public var redisLatencyPercentilesUs: [String: [String: Double]]
    public var notes: [String]
    /// Requests the load generator recorded itself (the client vantage point), 0 when none.
    public var clientRequests: Int

    public var isEmpty: Bool {
        setup == nil && vm == nil && interfaces.isEmpty && redisCommands.isEmpty && notes.isEmpty && roles.isEmpty && series.isEmpty
    }

    /// Builds the summary from netprobe's custom blocks (others are ignored).
    public init(blocks: [NetprobeBlock]) {
        var run: RunMetadata?
        var samples: [String: [NetlinkSample]] = [:]
        var before: RedisInfoSnapshot?
        var after: RedisInfoSnapshot?
        var notes: [String] = []
        var clientRequests = 0
        for b in blocks {
            switch b {
            case let .run(m): run = m
            case let .netlink(s): samples[s.interface, default: []].append(s)
            case let .redisInfo(r): if r.phase == "before" { before = r } else if r.phase == "after" { after = r }
            case let .vantageNote(n): notes.append("\(n.interface): \(n.note)")
            case let .clientRequests(c): clientRequests += c.sendNs.count
            }
        }
        setup = run?.setup
        vm = run?.vm
        hypervisor = run?.hypervisor
        hostKernel = run?.hostKernel
        redisAddress = run?.redisAddress
        redisAddressSource = run?.redisAddressSource.flatMap(RedisAddressSource.init(rawValue:))
        loadCommand = run?.loadCommand.map(CommandRedaction.redact) // traces from before redaction, too
        roles = Dictionary(run?.vantages.map { ($0.interface, $0.role) } ?? [], uniquingKeysWith: { a, _ in a })
        interfaces = samples.keys.sorted().compactMap { name in Self.counters(name, samples[name]!) }
        let start = samples.values.compactMap { $0.map(\.timeNs).min() }.min() ?? 0
        series = samples.keys.sorted().map { name in Self.series(name, samples[name]!, start: start) }
        if let after {
            let end = RedisInfo.commandStats(after.commandstats)
            let start = before.map { RedisInfo.commandStats($0.commandstats) } ?? [:]
            redisCommands = end.keys.sorted().compactMap { name in
                let a = end[name]!
                let b = start[name] ?? RedisInfo.CommandStat(calls: 0, usec: 0, rejectedCalls: 0, failedCalls: 0)
                guard a.calls > b.calls else { return nil }
                let calls = a.calls - b.calls
                let usec = a.usec >= b.usec ? a.usec - b.usec : 0
                let failed = a.failedCalls.map { x in b.failedCalls.map { x >= $0 ? x - $0 : 0 } ?? x }
                return RedisCommand(command: name, calls: calls, usec: usec, usecPerCall: Double(usec) / Double(calls),
                                    failedCalls: failed)
            }
            redisLatencyPercentilesUs = RedisInfo.latencyPercentiles(after.latencystats)
            if before == nil { notes.append("Redis INFO was taken only after the run: counts include everything since Redis started") }
            redisVersion = after.redisVersion ?? before?.redisVersion
            let missing = RedisInfo.missingFields(commandstats: after.commandstats, latencystats: after.latencystats)
            redisInfoMissing = missing.isEmpty ? nil : missing
            if !missing.isEmpty { notes.append(Self.missingNote(missing, version: redisVersion)) }
        } else {
            redisCommands = []
            redisLatencyPercentilesUs = [:]
        }
        if let outcome = run?.loadOutcome, outcome.endedByCapture {
            notes.append("load command: " + outcome.summary)
        }
        self.notes = notes
        self.clientRequests = clientRequests
    }

    /// What INFO could not tell, and why: "Redis 3.0.7: no latencystats (Redis 7.0+), no
    /// failed_calls or rejected_calls in commandstats (Redis 6.2+): ...".
    static func missingNote(_ missing: [RedisInfo.MissingField], version: String?) -> String {
        let release = version.flatMap(RedisInfo.majorMinor)
        func before(_ major: Int, _ minor: Int) -> Bool? { release.map { $0.major < major || ($0.major == major && $0.minor < minor) } }
        var parts: [String] = []
        if missing.contains(.latencystats) {
            parts.append(before(7, 0) == false
                         ? "no latencystats (latency-tracking is off, or no command has run since it was reset)"
                         : "no latencystats (Redis 7.0+)")
        }
        let calls = [RedisInfo.MissingField.failedCalls, .rejectedCalls].filter(missing.contains)
        if !calls.isEmpty {
            let names = calls.map { $0 == .failedCalls ? "failed_calls" : "rejected_calls" }.joined(separator: " or ")
            parts.append("no \(names) in commandstats (Redis 6.2+)")
        }
        var effects: [String] = []
        if missing.contains(.latencystats) { effects.append("Redis's own execution percentiles are not shown") }
        if missing.contains(.failedCalls) { effects.append("failed calls are unknown (FAILED -), not 0") }
        let who = version.map { "Redis \($0)" } ?? "Redis (version not recorded)"
        return "\(who): " + parts.joined(separator: ", ") + (effects.isEmpty ? "" : "; " + effects.joined(separator: "; "))
    }

    static func series(_ name: String, _ list: [NetlinkSample], start: Int64) -> InterfaceSeries {
        let sorted = list.filter { $0.link != nil }.sorted { $0.timeNs < $1.timeNs }
        let step = max(1, sorted.count / 300)
        var points: [SeriesPoint] = []
        var k = step
        while k < sorted.count {
            let a = sorted[k - step], b = sorted[k]
            // Counters and times come from the trace's blocks as written: no trapping arithmetic.
            let dt = (Double(b.timeNs) - Double(a.timeNs)) / 1e9
            if dt > 0, let la = a.link, let lb = b.link {
                func rate(_ x: UInt64, _ y: UInt64) -> Double { y >= x ? Double(y - x) / dt : 0 }
                points.append(SeriesPoint(
                    t: (Double(b.timeNs) - Double(start)) / 1e9, rxPacketsPerSecond: rate(la.rxPackets, lb.rxPackets),
                    txPacketsPerSecond: rate(la.txPackets, lb.txPackets),
                    droppedPerSecond: rate(la.rxDropped &+ la.txDropped &+ (a.qdisc?.drops ?? 0), lb.rxDropped &+ lb.txDropped &+ (b.qdisc?.drops ?? 0)),
                    backlogBytes: b.qdisc?.backlog, qlen: b.qdisc?.qlen))
            }
            k += step
        }
        return InterfaceSeries(interface: name, points: points)
    }

    static func counters(_ name: String, _ list: [NetlinkSample]) -> InterfaceCounters? {
        let sorted = list.sorted { $0.timeNs < $1.timeNs }
        guard let first = sorted.first, let last = sorted.last, let a = first.link, let b = last.link else { return nil }
        func d(_ x: UInt64, _ y: UInt64) -> UInt64 { y >= x ? y - x : 0 }
        let qdiscs = sorted.compactMap(\.qdisc)
        let qa = first.qdisc, qb = last.qdisc
        return InterfaceCounters(
            interface: name, samples: sorted.count, seconds: (Double(last.timeNs) - Double(first.timeNs)) / 1e9,
            rxPackets: d(a.rxPackets, b.rxPackets), txPackets: d(a.txPackets, b.txPackets),
            rxDropped: d(a.rxDropped, b.rxDropped), txDropped: d(a.txDropped, b.txDropped),
            rxErrors: d(a.rxErrors, b.rxErrors), txErrors: d(a.txErrors, b.txErrors),
            qdisc: qb?.kind,
            qdiscDrops: qa.flatMap { x in qb.map { d(x.drops, $0.drops) } },
            qdiscOverlimits: qa.flatMap { x in qb.map { d(x.overlimits, $0.overlimits) } },
            qdiscRequeues: qa.flatMap { x in qb.map { d(x.requeues, $0.requeues) } },
            peakBacklogBytes: qdiscs.isEmpty ? nil : qdiscs.map(\.backlog).max(),
            peakQueuePackets: qdiscs.isEmpty ? nil : qdiscs.map(\.qlen).max())
    }
}
