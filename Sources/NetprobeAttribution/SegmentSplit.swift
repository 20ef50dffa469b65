import NetprobeModel
import NetprobeTrace
/// Stage 5: each request's time split into segments, and the segments' distributions and shares.
///
/// Shares are of the end-to-end time for two groups chosen by value: the typical request (the
/// middle half, p25-p75) and the slowest 1 %. The bounds come from pass 1's distribution
/// (HdrHistogram buckets, 0.1 %).
struct SegmentSplit: Sendable {
    /// A group's sums, in Double: exact for whole nanoseconds below 2^53 ns (104 days), so the
    /// result does not depend on how the rows were cut into runs.
    struct Group: Sendable {
        var count = 0
        var e2e: Double = 0
        var sums = [Double](repeating: 0, count: SegmentName.allCases.count)

        mutating func add(_ e2e: Int64, _ values: [Int64]) {
            count += 1
            self.e2e += Double(e2e)
            for s in values.indices { sums[s] += Double(values[s]) }
        }

        mutating func add(_ other: Group) {
            count += other.count
            e2e += other.e2e
            for s in sums.indices { sums[s] += other.sums[s] }
        }
    }

    struct Bounds: Sendable {
        var typicalLow: Int64, typicalHigh: Int64, tail: Int64
    }

    let bounds: Bounds?
    /// The segments whose distributions are kept (`SegmentName.index`): those the inputs can
    /// resolve. A histogram is 135 KB per segment and run, and an unresolved segment's is never shown.
    let kept: [Bool]
    var typical = Group(), tail = Group()
    var recorders = [LatencyRecorder](repeating: LatencyRecorder(), count: SegmentName.allCases.count)
    /// Redis's part beyond the command's mean execution: the wait behind longer commands, rebuilt
    /// from the wire (a real per-request distribution, unlike the execution time from INFO).
    var redisWait = LatencyRecorder()
    /// Requests matched to a backend wait, and the backend's time split by whether its process
    /// did anything else during the wait (busy elsewhere) or nothing the events show (not running,
    /// or not taking packets).
    var backend = BackendTally()

    /// `e2e`: the end-to-end times of every request in the split (pass 1). `kept`: which
    /// segments' distributions to keep (nil: all).
    init(e2e: LatencyRecorder, kept: [Bool]? = nil) {
        self.kept = kept ?? [Bool](repeating: true, count: SegmentName.allCases.count)
        bounds = e2e.histogram.map { h in
            let q = { (p: Double) -> UInt64 in h.valueAtPercentile(p) }
            return Bounds(typicalLow: Int64(h.lowestEquivalentForValue(q(25))),
                          typicalHigh: Int64(h.highestEquivalentForValue(q(75))),
                          tail: Int64(h.lowestEquivalentForValue(q(99))))
        }
    }

    /// The segments of one request, by `SegmentName.index`, into `values` (one buffer per run,
    /// not one per request). `redis`: Redis's time (0 without INFO); `queued`: whether the tap's
    /// qdisc held a queue then; `forwarding`: the plain bridge -> tap forwarding time.
    static func split(_ p: RequestPath, redis: Int64, queued: Bool, forwarding: Int64, into values: inout [Int64]) {
        let tap = queued ? max(0, (p.requestHop ?? 0) - forwarding) : 0
        values[SegmentName.client.index] = p.client ?? 0
        values[SegmentName.bridge.index] = LatencyRecorder.saturatingSum((p.requestHop ?? 0) - tap, p.responseHop ?? 0)
        values[SegmentName.tap.index] = tap
        // The backend's wait is inside the tap-to-tap interval; Redis's time is not part of it.
        let backend = min(max(0, p.backend ?? 0), max(0, p.inner - redis))
        values[SegmentName.vnicBackend.index] = backend
        values[SegmentName.guestStack.index] = p.inner - redis - backend
        values[SegmentName.redis.index] = redis
    }

    /// Whether a request of this end-to-end time is among the slowest 1 %.
    func inTail(_ e2e: Int64) -> Bool { bounds.map { e2e >= $0.tail } ?? false }

    mutating func record(e2e: Int64, _ values: [Int64]) {
        for s in values.indices where kept[s] { recorders[s].record(values[s]) }
        if let bounds {
            if e2e >= bounds.typicalLow && e2e <= bounds.typicalHigh { typical.add(e2e, values) }
            if e2e >= bounds.tail { tail.add(e2e, values) }
        }
    }

    mutating func add(_ o: SegmentSplit) {
        typical.add(o.typical)
        tail.add(o.tail)
        for s in recorders.indices { recorders[s].add(o.recorders[s]) }
        redisWait.add(o.redisWait)
        backend.add(o.backend)
    }
}

/// Which segments the inputs can resolve.
public struct SegmentResolution: Sendable, Equatable {
    public var requests: Int
    public var twoSides: Bool
    public var tapQueue: Bool
    public var clientRecords: Bool
    public var redisInfo: Bool
    /// Requests matched to the backend's read of them (kernel events at the guest's device).
    public var backendMatched = 0

    public func isResolved(_ s: SegmentName) -> Bool {
        switch s {
        case .client: clientRecords && requests > 0
        case .bridge: twoSides
        case .tap: tapQueue
        case .vnicBackend: backendMatched > 0 && requests > 0
        case .guestStack: requests > 0
        case .redis: redisInfo && requests > 0
        }
    }
}

/// One group's mean end-to-end time and each segment's share of it.
public struct GroupShares: Sendable, Equatable {
    public var requests: Int
    /// Mean end-to-end time of the group, ns; nil for an empty group.
    public var endToEndMeanNs: Double?
    /// Share of the mean end-to-end time per segment (the client only with its records).
    public var shares: [SegmentName: Double]

    init(_ group: SegmentSplit.Group, withClient: Bool) {
        requests = group.count
        guard group.count > 0 else {
            endToEndMeanNs = nil
            shares = [:]
            return
        }
        let e2e = group.e2e / Double(group.count)
        endToEndMeanNs = e2e
        var out: [SegmentName: Double] = [:]
        for s in SegmentName.allCases where s != .client || withClient {
            out[s] = e2e > 0 ? group.sums[s.index] / Double(group.count) / e2e : 0
        }
        shares = out
    }
}

/// The backend's waits of the requests in the split.
public struct BackendTally: Sendable, Equatable {
    /// Requests matched to their skb's read by the backend / not matched (no event near the stamp).
    public var matched = 0, unmatched = 0
    /// Sum over the waits of their longest stretch in which the backend's process did nothing the
    /// events show (`readerSilentNs`), and of the rest (`readerBusyNs`: it moved other packets).
    public var readerBusyNs: Int64 = 0, readerSilentNs: Int64 = 0

    /// What the backend's reading thread did during the waits, from the scheduler's events: over
    /// every matched wait, and over those of the slowest 1 % of requests (all zero without them).
    public var threadStates = ThreadStateTimes()
    public var tailThreadStates = ThreadStateTimes()

    /// `readerSilentNs`' share of all the waiting; nil without any.
    public var silentShare: Double? {
        let total = Double(readerBusyNs) + Double(readerSilentNs)
        return total > 0 ? Double(readerSilentNs) / total : nil
    }

    mutating func record(_ p: RequestPath, _ wait: Int64, inTail: Bool) {
        guard p.backend != nil else {
            unmatched += 1
            return
        }
        matched += 1
        if let states = p.backendStates {
            threadStates.add(states)
            if inTail { tailThreadStates.add(states) }
        }
        let silent = min(max(0, p.backendSilent), wait)
        readerSilentNs = LatencyRecorder.saturatingSum(readerSilentNs, silent)
        readerBusyNs = LatencyRecorder.saturatingSum(readerBusyNs, wait - silent)
    }

    mutating func add(_ o: BackendTally) {
        matched += o.matched
        unmatched += o.unmatched
        readerBusyNs = LatencyRecorder.saturatingSum(readerBusyNs, o.readerBusyNs)
        readerSilentNs = LatencyRecorder.saturatingSum(readerSilentNs, o.readerSilentNs)
        threadStates.add(o.threadStates)
        tailThreadStates.add(o.tailThreadStates)
    }
}
