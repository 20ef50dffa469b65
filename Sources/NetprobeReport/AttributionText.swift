import NetprobeModel
import NetprobeTrace
import NetprobeAttribution
/// The attribution in words: segment notes, the verdict's answer and evidence, the notes on what
/// could not be placed. The attribution computes numbers and enums; this is the one place that
/// writes its English (text, JSON, compare and HTML all show these strings).
public enum AttributionText {
    /// The report's segments, verdict and attribution details for `r`.
    public static func describe(_ r: AttributionResult) -> (segments: [SegmentSummary], verdict: Verdict, details: AttributionDetails) {
        let words = Words(r)
        let segments = r.segments.map { m in
            SegmentSummary(name: m.segment.rawValue, p50Us: us(m.p50Ns), p99Us: us(m.p99Ns), meanUs: m.meanNs.map { $0 / 1000 },
                           share: m.typicalShare, tailShare: m.tailShare, resolved: m.resolved, note: words.note(m.segment))
        }
        let verdict = Verdict(
            question: "Is the virtual network (bridge + tap) the bottleneck?",
            networkIsBottleneck: r.verdict.networkIsBottleneck, answer: words.answer(),
            median: VerdictPart(bottleneck: r.verdict.typicalTop?.segment.rawValue, share: r.verdict.typicalTop?.share,
                                endToEndMeanUs: r.typical.endToEndMeanNs.map { $0 / 1000 }, requests: r.typical.requests),
            tail: VerdictPart(bottleneck: r.verdict.tailTop?.segment.rawValue, share: r.verdict.tailTop?.share,
                              endToEndMeanUs: r.tail.endToEndMeanNs.map { $0 / 1000 }, requests: r.tail.requests),
            evidence: words.evidence(segments))
        let details = AttributionDetails(
            path: r.path.hops.map { PathEntry(interface: $0.interface, role: $0.role.rawValue) },
            requestsJoined: r.resolution.requests, innerOnly: r.unplaced.innerOnly, outerOnly: r.unplaced.outerOnly,
            negativeHops: r.unplaced.negative, endToEndDefinition: words.endToEnd(), notes: words.notes())
        return (segments, verdict, details)
    }

    static func us(_ ns: Int64?) -> Double? { ns.map { Double($0) / 1000 } }

    /// The sentences, from one result.
    private struct Words {
        let r: AttributionResult
        let outer: String, inner: String
        let twoSides: Bool

        init(_ r: AttributionResult) {
            self.r = r
            outer = r.path.outer?.interface ?? "-"
            inner = r.path.inner?.interface ?? "-"
            twoSides = r.path.hasTwoSides
        }

        func pct(_ x: Double?) -> String { x.map { TextReport.fmt($0 * 100, 1) + " %" } ?? "-" }
        func us(_ x: Double?) -> String { x.map { TextReport.fmt($0, $0 < 10 ? 2 : 0) + " us" } ?? "-" }

        func note(_ s: SegmentName) -> String {
            switch s {
            case .client:
                return r.resolution.clientRecords
                    ? "the load generator's send(2) -> \(outer), and \(outer) -> its recv(2) of the whole reply (client kernel stack and process)"
                    : "needs the load generator's own timestamps (netprobe capture -- netprobe load ...): not in this trace"
            case .bridge:
                let reply = r.replyHopResolved ? " and, where stamps differ, on the reply path"
                    : "; the reply path is unresolved (the kernel stamps a received frame once: both vantage points show the same time)"
                return twoSides ? "\(outer) -> \(inner) on the request path\(reply)"
                    : "needs captures on both sides of the virtual network (e.g. bridge and tap): this trace has one vantage point"
            case .tap:
                return r.resolution.tapQueue ? "queueing in \(r.path.guestDevice?.interface ?? inner)'s qdisc, from netlink backlog/overlimits/drops"
                    : twoSides ? "no netlink samples for the tap: included in bridge" : "needs two vantage points and netlink samples"
            case .guestStack:
                return twoSides ? "at \(inner): request in -> reply out, less Redis's time (hypervisor, virtio, guest kernel; without vhost-net also the tun queue)"
                    : "at \(inner): everything between request and reply, less Redis's time"
            case .redis:
                return r.resolution.redisInfo
                    ? "execution (INFO commandstats\(r.redisInfoSource.map { ", \(source($0))" } ?? "")) + waiting behind other commands on the single-threaded server"
                    : "needs Redis INFO commandstats (capture with --redis, or --redis-info FILE)"
            }
        }

        func source(_ s: RedisInfoSource) -> String {
            switch s {
            case .file: "from --redis-info, cumulative since Redis started"
            case .captureDelta: "delta over the run"
            }
        }

        func answer() -> String {
            let v = r.verdict
            switch v.answer {
            case .noRequests:
                return "inconclusive: no request was seen at \(twoSides ? "both the outer and the inner vantage point" : "any vantage point")"
            case .oneVantagePoint:
                return "inconclusive: one vantage point (\(inner)) cannot separate the virtual network from the guest; capture on the bridge and the tap"
            case .nothingResolved:
                return "inconclusive: no segment could be resolved"
            case let .decided(yes):
                let top = v.typicalTop!
                return yes
                    ? "yes: the virtual network (bridge + tap) takes \(pct(v.networkShare)) of the typical request's time; \(top.segment.rawValue) dominates"
                    : "no: the virtual network (bridge + tap) takes \(pct(v.networkShare)) of the typical request's time; \(top.segment.rawValue) takes \(pct(top.share))"
            }
        }

        func evidence(_ segments: [SegmentSummary]) -> [String] {
            var out: [String] = []
            let n = r.resolution.requests
            if n > 0 {
                out.append("\(n) requests seen at \(twoSides ? "\(outer) and \(inner)" : inner); typical end-to-end \(us(r.typical.endToEndMeanNs.map { $0 / 1000 })) (mean of the middle half), slowest 1 % \(us(r.tail.endToEndMeanNs.map { $0 / 1000 }))")
                for s in segments where s.resolved {
                    out.append("\(s.name): p50 \(us(s.p50Us)), p99 \(us(s.p99Us)); \(pct(s.share)) of the typical request, \(pct(s.tailShare)) of the slowest 1 %")
                }
            }
            if let t = r.tapCounters {
                out.append("\(t.interface) during the run: tx_dropped +\(t.txDropped) (the tun queue overflowing: a guest too slow to read), rx_dropped +\(t.rxDropped), qdisc \(t.qdiscKind ?? "none") drops +\(t.qdiscDrops), overlimits +\(t.qdiscOverlimits), peak backlog \(t.peakBacklog.map { "\($0) B" } ?? "-")")
            }
            if r.resolution.redisInfo {
                let top = r.redisUsecPerCall.sorted { $0.key < $1.key }.prefix(6).map { "\($0.key) \(TextReport.fmt($0.value, 2)) us" }
                out.append("Redis executes (INFO commandstats, per call): " + top.joined(separator: ", "))
            }
            if let tail = r.verdict.tailTop, let typical = r.verdict.typicalTop, tail.segment != typical.segment {
                out.append("the slowest 1 % are dominated by \(tail.segment.rawValue) (\(pct(tail.share))), unlike the typical request")
            }
            return out
        }

        func endToEnd() -> String {
            r.resolution.clientRecords ? "at the client: just before send(2) of the request -> just after recv(2) of the reply's last byte"
                : twoSides ? "at \(outer): request's last byte -> response's first byte" : "at \(inner): request's last byte -> response's first byte"
        }

        func notes() -> [String] {
            var notes: [String] = []
            let u = r.unplaced
            if twoSides && !r.resolution.tapQueue {
                notes.append("no netlink samples for the tap: its queueing is included in the bridge hop")
            }
            if let fastest = r.fastestRoundTripNs {
                notes.append("waiting behind commands shorter than the guest's fastest round trip (\(TextReport.fmt(Double(fastest) / 1000, 1)) us here) cannot be told from queueing in the guest stack and is counted there")
            } else {
                notes.append("no Redis INFO in the trace: Redis's own time cannot be told from the guest stack (capture with --redis, or give --redis-info FILE)")
            }
            if r.resolution.clientRecords && u.notFromClient > 0 {
                notes.append("\(u.notFromClient) requests seen on the wire have no matching record of the load generator (other clients, or connections whose SYN was not captured): they are not in the split, but the time Redis spent on them is on its timeline (others wait behind them)")
            }
            if u.negative > 0 { notes.append("\(u.negative) requests had a negative hop (time stamps out of order) and were left out") }
            if r.rowsClosedEarly > 0 {
                notes.append("the request rate was too high to hold \(TextReport.fmt(Double(r.joinWindowNs) / 1e9, 1)) s of requests open for the join (at most \(r.joinMaximumOpenRows)): \(r.rowsClosedEarly) were joined with what arrived before then; a later sighting of one of them counts as seen at one vantage point only")
            }
            if twoSides && u.innerOnly + u.outerOnly > 0 {
                notes.append("\(u.innerOnly + u.outerOnly) requests were paired at only one of \(outer) and \(inner) (capture loss at the other) and are not in the split")
            }
            return notes
        }
    }
}
