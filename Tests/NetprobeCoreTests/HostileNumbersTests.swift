import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

/// Numbers a damaged or hostile trace can carry: never a trap, always a bounded answer.
@Suite("hostile numbers")
struct HostileNumbersTests {
    @Test("latency sums stop at Int64.max instead of trapping (the fuzzer's find)")
    func latencySumSaturates() {
        var r = LatencyRecorder()
        for _ in 0..<4 { r.record(1 << 62) }
        #expect(r.count == 4)
        #expect(r.sumNs == .max)
        var other = LatencyRecorder()
        other.record(1 << 62)
        r.add(other)
        #expect(r.sumNs == .max)
        #expect(r.maxNs == 1 << 62)
    }

    @Test("INFO usec_per_call of 1e300 or NaN, and client stamps at Int64's ends, give an attribution, not a trap")
    func extremeInputs() {
        let client = Endpoint(address: IPAddress(ipv4: 0x0A00_0001), port: 40000)
        let server = Endpoint(address: IPAddress(ipv4: 0x0A00_0002), port: 6379)
        let join = RequestJoin()
        for i in 0..<100 {
            let t = Int64(i) * 1_000_000
            for v in 0..<2 {
                join.add(RequestTiming(vantage: v, connection: 0, client: client, server: server, command: i % 2 == 0 ? "GET" : "EVAL",
                                       requestSequence: UInt32(1001 + i * 40), requestFirstByteNs: t + Int64(v) * 1000,
                                       requestLastByteNs: t + Int64(v) * 1000, responseFirstByteNs: t + 500_000,
                                       responseLastByteNs: t + 500_000, isError: false, requestOffset: UInt32(i * 40)))
            }
        }
        var inputs = AttributionInputs(vantages: [("virbr0", .bridge), ("vnet0", .tap)])
        inputs.redisUsecPerCall = ["GET": 1e300, "EVAL": .nan]
        inputs.addClientRequests(ClientRequests(
            client: "\(client)", server: "\(server)", requestOffsets: (0..<100).map { UInt64($0 * 40) },
            commands: Array(repeating: "GET", count: 100),
            sendNs: (0..<100).map { $0 % 2 == 0 ? Int64.min : -1 }, receiveNs: (0..<100).map { $0 % 2 == 0 ? Int64.max : 1 << 62 }))
        let (segments, verdict, details) = AttributionText.describe(Attribution.compute(join, inputs: inputs))
        #expect(segments.count == SegmentName.allCases.count)
        #expect(details.requestsJoined <= 100)
        _ = verdict
    }
}
