import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

/// Attribution on synthetic requests whose true split is known.
@Suite("attribution and verdict")
struct AttributionTests {
    static let client = Endpoint(address: IPAddress(ipv4: 0x0A00_0001), port: 40000)
    static let server = Endpoint(address: IPAddress(ipv4: 0x0A00_0002), port: 6379)

    /// A request seen at the bridge (vantage 0) and the tap (vantage 1).
    /// bridgeHop: bridge -> tap on the way in; inner: tap in -> tap out; the way back is stamped once.
    static func add(_ join: RequestJoin, seq: UInt32, at t: Int64, bridgeHop: Int64, inner: Int64, command: String = "GET") {
        let tapIn = t + bridgeHop
        let out = tapIn + inner
        for (v, reqLast) in [(0, t), (1, tapIn)] {
            join.add(RequestTiming(vantage: v, connection: 0, client: client, server: server, command: command,
                                   requestSequence: seq, requestFirstByteNs: reqLast, requestLastByteNs: reqLast,
                                   responseFirstByteNs: out, responseLastByteNs: out, isError: false))
        }
    }

    static func sample(_ t: Int64, backlog: UInt64, overlimits: UInt64) -> NetlinkSample {
        NetlinkSample(timeNs: t, interface: "vnet0",
                      link: LinkCounters(rxPackets: 0, rxBytes: 0, rxErrors: 0, rxDropped: 0, txPackets: 0, txBytes: 0, txErrors: 0, txDropped: 0),
                      qdisc: QdiscCounters(kind: "tbf", backlog: backlog, qlen: backlog > 0 ? 1 : 0, drops: 0, overlimits: overlimits, requeues: 0))
    }

    static let path: [(name: String, role: VantageRole)] = [("virbr0", .bridge), ("vnet0", .tap)]

    @Test("a guest-dominated run: the network is not the bottleneck; segments add up")
    func guestDominates() {
        let join = RequestJoin()
        for i in 0..<1000 { Self.add(join, seq: UInt32(i * 100), at: Int64(i) * 1_000_000, bridgeHop: 1_000, inner: 500_000) }
        var inputs = AttributionInputs(vantages: Self.path)
        inputs.redisUsecPerCall = ["GET": 5]
        let (segments, verdict, details) = AttributionText.describe(Attribution.compute(join, inputs: inputs))
        #expect(details.requestsJoined == 1000)
        #expect(verdict.networkIsBottleneck == false)
        #expect(verdict.median.bottleneck == "guest-stack")
        let by = Dictionary(uniqueKeysWithValues: segments.map { ($0.name, $0) })
        #expect(by["bridge"]?.p50Us == 1)
        #expect(by["redis"]?.meanUs == 5)
        #expect(by["redis"]?.p50Us == nil) // a mean per command is never shown as a percentile
        #expect(abs((by["guest-stack"]?.p50Us ?? 0) - 495) < 0.5)
        let total = segments.compactMap(\.share).reduce(0, +)
        #expect(abs(total - 1) < 1e-9)
        #expect(by["tap"]?.resolved == false) // no netlink samples
        #expect(by["client"]?.resolved == false)
    }

    @Test("queueing in the tap's qdisc is told from bridge forwarding with netlink samples")
    func tapQueue() {
        let join = RequestJoin()
        // First half calm (hop 1 us), second half behind a shaped tap (hop 3 ms).
        for i in 0..<1000 {
            let queued = i >= 500
            Self.add(join, seq: UInt32(i * 100), at: Int64(i) * 10_000_000, bridgeHop: queued ? 3_001_000 : 1_000, inner: 100_000)
        }
        var inputs = AttributionInputs(vantages: Self.path)
        inputs.netlink["vnet0"] = (0...100).map { k in
            Self.sample(Int64(k) * 100_000_000, backlog: k >= 50 ? 3000 : 0, overlimits: k >= 50 ? UInt64(k) : 0)
        }
        let (segments, verdict, _) = AttributionText.describe(Attribution.compute(join, inputs: inputs))
        let by = Dictionary(uniqueKeysWithValues: segments.map { ($0.name, $0) })
        #expect(by["tap"]?.resolved == true)
        // The slowest requests are the queued ones: 3 ms of tap against 0.1 ms of guest.
        #expect(verdict.tail.bottleneck == "tap")
        #expect(abs((by["tap"]?.p99Us ?? 0) - 3000) < 10)
        #expect(by["bridge"]?.p99Us == 1) // forwarding itself stays at 1 us
        #expect(verdict.networkIsBottleneck == true)
    }

    @Test("waiting behind a slow command on the single-threaded server counts as redis")
    func slowCommand() {
        let join = RequestJoin()
        // A 10 ms command, and a GET that arrives 1 ms later and is answered when it is done.
        Self.add(join, seq: 0, at: 0, bridgeHop: 1_000, inner: 10_050_000, command: "DEBUG")
        Self.add(join, seq: 1000, at: 1_000_000, bridgeHop: 1_000, inner: 9_100_000, command: "GET")
        var inputs = AttributionInputs(vantages: Self.path)
        inputs.redisUsecPerCall = ["DEBUG": 10_000, "GET": 5]
        let (segments, _, _) = AttributionText.describe(Attribution.compute(join, inputs: inputs))
        let redis = segments.first { $0.name == "redis" }!
        // DEBUG: its own 10 ms. GET: reached Redis at 1.001 ms + half the guest's fastest round
        // trip (50 us), and waited until DEBUG finished (10.026 ms): 9 ms, plus its own 5 us.
        #expect(abs((redis.meanUs ?? 0) - (10_000 + 9_000 + 5) / 2) < 1)
    }

    @Test("one vantage point: the verdict is inconclusive and says why")
    func singleVantage() {
        let join = RequestJoin()
        for i in 0..<10 {
            join.add(RequestTiming(vantage: 0, connection: 0, client: Self.client, server: Self.server, command: "GET",
                                   requestSequence: UInt32(i), requestFirstByteNs: 0, requestLastByteNs: Int64(i) * 1000,
                                   responseFirstByteNs: Int64(i) * 1000 + 50_000, responseLastByteNs: Int64(i) * 1000 + 50_000, isError: false))
        }
        let (segments, verdict, _) = AttributionText.describe(Attribution.compute(join, inputs: AttributionInputs(vantages: [("if0", .other)])))
        #expect(verdict.networkIsBottleneck == nil)
        #expect(verdict.answer.hasPrefix("inconclusive"))
        #expect(segments.first { $0.name == "bridge" }?.resolved == false)
        #expect(segments.first { $0.name == "bridge" }?.note.contains("both sides") == true)
    }

    @Test("equal stamps on the reply path are unresolved, never counted as a measured 0")
    func unresolvedReplyHop() {
        let join = RequestJoin()
        Self.add(join, seq: 0, at: 0, bridgeHop: 2_000, inner: 100_000)
        let (segments, _, _) = AttributionText.describe(Attribution.compute(join, inputs: AttributionInputs(vantages: Self.path)))
        #expect(segments.first { $0.name == "bridge" }?.note.contains("reply path is unresolved") == true)
    }

    @Test("passes cut into runs on several threads give exactly the one-thread result")
    func runsMatchOneThread() {
        var numbers = SeededNumbers(seed: 12345)
        func next(_ n: Int) -> Int { numbers.next(n) }
        // Rows cut every 700 requests; requests of several kinds: long commands that make others
        // wait, some missed at the tap, some with a negative hop, some without a client record.
        var timings: [RequestTiming] = []
        var client = ClientRecords()
        for i in 0..<12_000 {
            let t = Int64(i) * 200_000
            let command = next(100) == 0 ? "DEBUG" : next(2) == 0 ? "GET" : "SET"
            let hop = Int64(next(100) == 0 ? -500 : 1_000 + next(30_000))
            let inner = Int64(command == "DEBUG" ? 2_000_000 : 40_000 + next(200_000))
            let seq = UInt32(1001 + i * 40)
            let out = t + hop + inner
            let back = out + Int64(next(3) == 0 ? 0 : 500 + next(2_000))
            for (v, reqLast, respFirst) in [(0, t, back), (1, t + hop, out)] where v == 0 || next(80) != 0 {
                timings.append(RequestTiming(vantage: v, connection: 0, client: Self.client, server: Self.server, command: command,
                                             requestSequence: seq, requestFirstByteNs: reqLast, requestLastByteNs: reqLast,
                                             responseFirstByteNs: respFirst, responseLastByteNs: respFirst + 100, isError: false,
                                             requestOffset: seq &- 1001))
            }
            if next(50) != 0 {
                client.add(ClientKey(client: Self.client, server: Self.server, offset: seq &- 1001),
                           sendNs: t - Int64(5_000 + next(5_000)), receiveNs: back + 100 + Int64(5_000 + next(5_000)))
            }
        }
        var inputs = AttributionInputs(vantages: Self.path)
        inputs.redisUsecPerCall = ["GET": 3, "SET": 4, "DEBUG": 1_500]
        inputs.netlink["vnet0"] = (0...600).map { k in
            Self.sample(Int64(k) * 4_000_000, backlog: k % 7 == 0 ? 1500 : 0, overlimits: UInt64(k / 5))
        }
        inputs.client = client
        func run(threads: Int) -> ([SegmentSummary], Verdict, AttributionDetails, Int, [SegmentMeasure]) {
            let join = RequestJoin(checkpointEvery: 700)
            for t in timings { join.add(t) }
            join.finish()
            let runs = join.rowRuns(threads).count
            let result = Attribution.compute(join, inputs: inputs, threads: threads)
            let (segments, verdict, details) = AttributionText.describe(result)
            return (segments, verdict, details, runs, result.segments)
        }
        let one = run(threads: 1)
        let four = run(threads: 4)
        #expect(one.3 == 1)
        #expect(four.3 == 4)
        #expect(four.0 == one.0)
        #expect(four.1 == one.1)
        #expect(four.2 == one.2)
        #expect(four.4 == one.4)
        // The case is not trivial: every kind of request was there.
        #expect(one.2.requestsJoined > 10_000)
        #expect(one.2.innerOnly + one.2.outerOnly > 50)
        #expect(one.2.negativeHops > 50)
        #expect(one.4.first { $0.segment == .redis }?.p99Ns ?? 0 > 100_000) // waits behind DEBUG
        #expect(one.0.first { $0.name == "tap" }?.resolved == true)
        #expect(one.0.first { $0.name == "client" }?.resolved == true)
    }
}
