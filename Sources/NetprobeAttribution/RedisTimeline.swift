import NetprobeModel
import NetprobeTrace
/// Stage 4: Redis's own time per request, execution plus waiting behind other commands.
///
/// Redis runs one command at a time, in order; the replies leave the guest in that order. The
/// timeline is rebuilt from the wire at the innermost vantage point: each command ends executing
/// when its reply leaves, less the guest's fastest way out, and starts its execution time (INFO
/// commandstats) before; a request reaches Redis after the guest's fastest way in. Its wait
/// behind others is the time Redis spent on other commands between its arrival and the start of
/// its own execution. Only commands that run longer than the guest's fastest round trip are
/// counted: a wait behind shorter ones cannot be told from queueing in the guest stack (it stays
/// there, and the report says so).
struct RedisExecution: Sendable {
    /// Execution time per call by command id (the join's numbering), ns.
    private let byId: [Int64]

    /// `usecPerCall` from INFO commandstats, by command name; `commandNames` in the join's order.
    init(usecPerCall: [String: Double], commandNames: [String]) {
        // INFO's usec_per_call comes from the trace or a file: keep it a sane Int64 whatever it says.
        byId = commandNames.map { name -> Int64 in
            let ns = (usecPerCall[name] ?? 0) * 1000
            return ns.isFinite ? Int64(min(max(ns, 0), Double(Int64(1) << 62))) : 0
        }
    }

    /// Command ids run 0..<commands; one more slot holds every unknown id.
    var commands: Int { byId.count }

    func ns(_ id: UInt16) -> Int64 { Int(id) < byId.count ? byId[Int(id)] : 0 }

    /// The slot of `id` in per-command tables of `commands + 1` entries.
    func slot(_ id: UInt16) -> Int { min(Int(id), byId.count) }
}

/// What pass 1 learns about Redis's commands: calls and the fastest guest round trip per command.
struct RedisCallStats: Sendable {
    var calls: [Int]
    /// Per command: the fastest (inner time - execution time).
    var fastest: [Int64]
    /// The longest execution time of any placed command.
    var longest: Int64 = 0

    init(commands: Int) {
        calls = [Int](repeating: 0, count: commands + 1)
        fastest = [Int64](repeating: .max, count: commands + 1)
    }

    mutating func record(_ p: RequestPath, _ exec: RedisExecution) {
        let id = exec.slot(p.command)
        let e = exec.ns(p.command)
        calls[id] += 1
        fastest[id] = min(fastest[id], p.inner - e)
        longest = max(longest, e)
    }

    mutating func add(_ o: RedisCallStats) {
        for id in calls.indices {
            calls[id] += o.calls[id]
            fastest[id] = min(fastest[id], o.fastest[id])
        }
        longest = max(longest, o.longest)
    }

    /// The fastest round trip through the guest stack (in + out), taken over the commands of
    /// ordinary length (execution at most the median request's): a long command's INFO time is a
    /// mean over calls of varying length, so its own round trip is unknown.
    func fastestRoundTrip(placed: Int, _ exec: RedisExecution) -> Int64 {
        let execOf = { (id: Int) in exec.ns(UInt16(truncatingIfNeeded: id)) }
        let byExec = calls.indices.filter { calls[$0] > 0 }.sorted { execOf($0) < execOf($1) }
        var seen = 0
        var ordinary: Int64 = 0
        for id in byExec {
            seen += calls[id]
            if seen > placed / 2 { ordinary = execOf(id); break }
        }
        return max(0, byExec.filter { execOf($0) <= ordinary }.map { fastest[$0] }.min() ?? 0)
    }
}

/// The commands long enough to make others wait, and each request's time in Redis.
struct RedisTimeline: Sendable {
    struct LongCommand: Sendable {
        var start: Int64
        var end: Int64
        /// The request's ordinal among placed rows (a command never waits behind itself).
        var row: Int
    }

    let exec: RedisExecution
    /// The guest's fastest round trip, split evenly between the way in and the way out.
    let fastestRoundTrip: Int64
    let longest: Int64
    /// Sorted by start. The one thing here that grows with the trace, by 24 bytes per long command.
    private(set) var long: [LongCommand] = []

    init(exec: RedisExecution, fastestRoundTrip: Int64, longest: Int64) {
        self.exec = exec
        self.fastestRoundTrip = fastestRoundTrip
        self.longest = longest
    }

    /// `p`'s execution on the timeline when it runs longer than the fastest round trip.
    func longCommand(_ p: RequestPath, ordinal: Int) -> LongCommand? {
        let e = exec.ns(p.command)
        guard e > fastestRoundTrip else { return nil }
        let end = p.innerOut - fastestRoundTrip / 2
        return LongCommand(start: end - e, end: end, row: ordinal)
    }

    mutating func add(_ found: [LongCommand]) { long += found }
    mutating func sort() { long.sort { $0.start < $1.start } }

    /// Redis's time for `p`: its execution plus its wait behind long commands, at most its time at
    /// the innermost vantage point.
    func time(_ p: RequestPath, ordinal k: Int) -> Int64 {
        let half = fastestRoundTrip / 2
        let e = exec.ns(p.command)
        let start = p.innerOut - half - e
        let arrival = p.innerIn + half
        var wait: Int64 = 0
        if start > arrival && !long.isEmpty {
            // Long commands whose execution overlaps [arrival, own start).
            var lo = 0, hi = long.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if long[mid].start < arrival - longest { lo = mid + 1 } else { hi = mid }
            }
            var j = lo
            while j < long.count && long[j].start < start {
                let other = long[j]
                if other.row != k {
                    let overlap = min(other.end, start) - max(other.start, arrival)
                    if overlap > 0 { wait = LatencyRecorder.saturatingSum(wait, overlap) }
                }
                j += 1
            }
        }
        return min(p.inner, LatencyRecorder.saturatingSum(e, min(wait, max(0, start - arrival))))
    }
}
