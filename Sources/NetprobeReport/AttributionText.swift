import NetprobeModel
import NetprobeTrace
import NetprobeAttribution

/// The attribution in words: segment labels and notes, the verdict's question, answer and
/// evidence, the notes on what could not be placed. The attribution computes numbers and enums;
/// this is the one place that writes its English (text, JSON, compare and HTML show these strings).
///
/// Words follow what is on the path: a guest's stack only where the innermost vantage point is a
/// tap or macvtap, a server's stack behind a veth or on loopback, and no virtual network where
/// the client and Redis share loopback.
public enum AttributionText {
    /// The report's segments, verdict and attribution details for `r`.
    public static func describe(_ r: AttributionResult) -> (segments: [SegmentSummary], verdict: Verdict, details: AttributionDetails) {
        let words = Words(r)
        let segments = r.segments.map { m in
            // Redis's time per request is its command's mean from INFO plus rebuilt waits: a mean
            // is a mean, never shown as a percentile.
            let isMeanBased = m.segment == .redis
            return SegmentSummary(name: m.segment.rawValue, label: words.label(m.segment),
                                  p50Us: isMeanBased ? nil : us(m.p50Ns), p99Us: isMeanBased ? nil : us(m.p99Ns),
                                  meanUs: m.meanNs.map { $0 / 1000 }, share: m.typicalShare, tailShare: m.tailShare,
                                  resolved: m.resolved, note: words.note(m.segment),
                                  waitUs: isMeanBased && m.resolved ? r.redisWait.map(LatencySummary.init) : nil)
        }
        let verdict = Verdict(
            question: words.question(), networkIsBottleneck: r.verdict.networkIsBottleneck, answer: words.answer(),
            median: VerdictPart(bottleneck: r.verdict.typicalTop?.segment.rawValue,
                                bottleneckLabel: r.verdict.typicalTop.map { words.label($0.segment) },
                                share: r.verdict.typicalTop?.share,
                                endToEndMeanUs: r.typical.endToEndMeanNs.map { $0 / 1000 }, requests: r.typical.requests),
            tail: VerdictPart(bottleneck: r.verdict.tailTop?.segment.rawValue,
                              bottleneckLabel: r.verdict.tailTop.map { words.label($0.segment) },
                              share: r.verdict.tailTop?.share,
                              endToEndMeanUs: r.tail.endToEndMeanNs.map { $0 / 1000 }, requests: r.tail.requests),
            evidence: words.evidence(segments),
            bypassBound: r.verdict.bypassBound.map { b in
                BypassSummary(segments: b.segments.map { words.label($0) }, unmeasured: words.unmeasured(b).map { words.label($0) },
                              typical: b.typical.map(BypassSummary.Group.init), tail: b.tail.map(BypassSummary.Group.init))
            })
        let details = AttributionDetails(
            path: r.path.hops.map { PathEntry(interface: $0.interface, role: $0.role.rawValue) },
            requestsJoined: r.resolution.requests, innerOnly: r.unplaced.innerOnly, outerOnly: r.unplaced.outerOnly,
            negativeHops: r.unplaced.negative, endToEndDefinition: words.endToEnd(),
            endToEndUs: r.endToEnd.count > 0 ? LatencySummary(r.endToEnd) : nil,
            requestsDroppedBySpill: r.spillProblem?.rowsDropped,
            replyHopUs: r.replyHop.count > 0 ? LatencySummary(r.replyHop) : nil,
            backendThread: BackendThreadSummary(r.backend, pid: r.backendReader, threads: r.backendThreads), notes: words.notes())
        return (segments, verdict, details)
    }

    static func us(_ ns: Int64?) -> Double? { ns.map { Double($0) / 1000 } }

    /// What the reading thread's state during the waits says about the backend (the end of the
    /// "slow backend or stopped hypervisor?" evidence).
    static func conclusion(_ state: ThreadState) -> String {
        switch state {
        case .running:
            "a busy backend: its thread was on a CPU, working on other things, while the request waited (work that vhost-net would move to a kernel worker)"
        case .runnable:
            "a starved backend: its thread was ready to run but not given a CPU (CPU contention or a CPU quota); a bypass does not give it CPU time"
        case .stopped:
            "a stopped hypervisor: the backend's thread was stopped (SIGSTOP, a debugger or a freezer); no bypass shortens that"
        case .asleep:
            "a backend that was not woken: its thread slept with the request queued (e.g. it had stopped polling because the guest's receive queue was full)"
        }
    }

    /// What serves Redis behind the innermost vantage point.
    enum ServerSide {
        /// A VM behind a tap or a macvtap.
        case guest
        /// A namespace behind a veth (a container-like setup).
        case namespace
        /// Client and Redis on one kernel, over loopback.
        case loopback
        /// The trace's innermost vantage point is not next to the server (a bridge, a client NIC).
        case beyond

        init(_ inner: VantageRole?) {
            switch inner {
            case .tap?, .macvtap?: self = .guest
            case .veth?: self = .namespace
            case .host?: self = .loopback
            default: self = .beyond
            }
        }
    }

    /// The sentences, from one result.
    private struct Words {
        let r: AttributionResult
        let outer: String, inner: String
        let twoSides: Bool
        let side: ServerSide
        let innerRole: VantageRole?

        init(_ r: AttributionResult) {
            self.r = r
            outer = r.path.outer?.interface ?? "-"
            inner = r.path.inner?.interface ?? "-"
            twoSides = r.path.hasTwoSides
            innerRole = r.path.inner?.role
            side = ServerSide(innerRole)
        }

        func pct(_ x: Double?) -> String { x.map { TextReport.fmt($0 * 100, 1) + " %" } ?? "-" }
        func us(_ x: Double?) -> String { x.map { TextReport.fmt($0, $0 < 10 ? 2 : 0) + " us" } ?? "-" }

        /// What a segment is on this path.
        func label(_ s: SegmentName) -> String {
            switch s {
            case .client, .redis: return s.rawValue
            case .bridge: return innerRole == .macvtap ? "macvlan" : "bridge"
            case .tap:
                switch innerRole {
                case .macvtap?: return "macvtap"
                case .veth?: return "veth"
                default: return "tap"
                }
            case .vnicBackend:
                return s.rawValue
            case .guestStack:
                let stack: String
                switch side {
                case .guest: stack = "guest-stack"
                case .namespace, .loopback: stack = "server-stack"
                case .beyond: stack = "server-side"
                }
                return r.resolution.redisInfo ? stack : stack + "+redis"
            }
        }

        /// The virtual network in words: "bridge + tap", "macvlan + macvtap", "bridge + veth", with
        /// the backend where kernel events resolve it.
        var network: String {
            "\(label(.bridge)) + \(label(.tap))" + (r.resolution.isResolved(.vnicBackend) ? " + \(label(.vnicBackend))" : "")
        }

        /// The stack behind the innermost vantage point, in words.
        var stack: String {
            switch side {
            case .guest: "the guest stack"
            case .namespace: "the server namespace's stack"
            case .loopback: "the host's stack"
            case .beyond: "the server side"
            }
        }

        /// Where to capture to see both sides of the virtual network.
        var advice: String {
            switch innerRole {
            case .tap?: "capture on \(inner) and on the bridge it is a port of (netprobe capture -i BRIDGE -i \(inner), or --vm NAME)"
            case .macvtap?: "capture on \(inner) and on its parent link (or --vm NAME)"
            case .veth?: "capture on \(inner) and on the bridge it is a port of"
            default: "capture on \(inner) and on the tap, macvtap or veth behind it"
            }
        }

        func note(_ s: SegmentName) -> String {
            if side == .loopback && !twoSides && (s == .bridge || s == .tap) {
                return "no virtual network on this path: the client and Redis talk over \(inner)"
            }
            switch s {
            case .client:
                return r.resolution.clientRecords
                    ? "the load generator's send(2) -> \(outer), and \(outer) -> its recv(2) of the whole reply (client kernel stack and process)"
                    : "needs the load generator's own timestamps (netprobe capture -- netprobe load ...): not in this trace"
            case .bridge:
                let reply = r.kernelHopsDevice != nil && r.replyHopResolved ? " and on the reply path (from kernel events at \(inner))"
                    : r.replyHopResolved ? " and, where stamps differ, on the reply path"
                    : "; the reply path is unresolved (the kernel stamps a received frame once: both vantage points show the same time)"
                return twoSides ? "\(outer) -> \(inner) on the request path\(reply)"
                    : "needs captures on both sides of the virtual network: this trace has one vantage point (\(advice))"
            case .tap:
                if r.resolution.tapQueue {
                    return "queueing in \(r.path.queueDevice?.interface ?? inner)'s qdisc, from netlink backlog/overlimits/drops"
                }
                if !twoSides { return "needs two vantage points and netlink samples" }
                return r.path.queueDevice == nil
                    ? "\(inner) has no queue of its own to measure: any queueing is included in \(label(.bridge))"
                    : "no netlink samples for \(inner): its queueing is included in \(label(.bridge))"
            case .vnicBackend:
                return backendNote()
            case .guestStack:
                var without = r.resolution.redisInfo ? "less Redis's time" : "with Redis's own time (no INFO in the trace)"
                if r.resolution.isResolved(.vnicBackend) { without += " and the backend's wait" }
                let what: String
                switch side {
                case .guest: what = r.resolution.isResolved(.vnicBackend)
                    ? "QEMU's emulation, virtio, the guest kernel"
                    : "hypervisor, virtio, guest kernel; also the wait in \(inner)'s queue until the backend (QEMU or vhost-net) reads it: no kernel events here to separate it"
                case .namespace: what = "the veth peer, the server namespace's kernel stack and socket"
                case .loopback: what = "the host's loopback and TCP stack, the server's socket and wake-up"
                case .beyond: what = "everything past \(inner), which this trace cannot split"
                }
                return twoSides || side != .beyond ? "at \(inner): request in -> reply out (\(what)), \(without)"
                    : "at \(inner): everything between request and reply, \(without)"
            case .redis:
                return r.resolution.redisInfo
                    ? "execution (INFO commandstats\(r.redisInfoSource.map { ", \(source($0))" } ?? "")) + waiting behind other commands on the single-threaded server; each request is given its command's mean execution time, so this segment has a mean, not percentiles"
                    : "needs Redis INFO commandstats (capture with --redis, or --redis-info FILE)"
            }
        }

        /// Virtual-network segments a bypass would remove that the trace did not measure (the
        /// backend only where there is one: behind a tap or macvtap).
        func unmeasured(_ b: BypassBound) -> [SegmentName] {
            b.unmeasured.filter { $0 != .vnicBackend || side == .guest }
        }

        /// The backend's segment: who read the device's queue, how many requests were matched, and
        /// whether the reader was running while requests waited.
        func backendNote() -> String {
            guard let b = r.backend, b.matched > 0 else {
                if side != .guest { return "no virtual NIC backend on this path: \(inner) is not a tap or macvtap" }
                if r.backend != nil { return "kernel events at \(inner) in the trace, but no request matched one (events from another run or another device?)" }
                return "needs kernel events at \(inner) (netprobe capture records them where tracepoints are available): not in this trace; the wait is in \(label(.guestStack))"
            }
            let queue = r.kernelHopsQueueDevice ?? inner
            let reader = r.backendReader.map { "pid \($0)" } ?? "-"
            let others = r.otherReaderCopies > 0 ? "; other processes read \(r.otherReaderCopies) skbs from the same queue, not counted" : ""
            let silent = b.silentShare ?? 0
            let whose = queue == inner ? "\(inner)'s queue" : "\(inner)'s queue (filled on \(queue))"
            var note = "\(whose) until the backend read the request (\(reader)\(others)), from kernel events; \(b.matched) of \(b.matched + b.unmatched) requests matched"
            if b.unmatched > 0 { note += " (the others' wait is in \(label(.guestStack)))" }
            if let t = BackendThreadSummary(r.backend, pid: r.backendReader, threads: r.backendThreads) {
                note += "; its thread was \(t.all.text) of the waiting, by the scheduler's events (see the evidence)"
            } else {
                note += "; \(pct(silent)) of the waiting lies in stretches where the backend's process did nothing the events show (see the evidence)"
            }
            return note
        }

        func source(_ s: RedisInfoSource) -> String {
            switch s {
            case .file: "from --redis-info, cumulative since Redis started"
            case .captureDelta: "delta over the run"
            }
        }

        func question() -> String {
            side == .loopback && !twoSides ? "Is the virtual network the bottleneck?"
                : "Is the virtual network (\(network)) the bottleneck?"
        }

        func answer() -> String {
            let v = r.verdict
            switch v.answer {
            case .noRequests:
                return "inconclusive: no request was seen at \(twoSides ? "both the outer and the inner vantage point" : "any vantage point")"
            case .oneVantagePoint:
                if side == .loopback {
                    return "inconclusive: one vantage point (\(inner)): the client and Redis share the host's loopback, so there is no virtual network on this path to measure"
                }
                return "inconclusive: one vantage point (\(inner)) cannot separate the virtual network from \(stack); \(advice)"
            case .nothingResolved:
                return "inconclusive: no segment could be resolved"
            case let .decided(yes):
                let top = v.typicalTop!
                return yes
                    ? "yes: the virtual network (\(network)) takes \(pct(v.networkShare)) of the typical request's time; \(label(top.segment)) dominates"
                    : "no: the virtual network (\(network)) takes \(pct(v.networkShare)) of the typical request's time; \(label(top.segment)) takes \(pct(top.share))"
            }
        }

        func evidence(_ segments: [SegmentSummary]) -> [String] {
            var out: [String] = []
            let n = r.resolution.requests
            if n > 0 {
                let e2e = r.endToEnd
                let percentiles = [50.0, 99].map { p in e2e.valueNs(atPercentile: p).map { us(Double($0) / 1000) } ?? "-" }
                out.append("\(n) requests seen at \(twoSides ? "\(outer) and \(inner)" : inner); end-to-end p50 \(percentiles[0]), p99 \(percentiles[1]); mean of the typical request (the middle half) \(us(r.typical.endToEndMeanNs.map { $0 / 1000 })), mean of the slowest 1 % \(us(r.tail.endToEndMeanNs.map { $0 / 1000 }))")
                for s in segments where s.resolved {
                    var spread = s.p50Us == nil ? "mean \(us(s.meanUs))" : "p50 \(us(s.p50Us)), p99 \(us(s.p99Us))"
                    if let wait = s.waitUs { spread += " (of which waiting behind longer commands: p99 \(us(wait.p99)), max \(us(wait.max)))" }
                    out.append("\(s.shownName): \(spread); \(pct(s.share)) of the typical request, \(pct(s.tailShare)) of the slowest 1 %")
                }
            }
            if let t = r.tapCounters {
                let why = innerRole == .tap ? " (the tun queue overflowing: a guest too slow to read)" : ""
                out.append("\(t.interface) during the run: tx_dropped +\(t.txDropped)\(why), rx_dropped +\(t.rxDropped), qdisc \(t.qdiscKind ?? "none") drops +\(t.qdiscDrops), overlimits +\(t.qdiscOverlimits), peak backlog \(t.peakBacklog.map { "\($0) B" } ?? "-")")
            }
            if r.resolution.redisInfo {
                let top = r.redisUsecPerCall.sorted { $0.key < $1.key }.prefix(6).map { "\($0.key) \(TextReport.fmt($0.value, 2)) us" }
                out.append("Redis executes (INFO commandstats, mean per call): " + top.joined(separator: ", "))
            }
            if let device = r.kernelHopsDevice, twoSides, r.replyHop.count > 0, let mean = r.replyHop.meanNs {
                let q = [50.0, 99].map { p in r.replyHop.valueNs(atPercentile: p).map { us(Double($0) / 1000) } ?? "-" }
                out.append("reply path \(device) -> \(outer) (kernel events: the capture stamps a received frame once): mean \(us(mean / 1000)), p50 \(q[0]), p99 \(q[1]) over \(r.replyHop.count) replies")
            }
            if let t = BackendThreadSummary(r.backend, pid: r.backendReader, threads: r.backendThreads) {
                let who = (r.backendReader.map { "pid \($0)" } ?? "the backend") + (t.threads.isEmpty ? "" : ", thread " + t.threads.prefix(3).map(String.init).joined(separator: ", "))
                var line = "slow backend or stopped hypervisor? the scheduler's events of the backend's reading thread (\(who)): while requests waited in \(r.kernelHopsQueueDevice ?? "the device")'s queue it was \(t.all.text)"
                if let tail = t.tail { line += "; in the slowest 1 %'s waits \(tail.text)" }
                if t.all.uncoveredUs > 0 { line += " (\(us(t.all.uncoveredUs)) of waiting fell before the thread's first event: not counted)" }
                line += ". So \(t.tail != nil ? "the slowest 1 %" : "the requests") waited mostly on " + AttributionText.conclusion(t.dominant)
                out.append(line)
            } else if let b = r.backend, b.matched > 0, let silent = b.silentShare {
                let reader = r.backendReader.map { "pid \($0)" } ?? "the backend"
                out.append("slow backend or stopped hypervisor? in each wait, the longest stretch in which \(reader) did nothing the kernel events show adds up to \(pct(silent)) of the backend's waiting (not running, or not serving packets then); for \(pct(1 - silent)) it was moving other packets. Packet events cannot tell a stopped or starved backend from a busy one (that needs the scheduler's events: capture --kernel-events scheduler), so this does not say whether vhost-net would help")
            }
            if let bound = r.verdict.bypassBound, !bound.segments.isEmpty {
                let what = bound.segments.map { label($0) }.joined(separator: ", ")
                func group(_ g: BypassBound.Group?, _ name: String) -> String {
                    guard let g else { return "\(name): -" }
                    return "\(us(g.savedNs / 1000)) of \(us(g.endToEndNs / 1000)) (\(pct(g.share))) for \(name)"
                }
                let figures = "\(group(bound.typical, "the typical request (means)")) and \(group(bound.tail, "the slowest 1 %"))"
                let missing = unmeasured(bound)
                if missing.isEmpty {
                    out.append("a bypass of \(what) could save at most \(figures)")
                } else {
                    out.append("\(what) take\(bound.segments.count == 1 ? "s" : "") \(figures); a bypass would also remove \(missing.map { label($0) }.joined(separator: " and ")), which this trace cannot measure, so this is not an upper bound of what it saves")
                }
            }
            if let tail = r.verdict.tailTop, let typical = r.verdict.typicalTop, tail.segment != typical.segment {
                out.append("the slowest 1 % are dominated by \(label(tail.segment)) (\(pct(tail.share))), unlike the typical request")
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
            if twoSides && !r.resolution.tapQueue, r.path.queueDevice != nil {
                notes.append("no netlink samples for \(inner): its queueing is included in the \(label(.bridge)) hop")
            }
            if let fastest = r.fastestRoundTripNs {
                notes.append("waiting behind commands shorter than the fastest round trip through \(stack) (\(TextReport.fmt(Double(fastest) / 1000, 1)) us here) cannot be told from queueing there and is counted in \(label(.guestStack))")
                notes.append("Redis's time per request is its command's mean execution time from INFO: executions slower than their command's mean are counted in \(label(.guestStack))")
            } else if r.resolution.redisInfo {
                notes.append("no request could be placed on Redis's timeline: Redis's time is not split out")
            } else {
                notes.append("no Redis INFO in the trace: Redis's own time cannot be told from \(stack) and is counted in \(label(.guestStack)) (capture with --redis, or give --redis-info FILE)")
            }
            if r.resolution.clientRecords && u.notFromClient > 0 {
                notes.append("\(u.notFromClient) requests seen on the wire have no matching record of the load generator (other clients, or connections whose SYN was not captured): they are not in the split, but the time Redis spent on them is on its timeline (others wait behind them)")
            }
            if u.negative > 0 { notes.append("\(u.negative) requests had a negative hop (time stamps out of order) and were left out") }
            if r.rowsClosedEarly > 0 {
                notes.append("the request rate was too high to hold \(TextReport.fmt(Double(r.joinWindowNs) / 1e9, 1)) s of requests open for the join (at most \(r.joinMaximumOpenRows)): \(r.rowsClosedEarly) were joined with what arrived before then; a later sighting of one of them counts as seen at one vantage point only")
            }
            if let p = r.spillProblem {
                let what = p.step == .create ? "created" : "written"
                notes.append("the join's temporary file could not be \(what) in \(p.directory) (errno \(p.errno)): joined requests stayed in memory, at most \(p.memoryLimit / 1_048_576) MiB; \(p.rowsDropped) requests past that were dropped and are not in the split (set TMPDIR to a writable place with room)")
            }
            if twoSides && u.innerOnly + u.outerOnly > 0 {
                notes.append("\(u.innerOnly + u.outerOnly) requests were paired at only one of \(outer) and \(inner) (capture loss at the other) and are not in the split")
            }
            return notes
        }
    }
}
