import Foundation
import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

/// Issue 16: every sentence a report prints is backed by its own data (segments named by what is
/// on the path, means called means, caveats next to a verdict on lossy data).
@Suite("reports say what their data backs")
struct ReportWordsTests {
    static func join(requests: Int = 400, vantages: Int = 2) -> RequestJoin {
        let join = RequestJoin()
        for i in 0..<requests {
            let t = Int64(i) * 1_000_000
            let hop: Int64 = vantages == 2 ? 2_000 : 0
            let inner = Int64(100_000 + (i % 50) * 1_000)
            for v in 0..<vantages {
                let reqLast = v == 0 ? t : t + hop
                join.add(RequestTiming(vantage: v, connection: 0, client: AttributionTests.client, server: AttributionTests.server,
                                       command: i % 10 == 0 ? "SET" : "GET", requestSequence: UInt32(i * 100),
                                       requestFirstByteNs: reqLast, requestLastByteNs: reqLast,
                                       responseFirstByteNs: t + hop + inner, responseLastByteNs: t + hop + inner, isError: false))
            }
        }
        return join
    }

    static func words(_ vantages: [(name: String, role: VantageRole)], info: Bool) -> [String] {
        var inputs = AttributionInputs(vantages: vantages)
        if info { inputs.redisUsecPerCall = ["GET": 2, "SET": 3] }
        let (segments, verdict, details) = AttributionText.describe(
            Attribution.compute(join(vantages: vantages.count), inputs: inputs))
        return segments.flatMap { [$0.shownName, $0.note] } + [verdict.question, verdict.answer]
            + verdict.evidence + details.notes + [verdict.median.bottleneckLabel ?? ""]
    }

    @Test("no guest, hypervisor or tap where the path has none (veth, loopback)")
    func noVMWordsWithoutAVM() {
        for (vantages, info) in [([("virbr0", VantageRole.bridge), ("veth0", .veth)], true),
                                 ([("lo", .host)], true), ([("lo", .host)], false)] {
            let text = Self.words(vantages, info: info).joined(separator: "\n")
            for word in ["guest", "hypervisor", "virtio", "tun queue", "capture on the bridge and the tap"] {
                #expect(!text.contains(word), "\(vantages.map { $0.0 }): says '\(word)'")
            }
        }
        let veth = Self.words([("virbr0", .bridge), ("veth0", .veth)], info: true)
        #expect(veth.contains("server-stack"))
        #expect(veth.contains("veth"))
        #expect(veth.contains("Is the virtual network (bridge + veth) the bottleneck?"))
        let host = Self.words([("lo", .host)], info: true).joined(separator: "\n")
        #expect(host.contains("no virtual network on this path"))
    }

    @Test("a VM path keeps its words; one vantage point at a tap gets advice naming that tap")
    func vmWords() {
        let two = Self.words(AttributionTests.path, info: true)
        #expect(two.contains("guest-stack"))
        #expect(two.contains("Is the virtual network (bridge + tap) the bottleneck?"))
        let one = Self.words([("vnet0", .tap)], info: true).joined(separator: "\n")
        #expect(one.contains("capture on vnet0 and on the bridge it is a port of"))
    }

    @Test("without INFO the server segment is called what it is: stack + Redis")
    func withoutInfo() {
        #expect(Self.words(AttributionTests.path, info: false).contains("guest-stack+redis"))
        #expect(Self.words([("virbr0", .bridge), ("veth0", .veth)], info: false).contains("server-stack+redis"))
        #expect(Self.words(AttributionTests.path, info: true).contains("guest-stack"))
    }

    @Test("Redis's segment is a mean per command: no percentiles, and the evidence says mean")
    func redisIsAMean() {
        var inputs = AttributionInputs(vantages: AttributionTests.path)
        inputs.redisUsecPerCall = ["GET": 2, "SET": 30]
        let (segments, verdict, _) = AttributionText.describe(Attribution.compute(Self.join(), inputs: inputs))
        let redis = try! #require(segments.first { $0.name == "redis" })
        #expect(redis.p50Us == nil && redis.p99Us == nil)
        #expect(redis.meanUs != nil)
        let line = try! #require(verdict.evidence.first { $0.hasPrefix("redis:") })
        #expect(line.hasPrefix("redis: mean "))
        #expect(!line.contains("p50"))
    }

    @Test("the end-to-end distribution is in the details, and every group figure is called a mean")
    func endToEndDistribution() throws {
        let (_, verdict, details) = AttributionText.describe(
            Attribution.compute(Self.join(), inputs: AttributionInputs(vantages: AttributionTests.path)))
        let e2e = try #require(details.endToEndUs)
        #expect(e2e.count == 400)
        // At the bridge: 2 us in + 100-149 us at the tap, back stamped once.
        #expect(try #require(e2e.p50) >= 100 && e2e.p50! <= 152)
        #expect(try #require(e2e.p999) >= e2e.p99!)
        let first = try #require(verdict.evidence.first)
        #expect(first.contains("end-to-end p50") && first.contains("mean of the typical request") && first.contains("mean of the slowest 1 %"))
    }

    @Test("a verdict on a trace that lost packets carries caveats, in JSON and next to the answer")
    func caveatsOnLossyData() throws {
        let report = try ReportBuilder.build(path: "\(tracesDirectory)/two-iface-dumpcap.pcapng").0
        let v = try #require(report.verdict)
        #expect(v.caveats.contains { $0.hasPrefix("the capture dropped") && $0.contains("virbr0") })
        #expect(v.caveats.contains { $0.contains("paired at one vantage point only") })
        let text = TextReport.render(report)
        let answer = try #require(text.range(of: v.answer.prefix(1).uppercased() + v.answer.dropFirst()))
        let caveat = try #require(text.range(of: "CAVEAT: the capture dropped"))
        #expect(answer.upperBound < caveat.lowerBound)
        // The trace without drops has none.
        let clean = try ReportBuilder.build(path: "\(tracesDirectory)/two-iface-dumpcap-nodrop.pcapng").0
        #expect(clean.verdict?.caveats.filter { $0.contains("dropped") } == [])
    }

    @Test("a trace without Redis requests says so instead of an empty attribution")
    func noRequests() throws {
        var options = AnalysisOptions()
        options.serverPorts = [7000]
        let report = try ReportBuilder.build(path: "\(tracesDirectory)/two-iface-dumpcap-nodrop.pcapng", options: options).0
        let text = TextReport.render(report)
        #expect(text.contains("No Redis requests in this trace"))
        #expect(text.contains("TCP traffic was seen on ports 6379"))
        #expect(!text.contains("path: ;") && !text.contains("- dominates") && !text.contains("at -:"))
    }

    @Test("compare flags a baseline that another setup beats")
    func invertedBaseline() throws {
        let slow = try ReportBuilder.build(path: "\(tracesDirectory)/two-iface-dumpcap-nodrop.pcapng").0
        let fast = try ReportBuilder.build(path: "\(tracesDirectory)/loopback-pipelined.pcap").0
        let inverted = Comparison([.init(report: slow, file: "a", name: "host"), .init(report: fast, file: "b", name: "veth")])
        #expect(inverted.notes.contains { $0.hasPrefix("the baseline host is slower than veth") })
        let fine = Comparison([.init(report: fast, file: "b", name: "host"), .init(report: slow, file: "a", name: "bridge")])
        #expect(!fine.notes.contains { $0.contains("slower than") })
    }
}
