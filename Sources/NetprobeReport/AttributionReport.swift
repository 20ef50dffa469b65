import NetprobeModel
import NetprobeTrace
import NetprobeAttribution
/// One segment's share of the time.
public struct SegmentSummary: Codable, Sendable, Equatable {
    /// The segment's key, the same on every path (client, bridge, tap, guest-stack, redis).
    public var name: String
    /// What the segment is on this path (`server-stack` behind a veth, `veth` for its queue,
    /// `guest-stack+redis` without INFO ...); nil in reports saved before labels existed.
    public var label: String?
    public var p50Us: Double?
    public var p99Us: Double?
    public var meanUs: Double?
    /// Share of the end-to-end time of the typical request (the middle half, p25-p75).
    public var share: Double?
    /// Share of the end-to-end time of the slowest 1 %.
    public var tailShare: Double?
    public var resolved: Bool
    /// What the segment contains here, or why it could not be measured.
    public var note: String
    /// For `redis`: the distribution of each request's wait behind longer commands (rebuilt from
    /// the wire), beside the mean that includes execution; nil elsewhere.
    public var waitUs: LatencySummary?

    /// The label where the report has one, else the key.
    public var shownName: String { label ?? name }
}

public struct VerdictPart: Codable, Sendable, Equatable {
    /// The segment with the largest share, among the resolved ones (its key) ...
    public var bottleneck: String?
    /// ... and what it is on this path (see `SegmentSummary.label`).
    public var bottleneckLabel: String?

    /// The bottleneck as people read it: its label on this path, else its key, else "-".
    public var shownBottleneck: String { bottleneckLabel ?? bottleneck ?? "-" }
    public var share: Double?
    /// End-to-end time of this group (mean, us) and how many requests it holds.
    public var endToEndMeanUs: Double?
    public var requests: Int
}

/// What a bypass of the virtual network could save at most (`BypassBound` in us).
public struct BypassSummary: Codable, Sendable, Equatable {
    public struct Group: Codable, Sendable, Equatable {
        /// Mean time in the bypassed segments, the group's mean end-to-end time, and their ratio.
        public var savedUs: Double
        public var endToEndUs: Double
        public var share: Double

        init(_ g: BypassBound.Group) {
            savedUs = g.savedNs / 1000
            endToEndUs = g.endToEndNs / 1000
            share = g.share
        }
    }
    /// The segments a bypass removes, as named on this path (those the trace resolves) ...
    public var segments: [String]
    /// ... and those it would also remove that this trace cannot measure: while any is listed,
    /// the figures are what the measured segments take, not an upper bound of the saving.
    public var unmeasured: [String]
    public var typical: Group?
    public var tail: Group?
}

/// The answer to the seed's claim.
public struct Verdict: Codable, Sendable, Equatable {
    public var question: String
    /// true, false, or null (inconclusive: the data cannot say).
    public var networkIsBottleneck: Bool?
    public var answer: String
    public var median: VerdictPart
    public var tail: VerdictPart
    public var evidence: [String]
    /// What limits the answer: capture loss, requests paired at one vantage point only ... Empty
    /// when nothing does.
    public var caveats: [String] = []
    /// The most a bypass of bridge, tap and backend could save; nil with one vantage point.
    public var bypassBound: BypassSummary?

    public init(question: String, networkIsBottleneck: Bool?, answer: String, median: VerdictPart, tail: VerdictPart,
                evidence: [String], caveats: [String] = [], bypassBound: BypassSummary? = nil) {
        self.question = question
        self.networkIsBottleneck = networkIsBottleneck
        self.answer = answer
        self.median = median
        self.tail = tail
        self.evidence = evidence
        self.caveats = caveats
        self.bypassBound = bypassBound
    }

    enum CodingKeys: String, CodingKey { case question, networkIsBottleneck, answer, caveats, median, tail, evidence, bypassBound }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        question = try c.decode(String.self, forKey: .question)
        networkIsBottleneck = try c.decodeIfPresent(Bool.self, forKey: .networkIsBottleneck)
        answer = try c.decode(String.self, forKey: .answer)
        median = try c.decode(VerdictPart.self, forKey: .median)
        tail = try c.decode(VerdictPart.self, forKey: .tail)
        evidence = try c.decode([String].self, forKey: .evidence)
        caveats = try c.decodeIfPresent([String].self, forKey: .caveats) ?? []
        bypassBound = try c.decodeIfPresent(BypassSummary.self, forKey: .bypassBound)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(question, forKey: .question)
        try c.encode(networkIsBottleneck, forKey: .networkIsBottleneck)
        try c.encode(answer, forKey: .answer)
        try c.encode(caveats, forKey: .caveats)
        try c.encode(median, forKey: .median)
        try c.encode(tail, forKey: .tail)
        try c.encode(evidence, forKey: .evidence)
        try c.encode(bypassBound, forKey: .bypassBound)
    }
}

/// A vantage point on the attribution path. In JSON one string, `virbr0 (bridge)`.
public struct PathEntry: Codable, Sendable, Equatable, CustomStringConvertible {
    public var interface: String
    public var role: String

    public init(interface: String, role: String) {
        self.interface = interface
        self.role = role
    }

    public var description: String { "\(interface) (\(role))" }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        // Saved reports: NAME (ROLE). An interface name has no spaces (IFNAMSIZ, no blanks).
        if text.hasSuffix(")"), let open = text.lastIndex(of: "("), open > text.startIndex,
           text[text.index(before: open)] == " " {
            interface = String(text[..<text.index(before: open)])
            role = String(text[text.index(after: open)...].dropLast())
        } else {
            interface = text
            role = VantageRole.other.rawValue
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// How the attribution was made: the path, what was joined, what was missing.
public struct AttributionDetails: Codable, Sendable, Equatable {
    /// Vantage points from the client side inwards, with their roles.
    public var path: [PathEntry]
    public var requestsJoined: Int
    /// Requests seen at the innermost vantage point only / at the outermost only.
    public var innerOnly: Int
    public var outerOnly: Int
    /// Requests whose hop came out negative (clocks or stamps out of order): left out.
    public var negativeHops: Int
    public var endToEndDefinition: String
    /// The distribution of end-to-end times of the requests in the split (as defined above);
    /// nil in reports saved before it was recorded.
    public var endToEndUs: LatencySummary?
    /// Joined requests dropped because the join's temporary file failed and memory was full
    /// (nil when the file worked).
    public var requestsDroppedBySpill: Int?
    /// The reply path's hop from the inner vantage point outwards, where resolved (from kernel
    /// events, or differing capture stamps); nil where it was not.
    public var replyHopUs: LatencySummary? = nil
    /// What the backend's reading thread did while requests waited in its queue, from the
    /// scheduler's events; nil without them.
    public var backendThread: BackendThreadSummary? = nil
    public var notes: [String]
}

/// What the virtual NIC backend's thread did while requests waited in the queue it reads
/// (sched:sched_switch and sched:sched_wakeup of its threads): how the report tells a busy
/// backend from a starved, a stopped or a sleeping one.
public struct BackendThreadSummary: Codable, Sendable, Equatable {
    /// Shares of the waiting time the scheduler's events cover, per state of the reading thread.
    public struct Shares: Codable, Sendable, Equatable {
        public var running: Double
        public var runnable: Double
        public var stopped: Double
        public var asleep: Double
        /// Waiting time the events cover, and time they do not (before the thread's first event).
        public var coveredUs: Double
        public var uncoveredUs: Double

        /// nil when the events cover none of the waiting (or there were none).
        init?(_ t: ThreadStateTimes) {
            guard t.knownNs > 0 else { return nil }
            running = t.share(.running) ?? 0
            runnable = t.share(.runnable) ?? 0
            stopped = t.share(.stopped) ?? 0
            asleep = t.share(.asleep) ?? 0
            coveredUs = Double(t.knownNs) / 1000
            uncoveredUs = Double(t.unknownNs) / 1000
        }

        public subscript(state: ThreadState) -> Double {
            switch state {
            case .running: running
            case .runnable: runnable
            case .stopped: stopped
            case .asleep: asleep
            }
        }

        /// "running 12.0 %, runnable but off a CPU 80.0 %, stopped 0.0 %, asleep 8.0 %"
        public var text: String {
            func pct(_ x: Double) -> String { TextReport.fmt(x * 100, 1) + " %" }
            return "running \(pct(running)), runnable but off a CPU \(pct(runnable)), stopped \(pct(stopped)), asleep \(pct(asleep))"
        }

        /// The state with the largest share (ties: the order of `ThreadState`).
        public var dominant: ThreadState {
            var best = ThreadState.running
            for state in ThreadState.allCases where self[state] > self[best] { best = state }
            return best
        }
    }
    /// The backend's process and the threads that read the requests (most first).
    public var pid: Int32?
    public var threads: [Int32]
    /// Over every matched wait, and over the waits of the slowest 1 % of requests.
    public var all: Shares
    public var tail: Shares?
    /// The state with the most of the slowest 1 %'s waiting (all waits' when the tail has none):
    /// running (a busy backend), runnable (starved of CPU), stopped, asleep.
    public var dominant: ThreadState

    init?(_ b: BackendTally?, pid: Int32?, threads: [Int32]) {
        guard let b, let all = Shares(b.threadStates) else { return nil }
        let tail = Shares(b.tailThreadStates)
        self.pid = pid
        self.threads = threads
        self.all = all
        self.tail = tail
        dominant = (tail ?? all).dominant
    }
}

