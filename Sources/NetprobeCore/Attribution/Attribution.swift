/// One segment's share of the time.
public struct SegmentSummary: Codable, Sendable, Equatable {
    public var name: String
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
}

public struct VerdictPart: Codable, Sendable, Equatable {
    /// The segment with the largest share, among the resolved ones.
    public var bottleneck: String?
    public var share: Double?
    /// End-to-end time of this group (mean, us) and how many requests it holds.
    public var endToEndMeanUs: Double?
    public var requests: Int
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

    enum CodingKeys: String, CodingKey { case question, networkIsBottleneck, answer, median, tail, evidence }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(question, forKey: .question)
        try c.encode(networkIsBottleneck, forKey: .networkIsBottleneck)
        try c.encode(answer, forKey: .answer)
        try c.encode(median, forKey: .median)
        try c.encode(tail, forKey: .tail)
        try c.encode(evidence, forKey: .evidence)
    }
}

/// How the attribution was made: the path, what was joined, what was missing.
public struct AttributionDetails: Codable, Sendable, Equatable {
    /// Vantage points from the client side inwards, with their roles.
    public var path: [String]
    public var requestsJoined: Int
    /// Requests seen at the innermost vantage point only / at the outermost only.
    public var innerOnly: Int
    public var outerOnly: Int
    /// Requests whose hop came out negative (clocks or stamps out of order): left out.
    public var negativeHops: Int
    public var endToEndDefinition: String
    public var notes: [String]
}

/// Inputs beyond the packets.
public struct AttributionInputs: Sendable {
    /// Vantage names in analysis order and their roles (bridge, tap, ...).
    public var vantages: [(name: String, role: String)]
    /// Netlink samples by interface.
    public var netlink: [String: [NetlinkSample]] = [:]
    /// Redis execution time per call, microseconds, by command (INFO commandstats).
    public var redisUsecPerCall: [String: Double] = [:]
    public var redisInfoSource: String?
    /// The load generator's own send and receive times, by connection and stream offset.
    public var client = ClientRecords()

    public init(vantages: [(name: String, role: String)]) { self.vantages = vantages }

    /// Adds the client's records from a netprobe trace.
    public mutating func addClientRequests(_ c: ClientRequests) { client.add(c) }
}

/// The load generator's records, per connection in offset order: 20 bytes a request (a
/// dictionary of every request took ~120 and a cache miss per lookup; the attribution looks each
/// request up in two or three passes). A record added twice for the same key: the last one counts.
public struct ClientRecords: Sendable {
    private struct Connection: Hashable, Sendable {
        var client: Endpoint
        var server: Endpoint
        func hash(into hasher: inout Hasher) { hasher.combine(client.fingerprint &* 0x9E37_79B9_7F4A_7C15 ^ server.fingerprint) }
    }
    private struct Table: Sendable {
        var offsets: [UInt32] = []
        var send: [Int64] = []
        var receive: [Int64] = []
        var sorted = true
    }
    private var index: [Connection: Int] = [:]
    private var tables: [Table] = []
    public private(set) var count = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    /// Adds the records of one `client-requests` block.
    public mutating func add(_ c: ClientRequests) {
        guard let client = Endpoint(parsing: c.client), let server = Endpoint(parsing: c.server) else { return }
        for i in c.requestOffsets.indices where i < c.sendNs.count && i < c.receiveNs.count {
            add(ClientKey(client: client, server: server, offset: UInt32(truncatingIfNeeded: c.requestOffsets[i])),
                sendNs: c.sendNs[i], receiveNs: c.receiveNs[i])
        }
    }

    public mutating func add(_ key: ClientKey, sendNs: Int64, receiveNs: Int64) {
        let c = Connection(client: key.client, server: key.server)
        let t: Int
        if let known = index[c] {
            t = known
        } else {
            t = tables.count
            index[c] = t
            tables.append(Table())
        }
        if let last = tables[t].offsets.last, key.offset <= last { tables[t].sorted = false }
        tables[t].offsets.append(key.offset)
        tables[t].send.append(sendNs)
        tables[t].receive.append(receiveNs)
        count += 1
    }

    /// Sorts what came out of order (the load generator writes in order; a damaged or merged file
    /// may not) and keeps the last of equal offsets. Lookups need it first.
    public mutating func prepare() {
        for t in tables.indices where !tables[t].sorted {
            let table = tables[t]
            // Stable by offset, then the last of each offset wins (as the dictionary's did).
            let order = table.offsets.indices.sorted { (table.offsets[$0], $0) < (table.offsets[$1], $1) }
            var out = Table()
            for k in order {
                if let last = out.offsets.last, last == table.offsets[k] {
                    out.send[out.send.count - 1] = table.send[k]
                    out.receive[out.receive.count - 1] = table.receive[k]
                } else {
                    out.offsets.append(table.offsets[k])
                    out.send.append(table.send[k])
                    out.receive.append(table.receive[k])
                }
            }
            tables[t] = out
        }
    }

    /// The send and receive times of the request at `key`; `prepare()` must have run.
    public func lookup(_ key: ClientKey) -> (sendNs: Int64, receiveNs: Int64)? {
        guard let t = index[Connection(client: key.client, server: key.server)] else { return nil }
        let offsets = tables[t].offsets
        var lo = 0, hi = offsets.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if offsets[mid] < key.offset { lo = mid + 1 } else { hi = mid }
        }
        guard lo < offsets.count, offsets[lo] == key.offset else { return nil }
        return (tables[t].send[lo], tables[t].receive[lo])
    }
}

/// A request as the load generator knows it: its connection and where it starts in the stream.
public struct ClientKey: Hashable, Sendable {
    public var client: Endpoint
    public var server: Endpoint
    public var offset: UInt32

    public func hash(into hasher: inout Hasher) {
        hasher.combine(client.fingerprint &* 0x9E37_79B9_7F4A_7C15 ^ server.fingerprint ^ UInt64(offset))
    }
}

/// Computes segments and the verdict from joined requests.
public enum Attribution {
    /// Position of a role on the path from the client (0) to the server.
    static func rank(_ role: String) -> Int {
        switch role {
        case "client": 0
        case "bridge", "parent": 1
        case "tap", "macvtap", "veth": 2
        case "host": 3
        default: 1
        }
    }

    /// A role for an interface without one recorded, from its name.
    public static func guessRole(_ interface: String) -> String { VantageRole.guess(interface: interface).rawValue }

    /// Threads the attribution's passes over the rows use: one per CPU, at most two (the rows are
    /// read from the spill; more threads would wait on the same file).
    public static let threadsForPasses = max(1, min(2, onlineCPUs))

    /// `threads`: how many runs the passes over the rows are cut into (the result does not depend
    /// on it; tests compare).
    public static func compute(_ join: RequestJoin, inputs: AttributionInputs, threads: Int = threadsForPasses)
        -> (segments: [SegmentSummary], verdict: Verdict, details: AttributionDetails) {
        join.finish()
        let order = inputs.vantages.indices.sorted {
            (rank(inputs.vantages[$0].role), $0) < (rank(inputs.vantages[$1].role), $1)
        }
        let outer = order.first
        let inner = order.last
        let multi = order.count >= 2
        let tapInterface = inner.flatMap { i -> String? in
            ["tap", "macvtap"].contains(inputs.vantages[i].role) ? inputs.vantages[i].name : nil
        }
        let tapSamples = tapInterface.flatMap { inputs.netlink[$0] }?.sorted { $0.timeNs < $1.timeNs } ?? []
        let haveRedis = !inputs.redisUsecPerCall.isEmpty
        let haveClient = !inputs.client.isEmpty
        var preparing = inputs.client
        preparing.prepare()
        let clientRecords = preparing
        var notes: [String] = []

        // The joined requests are read three times from the join's spill (memory stays flat):
        //  1. each request's path times -> counts, the fastest guest round trip, the tap's plain
        //     forwarding time, the distribution of end-to-end times (for the groups);
        //  2. the commands long enough to make others wait (Redis's timeline);
        //  3. each request's segments -> percentiles and the groups' shares.
        struct Row {
            var e2e: Int64
            var requestHop: Int64?
            var responseHop: Int64?
            var inner: Int64
            var innerIn: Int64
            var innerOut: Int64
            var outerIn: Int64
            var command: UInt16
            var client: Int64? = nil
            /// False for a request the load generator did not record (another client's): it
            /// occupies Redis, so it stays on the server's timeline, but it is not in the split.
            var counted = true
        }
        /// Requests that cannot be placed, by reason (pass 1's count is the one reported).
        struct Unplaced {
            var innerOnly = 0, outerOnly = 0, negative = 0, notFromClient = 0
            mutating func add(_ o: Unplaced) {
                innerOnly += o.innerOnly
                outerOnly += o.outerOnly
                negative += o.negative
                notFromClient += o.notFromClient
            }
        }
        /// A request's times along the path; nil when it cannot be placed (counted in `unplaced`).
        func makeRow(_ r: JoinedRow, _ unplaced: inout Unplaced) -> Row? {
            guard let outer, let inner else { return nil }
            let o = r.times(vantage: outer)
            guard let i = r.times(vantage: inner) else {
                if o != nil { unplaced.outerOnly += 1 }
                return nil
            }
            let innerLatency = i.responseFirst - i.requestLast
            guard innerLatency >= 0 else {
                unplaced.negative += 1
                return nil
            }
            var row: Row
            if multi {
                guard let o else {
                    unplaced.innerOnly += 1
                    return nil
                }
                let hop = i.requestLast - o.requestLast
                let back = o.responseFirst - i.responseFirst
                guard hop >= 0, back >= 0 else {
                    unplaced.negative += 1
                    return nil
                }
                row = Row(e2e: o.responseFirst - o.requestLast, requestHop: hop, responseHop: back == 0 ? nil : back,
                          inner: innerLatency, innerIn: i.requestLast, innerOut: i.responseFirst,
                          outerIn: o.requestLast, command: r.command)
            } else {
                row = Row(e2e: innerLatency, requestHop: nil, responseHop: nil, inner: innerLatency,
                          innerIn: i.requestLast, innerOut: i.responseFirst, outerIn: i.requestLast, command: r.command)
            }
            // The client's own stamps extend the path: send -> outermost capture -> receive. With
            // client records, only requests the client recorded are attributed.
            if haveClient {
                let outerIn = multi ? row.outerIn : i.requestLast
                let outerOut = row.innerOut + (row.responseHop ?? 0)
                // The client's stamps come from the trace as written: arithmetic on them must not
                // trap (a damaged record can hold any 64-bit value).
                if let offset = r.offset,
                   let c = clientRecords.lookup(ClientKey(client: r.client, server: r.server, offset: offset)),
                   outerIn >= c.sendNs, c.receiveNs >= outerOut,
                   case let (before, o1) = outerIn.subtractingReportingOverflow(c.sendNs), !o1,
                   case let (after, o2) = c.receiveNs.subtractingReportingOverflow(outerOut), !o2,
                   case let (client, o3) = before.addingReportingOverflow(after), !o3,
                   case let (e2e, o4) = c.receiveNs.subtractingReportingOverflow(c.sendNs), !o4 {
                    row.client = client
                    row.e2e = e2e
                } else {
                    unplaced.notFromClient += 1
                    row.counted = false
                }
            }
            return row
        }
        // INFO's usec_per_call comes from the trace or a file: keep it a sane Int64 whatever it says.
        let execById = join.commandNames.map { name -> Int64 in
            let ns = (inputs.redisUsecPerCall[name] ?? 0) * 1000
            return ns.isFinite ? Int64(min(max(ns, 0), Double(Int64(1) << 62))) : 0
        }
        func exec(_ id: UInt16) -> Int64 { Int(id) < execById.count ? execById[Int(id)] : 0 }

        // Tap queueing: the request hop beyond plain forwarding, where the tap's qdisc shows a
        // queue (backlog, overlimits or drops) around that moment.
        let tapResolved = multi && !tapSamples.isEmpty
        if multi && tapSamples.isEmpty {
            notes.append("no netlink samples for the tap: its queueing is included in the bridge hop")
        }
        // Per sample: whether the queue showed between it and the next one (decided once here,
        // not per request: a request asks for the interval around its time).
        let tapTimes = tapSamples.map(\.timeNs)
        let tapQueued = tapSamples.indices.map { k -> Bool in
            let a = tapSamples[k]
            let b = k + 1 < tapSamples.count ? tapSamples[k + 1] : a
            guard let qa = a.qdisc, let qb = b.qdisc else { return false }
            return qa.backlog > 0 || qb.backlog > 0 || qb.overlimits > qa.overlimits || qb.drops > qa.drops
        }
        // The sample at or before t (the first when none is): rows come about in time order, so
        // the search walks from where the last one ended (`cursor`, one per run of rows; a binary
        // search per request was a fifth of the attribution's time).
        func queued(at t: Int64, _ cursor: inout Int) -> Bool {
            guard tapResolved else { return false }
            var k = cursor
            if tapTimes[k] <= t {
                while k + 1 < tapTimes.count && tapTimes[k + 1] <= t { k += 1 }
            } else {
                while k > 0 && tapTimes[k] > t { k -= 1 }
            }
            cursor = k
            return tapQueued[k]
        }

        // Each pass reads the rows in consecutive runs, one thread per run when there are CPUs
        // and rows enough, and adds up the runs' results in run order: counts, minimums and
        // histograms do not depend on the split, and the groups' sums are of whole nanoseconds
        // (exact in a Double below 2^53 ns, 104 days), so the result is the same on any machine.
        let runs = join.rowRuns(threads)

        // Pass 1.
        struct Pass1 {
            var unplaced = Unplaced()
            var placed = 0, n = 0
            var callsById: [Int]
            var fastestById: [Int64]
            var longest: Int64 = 0
            var minCalmHop = Int64.max, minHop = Int64.max
            var anyResponseHop = false
            var e2e = LatencyRecorder()
        }
        let firstPass = eachInParallel(runs) { _, run -> Pass1 in
            var p = Pass1(callsById: [Int](repeating: 0, count: execById.count + 1),
                          fastestById: [Int64](repeating: .max, count: execById.count + 1))
            var cursor = 0
            join.forEachRow(in: run) { r in
                guard let row = makeRow(r, &p.unplaced) else { return }
                p.placed += 1
                if haveRedis {
                    let id = min(Int(row.command), execById.count)
                    let e = exec(row.command)
                    p.callsById[id] += 1
                    p.fastestById[id] = min(p.fastestById[id], row.inner - e)
                    p.longest = max(p.longest, e)
                }
                guard row.counted else { return }
                p.n += 1
                p.e2e.record(row.e2e)
                if row.responseHop != nil { p.anyResponseHop = true }
                if tapResolved, let hop = row.requestHop {
                    p.minHop = min(p.minHop, hop)
                    if !queued(at: row.outerIn, &cursor) { p.minCalmHop = min(p.minCalmHop, hop) }
                }
            }
            return p
        }
        var unplaced = Unplaced()
        var placed = 0, n = 0
        var callsById = [Int](repeating: 0, count: execById.count + 1)
        var fastestById = [Int64](repeating: .max, count: execById.count + 1)
        var longest: Int64 = 0
        var minCalmHop = Int64.max, minHop = Int64.max
        var anyResponseHop = false
        var e2eRecorder = LatencyRecorder()
        /// Rows placed before each run: the ordinal of a run's first placed row.
        var ordinalBase: [Int] = []
        for p in firstPass {
            ordinalBase.append(placed)
            unplaced.add(p.unplaced)
            placed += p.placed
            n += p.n
            for id in callsById.indices {
                callsById[id] += p.callsById[id]
                fastestById[id] = min(fastestById[id], p.fastestById[id])
            }
            longest = max(longest, p.longest)
            minCalmHop = min(minCalmHop, p.minCalmHop)
            minHop = min(minHop, p.minHop)
            anyResponseHop = anyResponseHop || p.anyResponseHop
            e2eRecorder.add(p.e2e)
        }
        let innerOnly = unplaced.innerOnly, outerOnly = unplaced.outerOnly
        let negative = unplaced.negative, notFromClient = unplaced.notFromClient
        let forwarding = minCalmHop != .max ? minCalmHop : minHop != .max ? minHop : 0

        // Redis: execution (INFO) + waiting behind other commands. Redis runs one command at a
        // time, in order; the replies leave the guest in that order. Rebuild its timeline: each
        // command ends executing when its reply leaves, less the guest's fastest way out, and
        // starts its execution time (INFO) before; a request reaches Redis after the guest's
        // fastest way in. Its wait behind others is the time Redis spent on other commands
        // between its arrival and the start of its own execution. Only commands that run longer
        // than the guest's fastest round trip are counted: a wait behind shorter ones cannot be
        // told from queueing in the guest stack (it stays there, and a note says so).
        var fastest: Int64 = 0
        var long: [(start: Int64, end: Int64, row: Int)] = []
        let timeline = haveRedis && placed > 0
        if timeline {
            // The fastest round trip through the guest stack, in + out, split evenly. Taken over
            // the commands of ordinary length (execution at most the median's): a long command's
            // INFO time is a mean over calls of varying length, so its own round trip is unknown.
            let byExec = callsById.indices.filter { callsById[$0] > 0 }.sorted { exec(UInt16(truncatingIfNeeded: $0)) < exec(UInt16(truncatingIfNeeded: $1)) }
            var seen = 0
            var ordinary: Int64 = 0
            for id in byExec {
                seen += callsById[id]
                if seen > placed / 2 { ordinary = exec(UInt16(truncatingIfNeeded: id)); break }
            }
            fastest = max(0, byExec.filter { exec(UInt16(truncatingIfNeeded: $0)) <= ordinary }.map { fastestById[$0] }.min() ?? 0)
            // Pass 2: only commands longer than that can make others wait (few, as a rule: this
            // list is the one thing here that grows with the trace, by 24 bytes per such command).
            let half = fastest / 2
            let threshold = fastest
            for part in eachInParallel(runs, { index, run -> [(start: Int64, end: Int64, row: Int)] in
                var found: [(start: Int64, end: Int64, row: Int)] = []
                var unused = Unplaced()
                var k = ordinalBase[index]
                join.forEachRow(in: run) { r in
                    guard let row = makeRow(r, &unused) else { return }
                    let e = exec(row.command)
                    if e > threshold {
                        let end = row.innerOut - half
                        found.append((end - e, end, k))
                    }
                    k += 1
                }
                return found
            }) {
                long += part
            }
            long.sort { $0.start < $1.start }
            notes.append("waiting behind commands shorter than the guest's fastest round trip (\(TextReport.fmt(Double(fastest) / 1000, 1)) us here) cannot be told from queueing in the guest stack and is counted there")
        } else {
            notes.append("no Redis INFO in the trace: Redis's own time cannot be told from the guest stack (capture with --redis, or give --redis-info FILE)")
        }
        func redisTime(_ row: Row, ordinal k: Int) -> Int64 {
            guard timeline else { return 0 }
            let half = fastest / 2
            let e = exec(row.command)
            let start = row.innerOut - half - e
            let arrival = row.innerIn + half
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
            return min(row.inner, LatencyRecorder.saturatingSum(e, min(wait, max(0, start - arrival))))
        }

        // Groups: the typical request (middle half of end-to-end times) and the tail (slowest 1 %),
        // by value: the bounds come from pass 1's distribution (HdrHistogram buckets, 0.1 %).
        let bounds: (lo: Int64, hi: Int64, tail: Int64)? = e2eRecorder.histogram.map { h in
            let q = { (p: Double) -> UInt64 in h.valueAtPercentile(p) }
            return (Int64(h.lowestEquivalentForValue(q(25))), Int64(h.highestEquivalentForValue(q(75))),
                    Int64(h.lowestEquivalentForValue(q(99))))
        }
        struct Group {
            // Sums in Double: exact enough for means, and no overflow on decades-long times.
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
        // Pass 3: the segments of every request in the split.
        struct Pass3 {
            var typical = Group(), tail = Group()
            var recorders = [LatencyRecorder](repeating: LatencyRecorder(), count: SegmentName.allCases.count)
        }
        let lastPass = eachInParallel(runs) { index, run -> Pass3 in
            var p = Pass3()
            var unused = Unplaced()
            var cursor = 0
            var ordinal = ordinalBase[index]
            var values = [Int64](repeating: 0, count: SegmentName.allCases.count) // one buffer, not one per request
            join.forEachRow(in: run) { r in
                guard let row = makeRow(r, &unused) else { return }
                let k = ordinal
                ordinal += 1
                guard row.counted else { return }
                let redis = redisTime(row, ordinal: k)
                let tap = queued(at: row.outerIn, &cursor) ? max(0, (row.requestHop ?? 0) - forwarding) : 0
                values[SegmentName.client.index] = row.client ?? 0
                values[SegmentName.bridge.index] = LatencyRecorder.saturatingSum((row.requestHop ?? 0) - tap, row.responseHop ?? 0)
                values[SegmentName.tap.index] = tap
                values[SegmentName.guestStack.index] = row.inner - redis
                values[SegmentName.redis.index] = redis
                for s in values.indices { p.recorders[s].record(values[s]) }
                if let bounds {
                    if row.e2e >= bounds.lo && row.e2e <= bounds.hi { p.typical.add(row.e2e, values) }
                    if row.e2e >= bounds.tail { p.tail.add(row.e2e, values) }
                }
            }
            return p
        }
        var typicalGroup = Group(), tailGroup = Group()
        var recorders = [LatencyRecorder](repeating: LatencyRecorder(), count: SegmentName.allCases.count)
        for p in lastPass {
            typicalGroup.add(p.typical)
            tailGroup.add(p.tail)
            for s in recorders.indices { recorders[s].add(p.recorders[s]) }
        }
        func shares(_ group: Group) -> (e2eMean: Double?, shares: [SegmentName: Double]) {
            guard group.count > 0 else { return (nil, [:]) }
            let e2e = group.e2e / Double(group.count)
            var out: [SegmentName: Double] = [:]
            for s in SegmentName.allCases where s != .client || haveClient {
                out[s] = e2e > 0 ? group.sums[s.index] / Double(group.count) / e2e : 0
            }
            return (e2e, out)
        }
        let typicalShares = shares(typicalGroup)
        let tailShares = shares(tailGroup)

        func resolved(_ s: SegmentName) -> Bool {
            switch s {
            case .client: haveClient && n > 0
            case .bridge: multi
            case .tap: tapResolved
            case .guestStack: n > 0
            case .redis: haveRedis && n > 0
            }
        }
        let innerName = inner.map { inputs.vantages[$0].name } ?? "-"
        let outerName = outer.map { inputs.vantages[$0].name } ?? "-"
        func note(_ s: SegmentName) -> String {
            switch s {
            case .client:
                return haveClient ? "the load generator's send(2) -> \(outerName), and \(outerName) -> its recv(2) of the whole reply (client kernel stack and process)"
                    : "needs the load generator's own timestamps (netprobe capture -- netprobe load ...): not in this trace"
            case .bridge:
                return multi ? "\(outerName) -> \(innerName) on the request path\(anyResponseHop ? " and, where stamps differ, on the reply path" : "; the reply path is unresolved (the kernel stamps a received frame once: both vantage points show the same time)")"
                    : "needs captures on both sides of the virtual network (e.g. bridge and tap): this trace has one vantage point"
            case .tap:
                return tapResolved ? "queueing in \(tapInterface!)'s qdisc, from netlink backlog/overlimits/drops"
                    : multi ? "no netlink samples for the tap: included in bridge" : "needs two vantage points and netlink samples"
            case .guestStack:
                return multi ? "at \(innerName): request in -> reply out, less Redis's time (hypervisor, virtio, guest kernel; without vhost-net also the tun queue)"
                    : "at \(innerName): everything between request and reply, less Redis's time"
            case .redis:
                return haveRedis ? "execution (INFO commandstats\(inputs.redisInfoSource.map { ", \($0)" } ?? "")) + waiting behind other commands on the single-threaded server"
                    : "needs Redis INFO commandstats (capture with --redis, or --redis-info FILE)"
            }
        }
        let segments = SegmentName.allCases.map { s -> SegmentSummary in
            let ok = resolved(s)
            let r = recorders[s.index]
            return SegmentSummary(
                name: s.rawValue,
                p50Us: ok ? r.valueNs(atPercentile: 50).map { Double($0) / 1000 } : nil,
                p99Us: ok ? r.valueNs(atPercentile: 99).map { Double($0) / 1000 } : nil,
                meanUs: ok ? r.meanNs.map { $0 / 1000 } : nil,
                share: ok ? typicalShares.shares[s] : nil, tailShare: ok ? tailShares.shares[s] : nil,
                resolved: ok, note: note(s))
        }

        // The verdict.
        func bottleneck(_ shares: [SegmentName: Double]) -> (SegmentName, Double)? {
            shares.filter { resolved($0.key) }.max { $0.value < $1.value }.map { ($0.key, $0.value) }
        }
        let medianTop = bottleneck(typicalShares.shares)
        let tailTop = bottleneck(tailShares.shares)
        let network: Set<SegmentName> = [.bridge, .tap]
        var networkIsBottleneck: Bool?
        var answer: String
        var evidence: [String] = []
        func pct(_ x: Double?) -> String { x.map { TextReport.fmt($0 * 100, 1) + " %" } ?? "-" }
        func us(_ x: Double?) -> String { x.map { TextReport.fmt($0, $0 < 10 ? 2 : 0) + " us" } ?? "-" }
        if n == 0 {
            answer = "inconclusive: no request was seen at \(multi ? "both the outer and the inner vantage point" : "any vantage point")"
        } else if !multi {
            answer = "inconclusive: one vantage point (\(innerName)) cannot separate the virtual network from the guest; capture on the bridge and the tap"
        } else if let medianTop {
            networkIsBottleneck = network.contains(medianTop.0)
            let networkShare = (typicalShares.shares[.bridge] ?? 0) + (tapResolved ? typicalShares.shares[.tap] ?? 0 : 0)
            answer = networkIsBottleneck!
                ? "yes: the virtual network (bridge + tap) takes \(pct(networkShare)) of the typical request's time; \(medianTop.0.rawValue) dominates"
                : "no: the virtual network (bridge + tap) takes \(pct(networkShare)) of the typical request's time; \(medianTop.0.rawValue) takes \(pct(medianTop.1))"
        } else {
            answer = "inconclusive: no segment could be resolved"
        }
        if n > 0 {
            evidence.append("\(n) requests seen at \(multi ? "\(outerName) and \(innerName)" : innerName); typical end-to-end \(us(typicalShares.e2eMean.map { $0 / 1000 })) (mean of the middle half), slowest 1 % \(us(tailShares.e2eMean.map { $0 / 1000 }))")
            for s in segments where s.resolved {
                evidence.append("\(s.name): p50 \(us(s.p50Us)), p99 \(us(s.p99Us)); \(pct(s.share)) of the typical request, \(pct(s.tailShare)) of the slowest 1 %")
            }
        }
        if let t = tapInterface, let first = inputs.netlink[t]?.first, let last = inputs.netlink[t]?.last,
           let a = first.link, let b = last.link {
            let backlog = inputs.netlink[t]!.compactMap { $0.qdisc?.backlog }.max()
            evidence.append("\(t) during the run: tx_dropped +\(b.txDropped &- a.txDropped) (the tun queue overflowing: a guest too slow to read), rx_dropped +\(b.rxDropped &- a.rxDropped), qdisc \(last.qdisc?.kind ?? "none") drops +\((last.qdisc?.drops ?? 0) &- (first.qdisc?.drops ?? 0)), overlimits +\((last.qdisc?.overlimits ?? 0) &- (first.qdisc?.overlimits ?? 0)), peak backlog \(backlog.map { "\($0) B" } ?? "-")")
        }
        if haveRedis {
            let top = inputs.redisUsecPerCall.sorted { $0.key < $1.key }.prefix(6).map { "\($0.key) \(TextReport.fmt($0.value, 2)) us" }
            evidence.append("Redis executes (INFO commandstats, per call): " + top.joined(separator: ", "))
        }
        if let tailTop, let medianTop, tailTop.0 != medianTop.0 {
            evidence.append("the slowest 1 % are dominated by \(tailTop.0.rawValue) (\(pct(tailTop.1))), unlike the typical request")
        }
        if haveClient && notFromClient > 0 {
            notes.append("\(notFromClient) requests seen on the wire have no matching record of the load generator (other clients, or connections whose SYN was not captured): they are not in the split, but the time Redis spent on them is on its timeline (others wait behind them)")
        }
        if negative > 0 { notes.append("\(negative) requests had a negative hop (time stamps out of order) and were left out") }
        if join.rowsClosedEarly > 0 {
            notes.append("the request rate was too high to hold \(TextReport.fmt(Double(join.windowNs) / 1e9, 1)) s of requests open for the join (at most \(join.maximumOpenRows)): \(join.rowsClosedEarly) were joined with what arrived before then; a later sighting of one of them counts as seen at one vantage point only")
        }
        if multi && innerOnly + outerOnly > 0 {
            notes.append("\(innerOnly + outerOnly) requests were paired at only one of \(outerName) and \(innerName) (capture loss at the other) and are not in the split")
        }
        let verdict = Verdict(
            question: "Is the virtual network (bridge + tap) the bottleneck?",
            networkIsBottleneck: networkIsBottleneck, answer: answer,
            median: VerdictPart(bottleneck: medianTop?.0.rawValue, share: medianTop?.1,
                                endToEndMeanUs: typicalShares.e2eMean.map { $0 / 1000 }, requests: typicalGroup.count),
            tail: VerdictPart(bottleneck: tailTop?.0.rawValue, share: tailTop?.1,
                              endToEndMeanUs: tailShares.e2eMean.map { $0 / 1000 }, requests: tailGroup.count),
            evidence: evidence)
        let details = AttributionDetails(
            path: order.map { "\(inputs.vantages[$0].name) (\(inputs.vantages[$0].role))" }, requestsJoined: n,
            innerOnly: innerOnly, outerOnly: outerOnly, negativeHops: negative,
            endToEndDefinition: haveClient ? "at the client: just before send(2) of the request -> just after recv(2) of the reply's last byte"
                : multi ? "at \(outerName): request's last byte -> response's first byte" : "at \(innerName): request's last byte -> response's first byte",
            notes: notes)
        return (segments, verdict, details)
    }
}
