import Foundation
import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

/// netprobe against real captures in traces/, compared with figures computed independently
/// (traces/tools/expected.py: tshark fields + a few lines of Python, see traces/README.md).
@Suite("real traces against independent figures")
struct RealTraceTests {
    struct Expected {
        let json: [String: Any]
        init(_ name: String) throws {
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(tracesDirectory)/expected/\(name).json"))
            json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        }
        func vantage(_ name: String) -> [String: Any] {
            (json["perInterface"] as! [String: Any])[name] as! [String: Any]
        }
        func count(_ vantage: String, _ command: String) -> Int? {
            (self.vantage(vantage)["requestsByCommand"] as? [String: Int])?[command]
        }
        func latency(_ vantage: String, _ key: String, command: String? = nil) -> Double {
            let v = self.vantage(vantage)
            if let command {
                return ((v["latencyUsByCommand"] as! [String: Any])[command] as! [String: Any])[key] as! Double
            }
            return (v["latencyUs"] as! [String: Any])[key] as! Double
        }
    }

    static func report(_ file: String) throws -> Report {
        try ReportBuilder.build(path: "\(tracesDirectory)/\(file)").0
    }

    static func within(_ a: Double?, _ b: Double, _ tolerance: Double) -> Bool {
        guard let a else { return false }
        return abs(a - b) <= tolerance * b
    }

    @Test("tcpdump nanosecond pcap through bridge + tap: exactly 20000 GET and 20000 SET, p50 within 2 %")
    func bridgeTap() throws {
        let expected = try Expected("bridge-tap-nano")
        let r = try Self.report("bridge-tap-nano.pcap")
        #expect(r.trace.packets == expected.json["packets"] as? Int)
        #expect(r.vantages.count == 1)
        let v = r.vantages[0]
        #expect(v.requests.byCommand["GET"] == 20_000)
        #expect(v.requests.byCommand["SET"] == 20_000)
        #expect(v.requests.byCommand["GET"] == expected.count("", "GET"))
        #expect(v.requests.byCommand["SET"] == expected.count("", "SET"))
        for key in ["p50", "p90", "p99"] {
            let ours = [v.latencyUs.p50, v.latencyUs.p90, v.latencyUs.p99][["p50", "p90", "p99"].firstIndex(of: key)!]
            #expect(Self.within(ours, expected.latency("", key), 0.02), "\(key): netprobe \(ours ?? -1) vs \(expected.latency("", key))")
        }
        for command in ["GET", "SET"] {
            let ours = v.byCommand.first { $0.command == command }?.latencyUs.p50
            #expect(Self.within(ours, expected.latency("", "p50", command: command), 0.02))
        }
        // Snaplen 128 cut the segment holding redis-benchmark's two CONFIG GETs: the first is
        // decoded and paired (2904 us, as expected.py finds), the cut one is not guessed, and its
        // reply is reported as a reply without a request.
        #expect(v.tcp.snaplenCutBytes > 0)
        #expect(v.requests.byCommand["CONFIG GET"] == 1)
        #expect(v.unpairedRequests == 0)
        #expect(v.unexpectedResponses == 1)
        #expect(v.latencyUs.count == 40_001)
        #expect(Self.within(v.byCommand.first { $0.command == "CONFIG GET" }?.latencyUs.p50, expected.latency("", "p50", command: "CONFIG"), 0.01))
    }

    @Test("redis-benchmark -P 16 on loopback: pipelined requests pair in order")
    func pipelined() throws {
        let expected = try Expected("loopback-pipelined")
        let v = try Self.report("loopback-pipelined.pcap").vantages[0]
        #expect(v.requests.byCommand["GET"] == 20_000)
        #expect(v.requests.byCommand["SET"] == 20_000)
        #expect(v.unpairedRequests == 0)
        #expect(v.latencyUs.count == 40_002)
        #expect(Self.within(v.latencyUs.p50, expected.latency("", "p50"), 0.02))
        #expect(Self.within(v.latencyUs.p99, expected.latency("", "p99"), 0.02))
        #expect(Self.within(v.latencyUs.max, expected.latency("", "max"), 0.001))
    }

    @Test("dumpcap pcapng with two interfaces: two vantage points by name, with dumpcap's drop counts", arguments: [
        "two-iface-dumpcap-nodrop", "two-iface-dumpcap",
    ])
    func dumpcap(name: String) throws {
        let expected = try Expected(name)
        let r = try Self.report("\(name).pcapng")
        let interfaces = expected.json["interfaces"] as! [[String: Any]]
        #expect(r.trace.vantagePoints.map(\.name) == interfaces.map { $0["name"] as! String })
        #expect(r.trace.vantagePoints.map(\.name) == ["virbr0", "vnet0"])
        for (ours, theirs) in zip(r.trace.vantagePoints, interfaces) {
            let ifdrop = theirs["ifdrop"] as? Int
            #expect(ours.interfaceDropped.map(Int.init) == ifdrop)
            #expect(ours.dropped.map(Int.init) == ifdrop) // dumpcap writes no isb_osdrop
            #expect(ours.received.map(Int.init) == theirs["ifrecv"] as? Int)
        }
        if name.hasSuffix("nodrop") {
            for v in r.vantages {
                #expect(v.requests.byCommand["GET"] == expected.count(v.name, "GET"))
                #expect(v.requests.byCommand["SET"] == expected.count(v.name, "SET"))
                #expect(Self.within(v.latencyUs.p50, expected.latency(v.name, "p50"), 0.02))
            }
        } else {
            #expect(r.trace.vantagePoints.allSatisfy { ($0.dropped ?? 0) > 0 })
        }
    }

    /// Writes `trace` again without the packets `drop` selects (capture loss at this vantage point).
    static func thinned(_ path: String, drop: (Int) -> Bool) throws -> TempFile {
        let reader = try TraceReader(path: path)
        let e = PcapngEncoder()
        var out: [UInt8] = []
        e.appendSectionHeader(to: &out)
        var described = 0
        var n = 0
        while let p = try reader.next() {
            while described < reader.interfaces.count {
                let i = reader.interfaces[described]
                e.appendInterfaceDescription(to: &out, linkType: i.linkType, snapLength: i.snapLength, name: i.name)
                described += 1
            }
            defer { n += 1 }
            if drop(n) { continue }
            e.appendEnhancedPacket(to: &out, interface: UInt32(p.interface), ticks: UInt64(p.timestampNs), data: p.data,
                                   originalLength: p.originalLength)
        }
        return try TempFile(out, suffix: ".pcapng")
    }

    struct Key: Hashable {
        var vantage: String
        var client: Endpoint
        var sequence: UInt32
    }

    static func timings(_ path: String) throws -> [Key: RequestTiming] {
        var byIndex: [Int: [RequestTiming]] = [:]
        let (_, analysis) = try ReportBuilder.build(path: path) { t in byIndex[t.vantage, default: []].append(t) }
        var out: [Key: RequestTiming] = [:]
        for (index, list) in byIndex {
            for t in list { out[Key(vantage: analysis.vantages[index].name, client: t.client, sequence: t.requestSequence)] = t }
        }
        return out
    }

    @Test("packets lost by the capture never cause a request to be paired with another's response",
          arguments: ["two-iface-dumpcap-nodrop.pcapng", "loopback-pipelined.pcap"], [(0.005, UInt64(1)), (0.05, 2), (0.2, 3), (0.5, 4)])
    func lossNeverMispairs(trace: String, loss: (rate: Double, seed: UInt64)) throws {
        let (rate, seed) = loss
        let original = "\(tracesDirectory)/\(trace)"
        let truth = try Self.timings(original)
        var rng = SplitMix(seed: seed)
        let lossy = try Self.thinned(original) { _ in Double(rng.next() % 1_000_000) / 1e6 < rate }
        let seen = try Self.timings(lossy.path)

        #expect(!seen.isEmpty)
        var wrong = 0
        for (key, t) in seen {
            guard let real = truth[key] else {
                wrong += 1
                continue
            }
            // Same request, same response: every request and reply in these traces fits in one
            // segment, so a pair seen through the loss must be made of the very same packets.
            if t.command != real.command || t.responseFirstByteNs != real.responseFirstByteNs
                || t.requestLastByteNs != real.requestLastByteNs {
                wrong += 1
            }
        }
        #expect(wrong == 0, "\(wrong) of \(seen.count) pairs disagree with the lossless capture")

    }
}

/// A small deterministic random generator for reproducible tests.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
