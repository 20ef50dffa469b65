import NetprobeModel
import NetprobeTrace
/// Where a request's time goes: the attribution, in stages that each have a file of their own.
///
///   1. `AttributionPath`  the vantage points in path order (typed roles);
///   2. `RequestPaths`     a joined request's times along that path (and at the client);
///   3. `TapQueueModel`    whether the tap's qdisc held a queue, from netlink samples;
///      `KernelHops`       the backend's wait and the reply's hop at the guest's device, from
///                         kernel events;
///   4. `RedisTimeline`    Redis's execution and the waits behind long commands;
///   5. `SegmentSplit`     each request split into segments; distributions and shares;
///   6. `VerdictRule`      the answer to the claim, as enums and numbers.
///
/// The joined requests are read three times from the join's spill (memory stays flat): pass 1
/// places every request and learns the distributions the others need, pass 2 finds the commands
/// long enough to make others wait, pass 3 splits every request. Each pass reads the rows in
/// consecutive runs, one thread per run when there are CPUs and rows enough, and adds up the runs'
/// results in run order: counts, minimums and histograms do not depend on the cut, and the
/// groups' sums are of whole nanoseconds, so the result is the same on any machine.
/// English is written by the report module (`AttributionText`), never here.

/// Inputs beyond the packets.
public struct AttributionInputs: Sendable {
    /// Vantage names in analysis order and their roles.
    public var vantages: [(name: String, role: VantageRole)]
    /// Netlink samples by interface.
    public var netlink: [String: [NetlinkSample]] = [:]
    /// Redis execution time per call, microseconds, by command (INFO commandstats).
    public var redisUsecPerCall: [String: Double] = [:]
    /// Where the INFO figures came from.
    public var redisInfoSource: RedisInfoSource?
    /// The load generator's own send and receive times, by connection and stream offset.
    public var client = ClientRecords()
    /// Kernel events at the innermost vantage point's device (nil: none in the trace).
    public var kernelHops: KernelHops?

    public init(vantages: [(name: String, role: VantageRole)]) { self.vantages = vantages }

    /// Adds the client's records from a netprobe trace.
    public mutating func addClientRequests(_ c: ClientRequests) { client.add(c) }
}

/// Where Redis's INFO figures came from.
public enum RedisInfoSource: Sendable, Equatable {
    /// `--redis-info FILE`: cumulative since Redis started.
    case file
    /// The capture's INFO before and after the load: the delta over the run.
    case captureDelta
}

/// One segment's measured distribution and shares (nil where not resolved).
public struct SegmentMeasure: Sendable, Equatable {
    public var segment: SegmentName
    public var resolved: Bool
    public var p50Ns: Int64?
    public var p99Ns: Int64?
    public var meanNs: Double?
    public var typicalShare: Double?
    public var tailShare: Double?
}

/// The tap's counters over the run, from its first and last netlink samples.
public struct TapCounters: Sendable, Equatable {
    public var interface: String
    public var txDropped: UInt64, rxDropped: UInt64
    public var qdiscKind: String?
    public var qdiscDrops: UInt64, qdiscOverlimits: UInt64
    public var peakBacklog: UInt64?
}

/// Everything the attribution found, as numbers and enums.
public struct AttributionResult: Sendable {
    public var path: AttributionPath
    public var resolution: SegmentResolution
    public var unplaced: Unplaced
    /// In `SegmentName.allCases` order.
    public var segments: [SegmentMeasure]
    public var typical: GroupShares
    public var tail: GroupShares
    public var verdict: VerdictOutcome
    /// Whether any reply showed a hop between the inner and the outer vantage point.
    public var replyHopResolved: Bool
    /// Each request's wait behind longer commands on Redis's timeline; nil when it was not rebuilt.
    public var redisWait: LatencyRecorder?
    /// The guest's fastest round trip (ns), when Redis's timeline was rebuilt.
    public var fastestRoundTripNs: Int64?
    public var redisUsecPerCall: [String: Double]
    public var redisInfoSource: RedisInfoSource?
    public var tapCounters: TapCounters?
    /// The backend's waits (nil without kernel events at the guest's device), its pid, and how
    /// many skbs other readers took from the same queue.
    public var backend: BackendTally?
    public var backendReader: Int32?
    /// The backend's threads that read the requests, most copies first.
    public var backendThreads: [Int32] = []
    public var otherReaderCopies: Int
    /// The device whose kernel events gave the backend's waits and reply hops (nil: none), and the
    /// one whose queue the backend reads (a macvtap's parent link).
    public var kernelHopsDevice: String?
    public var kernelHopsQueueDevice: String?
    /// The reply path's hop from the inner to the outer vantage point, where resolved.
    public var replyHop: LatencyRecorder
    /// End-to-end times of the requests in the split (at the client with its records, else at
    /// the outermost vantage point).
    public var endToEnd: LatencyRecorder
    /// The join's spill file could not be made or written (memory stayed bounded; rows past the
    /// bound were dropped and are not in the split).
    public var spillProblem: SpillProblem?
    /// Rows the join had to close before their window ended (request rate too high).
    public var rowsClosedEarly: Int
    public var joinWindowNs: Int64
    public var joinMaximumOpenRows: Int
}

/// Computes segments and the verdict from joined requests.
public enum Attribution {
    /// Threads the attribution's passes over the rows use: one per CPU, at most two (the rows are
    /// read from the spill; more threads would wait on the same file).
    public static let threadsForPasses = max(1, min(2, onlineCPUs))

    /// `threads`: how many runs the passes over the rows are cut into (the result does not depend
    /// on it; tests compare).
    public static func compute(_ join: RequestJoin, inputs: AttributionInputs, threads: Int = threadsForPasses)
        -> AttributionResult {
        join.finish()
        let path = AttributionPath(vantages: inputs.vantages.map { ($0.name, $0.role) })
        let tapSamples = path.queueDevice.flatMap { inputs.netlink[$0.interface] } ?? []
        // The hops are about the innermost capture's device: used only when that is the guest's.
        let hops = inputs.kernelHops.flatMap { $0.device == path.inner?.interface && !$0.isEmpty ? $0 : nil }
        let tap = TapQueueModel(samples: path.hasTwoSides ? tapSamples : [])
        let haveRedis = !inputs.redisUsecPerCall.isEmpty
        // What the inputs can resolve, by the rule the result is judged with (as if requests came).
        let possible = SegmentResolution(requests: 1, twoSides: path.hasTwoSides, tapQueue: tap.isResolved,
                                         clientRecords: !inputs.client.isEmpty, redisInfo: haveRedis,
                                         backendMatched: hops != nil ? 1 : 0)
        let resolvable = SegmentName.allCases.map(possible.isResolved)
        let passes = Passes(
            join: join, runs: join.rowRuns(threads),
            paths: RequestPaths(path, client: inputs.client, hops: hops), tap: tap,
            exec: RedisExecution(usecPerCall: inputs.redisUsecPerCall, commandNames: join.commandNames),
            haveRedis: haveRedis, resolvable: resolvable)
        let first = passes.placeAll()
        let timeline = passes.haveRedis && first.placed > 0 ? passes.timeline(first) : nil
        let split = passes.splitAll(first, timeline)
        let resolution = SegmentResolution(
            requests: first.requests, twoSides: path.hasTwoSides, tapQueue: passes.tap.isResolved,
            clientRecords: !inputs.client.isEmpty, redisInfo: passes.haveRedis, backendMatched: split.backend.matched)
        let typical = GroupShares(split.typical, withClient: resolution.clientRecords)
        let tail = GroupShares(split.tail, withClient: resolution.clientRecords)
        let segments = SegmentName.allCases.map { s -> SegmentMeasure in
            let ok = resolution.isResolved(s)
            let r = split.recorders[s.index]
            return SegmentMeasure(segment: s, resolved: ok, p50Ns: ok ? r.valueNs(atPercentile: 50) : nil,
                                  p99Ns: ok ? r.valueNs(atPercentile: 99) : nil, meanNs: ok ? r.meanNs : nil,
                                  typicalShare: ok ? typical.shares[s] : nil, tailShare: ok ? tail.shares[s] : nil)
        }
        return AttributionResult(
            path: path, resolution: resolution, unplaced: first.unplaced, segments: segments,
            typical: typical, tail: tail,
            verdict: VerdictRule.decide(typical: typical, tail: tail, resolution: resolution),
            replyHopResolved: first.anyResponseHop, redisWait: timeline == nil ? nil : split.redisWait,
            fastestRoundTripNs: timeline?.fastestRoundTrip,
            redisUsecPerCall: inputs.redisUsecPerCall, redisInfoSource: inputs.redisInfoSource,
            tapCounters: path.queueDevice.flatMap { TapCounters(inputs.netlink[$0.interface] ?? [], interface: $0.interface) },
            backend: hops == nil ? nil : split.backend, backendReader: hops?.reader, backendThreads: hops?.readerThreads ?? [], otherReaderCopies: hops?.otherReaderCopies ?? 0, kernelHopsDevice: hops?.device, kernelHopsQueueDevice: hops?.queueDevice,
            replyHop: first.replyHop,
            endToEnd: first.e2e, spillProblem: join.spillProblem, rowsClosedEarly: join.rowsClosedEarly, joinWindowNs: join.windowNs, joinMaximumOpenRows: join.maximumOpenRows)
    }
}

extension TapCounters {
    /// From the first and last sample as recorded; nil without link counters in both.
    init?(_ samples: [NetlinkSample], interface: String) {
        guard let first = samples.first, let last = samples.last, let a = first.link, let b = last.link else { return nil }
        self.interface = interface
        txDropped = b.txDropped &- a.txDropped
        rxDropped = b.rxDropped &- a.rxDropped
        qdiscKind = last.qdisc?.kind
        qdiscDrops = (last.qdisc?.drops ?? 0) &- (first.qdisc?.drops ?? 0)
        qdiscOverlimits = (last.qdisc?.overlimits ?? 0) &- (first.qdisc?.overlimits ?? 0)
        peakBacklog = samples.compactMap { $0.qdisc?.backlog }.max()
    }
}
