import NetprobeModel
import NetprobeTrace
/// The three passes over the joined rows (see `Attribution`), each cut into runs that may go on
/// threads of their own and are added up in run order.
struct Passes: @unchecked Sendable { // the join is only read here, after `finish()`
    let join: RequestJoin
    let runs: [Range<Int>]
    let paths: RequestPaths
    let tap: TapQueueModel
    let exec: RedisExecution
    let haveRedis: Bool
    /// The segments the inputs can resolve (`SegmentName.index`): only theirs are distributed.
    let resolvable: [Bool]

    /// Pass 1's result.
    struct Placed: Sendable {
        var unplaced = Unplaced()
        /// Rows on the path (the client's or not) / rows in the split (the client's).
        var placed = 0, requests = 0
        var redis: RedisCallStats
        /// The fastest request hop while the tap showed no queue, and the fastest of all.
        var minCalmHop = Int64.max, minHop = Int64.max
        var anyResponseHop = false
        var e2e = LatencyRecorder()
        /// Reply hops inner -> outer where resolved (differing stamps, or kernel events).
        var replyHop = LatencyRecorder()
        /// Rows placed before each run: the ordinal of a run's first placed row.
        var ordinalBase: [Int] = []

        /// Plain bridge -> tap forwarding: the fastest hop while the tap was calm.
        var forwarding: Int64 { minCalmHop != .max ? minCalmHop : minHop != .max ? minHop : 0 }

        mutating func add(_ p: Placed) {
            ordinalBase.append(placed)
            unplaced.add(p.unplaced)
            placed += p.placed
            requests += p.requests
            redis.add(p.redis)
            minCalmHop = min(minCalmHop, p.minCalmHop)
            minHop = min(minHop, p.minHop)
            anyResponseHop = anyResponseHop || p.anyResponseHop
            e2e.add(p.e2e)
            replyHop.add(p.replyHop)
        }
    }

    /// Pass 1: every row's path; counts, the fastest guest round trip, plain forwarding, the
    /// distribution of end-to-end times.
    func placeAll() -> Placed {
        let parts = eachInParallel(runs) { _, run -> Placed in
            var p = Placed(redis: RedisCallStats(commands: exec.commands))
            var cursor = 0
            join.forEachRow(in: run) { r in
                guard let row = paths.path(r, &p.unplaced) else { return }
                p.placed += 1
                if haveRedis { p.redis.record(row, exec) }
                guard row.counted else { return }
                p.requests += 1
                p.e2e.record(row.e2e)
                if let hop = row.responseHop {
                    p.anyResponseHop = true
                    p.replyHop.record(hop)
                }
                if tap.isResolved, let hop = row.requestHop {
                    p.minHop = min(p.minHop, hop)
                    if !tap.queued(at: row.outerIn, cursor: &cursor) { p.minCalmHop = min(p.minCalmHop, hop) }
                }
            }
            return p
        }
        return parts.reduce(into: Placed(redis: RedisCallStats(commands: exec.commands))) { $0.add($1) }
    }

    /// Pass 2: Redis's timeline, with the commands long enough to make others wait. Skipped when
    /// no placed command runs longer than the fastest round trip: it would find none.
    func timeline(_ first: Placed) -> RedisTimeline {
        var timeline = RedisTimeline(exec: exec, fastestRoundTrip: first.redis.fastestRoundTrip(placed: first.placed, exec),
                                     longest: first.redis.longest)
        guard timeline.longest > timeline.fastestRoundTrip else { return timeline }
        let found = eachInParallel(runs) { [timeline] index, run -> [RedisTimeline.LongCommand] in
            var found: [RedisTimeline.LongCommand] = []
            var unused = Unplaced()
            var k = first.ordinalBase[index]
            join.forEachRow(in: run) { r in
                guard let row = paths.path(r, &unused) else { return }
                if let long = timeline.longCommand(row, ordinal: k) { found.append(long) }
                k += 1
            }
            return found
        }
        for part in found { timeline.add(part) }
        timeline.sort()
        return timeline
    }

    /// Pass 3: the segments of every request in the split.
    func splitAll(_ first: Placed, _ timeline: RedisTimeline?) -> SegmentSplit {
        let forwarding = first.forwarding
        let parts = eachInParallel(runs) { index, run -> SegmentSplit in
            var split = SegmentSplit(e2e: first.e2e, kept: resolvable)
            var unused = Unplaced()
            var cursor = 0
            var ordinal = first.ordinalBase[index]
            var values = [Int64](repeating: 0, count: SegmentName.allCases.count)
            join.forEachRow(in: run) { r in
                guard let row = paths.path(r, &unused) else { return }
                let k = ordinal
                ordinal += 1
                guard row.counted else { return }
                let redis = timeline?.time(row, ordinal: k) ?? 0
                SegmentSplit.split(row, redis: redis, queued: tap.queued(at: row.outerIn, cursor: &cursor),
                                   forwarding: forwarding, into: &values)
                split.record(e2e: row.e2e, values)
                if paths.hops != nil { split.backend.record(row, values[SegmentName.vnicBackend.index], inTail: split.inTail(row.e2e)) }
                if timeline != nil { split.redisWait.record(max(0, redis - exec.ns(row.command))) }
            }
            return split
        }
        var total = SegmentSplit(e2e: first.e2e, kept: resolvable)
        for p in parts { total.add(p) }
        return total
    }
}
