import Foundation
import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeReport

/// Issue 15, item 3: the Redis inside unikernels is old (OSv 3.2, Rumprun 3.0). Their INFO has no
/// latencystats and commandstats lines without rejected_calls / failed_calls. No Redis 3.0 binary
/// is on this machine (Debian ships 7.x): the texts below are written from the documented format
/// (Redis 3.0's `cmdstat_%s:calls=%lld,usec=%lld,usec_per_call=%.2f`; an unknown INFO section is
/// answered with an empty bulk string), with 7.0's lines beside them as they come from a real 7.0.15.
@Suite("INFO of Redis 3.0 and 3.2: parsed, and what it lacks named")
struct OldRedisInfoTests {
    static let server30 = "# Server\r\nredis_version:3.0.7\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_mode:standalone\r\nos:Rumprun 0.0 x86_64\r\narch_bits:64\r\nmultiplexing_api:select\r\nprocess_id:1\r\ntcp_port:6379\r\n"
    static let server32 = "# Server\r\nredis_version:3.2.12\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\nos:OSv 0.55 x86_64\r\nexecutable:/redis-server\r\n"
    static func commandstats30(get: Int, getUsec: Int, set: Int, setUsec: Int) -> String {
        "# Commandstats\r\n"
            + "cmdstat_get:calls=\(get),usec=\(getUsec),usec_per_call=\(String(format: "%.2f", Double(getUsec) / Double(max(get, 1))))\r\n"
            + "cmdstat_set:calls=\(set),usec=\(setUsec),usec_per_call=\(String(format: "%.2f", Double(setUsec) / Double(max(set, 1))))\r\n"
            + "cmdstat_info:calls=3,usec=312,usec_per_call=104.00\r\n"
    }
    static let commandstats70 = "# Commandstats\r\ncmdstat_get:calls=2727,usec=20000,usec_per_call=7.33,rejected_calls=0,failed_calls=0\r\ncmdstat_set:calls=273,usec=8001,usec_per_call=29.31,rejected_calls=0,failed_calls=2\r\n"
    static let latencystats70 = "# Latencystats\r\nlatency_percentiles_usec_get:p50=7.007,p99=22.015,p99.9=40.191\r\n"

    @Test("Redis 3.0.7 and 3.2.12: calls and usec read, rejected and failed calls unknown (nil, not 0), version read, gaps named")
    func parsesOldFormat() throws {
        let stats = RedisInfo.commandStats(Self.commandstats30(get: 2000, getUsec: 16000, set: 200, setUsec: 3000))
        let get = try #require(stats["GET"])
        #expect(get.calls == 2000 && get.usec == 16000)
        #expect(get.failedCalls == nil && get.rejectedCalls == nil)
        #expect(RedisInfo.version(Self.server30) == "3.0.7")
        #expect(RedisInfo.version(Self.server32) == "3.2.12")
        #expect(RedisInfo.majorMinor("3.0.7")! == (3, 0))
        // Redis 3.0 answers INFO latencystats (a section it does not know) with an empty string.
        #expect(RedisInfo.missingFields(commandstats: Self.commandstats30(get: 1, getUsec: 1, set: 1, setUsec: 1), latencystats: "")
                == [.latencystats, .failedCalls, .rejectedCalls])
        // 7.0: nothing missing, and a failed call count of 0 is a real 0.
        #expect(RedisInfo.missingFields(commandstats: Self.commandstats70, latencystats: Self.latencystats70).isEmpty)
        #expect(RedisInfo.commandStats(Self.commandstats70)["GET"]?.failedCalls == 0)
        #expect(RedisInfo.commandStats(Self.commandstats70)["SET"]?.failedCalls == 2)
        // A 7.x with latency tracking off has the section header and no line.
        #expect(RedisInfo.missingFields(commandstats: Self.commandstats70, latencystats: "# Latencystats\r\n") == [.latencystats])
    }

    static func blocks(version: String?, server: String?) -> [NetprobeBlock] {
        let before = RedisInfoSnapshot(phase: "before", timeNs: 1_000, address: "10.77.0.3:6379",
                                       commandstats: commandstats30(get: 100, getUsec: 800, set: 10, setUsec: 150), latencystats: "",
                                       redisVersion: server.flatMap(RedisInfo.version))
        let after = RedisInfoSnapshot(phase: "after", timeNs: 2_000, address: "10.77.0.3:6379",
                                      commandstats: commandstats30(get: 2100, getUsec: 16800, set: 210, setUsec: 3150), latencystats: "",
                                      redisVersion: server.flatMap(RedisInfo.version))
        return [.redisInfo(before), .redisInfo(after)]
    }

    @Test("capture context of a Redis 3.0.7 run: deltas per command, FAILED unknown, and a note naming what INFO lacked")
    func contextNamesWhatIsMissing() throws {
        let context = CaptureContext(blocks: Self.blocks(version: "3.0.7", server: Self.server30))
        let get = try #require(context.redisCommands.first { $0.command == "GET" })
        #expect(get.calls == 2000 && get.usec == 16000 && get.usecPerCall == 8)
        #expect(get.failedCalls == nil)
        #expect(context.redisVersion == "3.0.7")
        #expect(context.redisInfoMissing == [.latencystats, .failedCalls, .rejectedCalls])
        #expect(context.notes.contains(
            "Redis 3.0.7: no latencystats (Redis 7.0+), no failed_calls or rejected_calls in commandstats (Redis 6.2+); "
                + "Redis's own execution percentiles are not shown; failed calls are unknown (FAILED -), not 0"), "\(context.notes)")
        let text = TextReport.renderContext(context)
        let row = try #require(text.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("GET ") })
        #expect(row.split(separator: " ").last == "-", "the FAILED column of an unknown count: \(row)")
        // JSON: unknown is absent, not 0.
        let json = String(decoding: try JSONEncoder().encode(context), as: UTF8.self)
        #expect(!json.contains(#""failedCalls":"#))
        #expect(json.contains(#""redisInfoMissing":["latencystats","failedCalls","rejectedCalls"]"#))

        // Without a recorded version (INFO server failed, or an older netprobe): said so.
        let unknown = CaptureContext(blocks: Self.blocks(version: nil, server: nil))
        #expect(unknown.notes.contains { $0.hasPrefix("Redis (version not recorded): no latencystats (Redis 7.0+)") }, "\(unknown.notes)")
        // A Redis 7 whose INFO has everything: no such note, failed calls counted.
        let modern = CaptureContext(blocks: [
            .redisInfo(RedisInfoSnapshot(phase: "after", timeNs: 2, address: "a:1", commandstats: Self.commandstats70,
                                         latencystats: Self.latencystats70, redisVersion: "7.0.15")),
        ])
        #expect(modern.redisInfoMissing == nil)
        #expect(!modern.notes.contains { $0.contains("latencystats") })
        #expect(modern.redisCommands.first { $0.command == "SET" }?.failedCalls == 2)
        // A Redis 7 with latency tracking off: the note does not blame the version.
        let off = CaptureContext(blocks: [
            .redisInfo(RedisInfoSnapshot(phase: "after", timeNs: 2, address: "a:1", commandstats: Self.commandstats70,
                                         latencystats: "# Latencystats\r\n", redisVersion: "7.0.15")),
        ])
        #expect(off.notes.contains { $0.hasPrefix("Redis 7.0.15: no latencystats (latency-tracking is off") }, "\(off.notes)")
    }

    /// An Ethernet/IPv4/TCP frame between 10.77.0.1:40000 and the guest 10.77.0.3:6379.
    static func frame(fromClient: Bool, seq: UInt32, ack: UInt32, payload: [UInt8]) -> [UInt8] {
        func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        let (src, dst): ([UInt8], [UInt8]) = fromClient ? ([10, 77, 0, 1], [10, 77, 0, 3]) : ([10, 77, 0, 3], [10, 77, 0, 1])
        let (sport, dport) = fromClient ? (40000, 6379) : (6379, 40000)
        var f: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]
        f += [0x45, 0] + be16(40 + payload.count) + [0, 1, 0x40, 0, 64, 6, 0, 0] + src + dst
        f += be16(sport) + be16(dport) + be32(seq) + be32(ack) + [0x50, 0x18] + be16(65535) + [0, 0, 0, 0]
        return f + payload
    }

    @Test("a trace of a Redis 3.0.7 guest (RESP2 GETs, INFO without latencystats or failed calls) reports per-command latency and attribution, the gaps named")
    func traceOfOldRedis() throws {
        let e = PcapngEncoder()
        var out: [UInt8] = []
        e.appendSectionHeader(to: &out)
        e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 0, name: "vnet1", description: "tap", tsResolution: 9)
        let run = RunMetadata(netprobeVersion: "t", startedNs: 1_700_000_000_000_000_000, hostKernel: "Linux", hostname: "h", setup: "bridge",
                              vantages: [.init(interface: "vnet1", role: "tap", namespace: "np-lab")], filter: "tcp port 6379", snapLength: 2048,
                              vm: "rumprun-redis", hypervisor: "tcg", redisAddress: "10.77.0.3:6379", redisAddressSource: "load-target")
        e.appendCustom(to: &out, enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: try NetprobeBlock.run(run).payload())
        for block in Self.blocks(version: "3.0.7", server: Self.server30) {
            e.appendCustom(to: &out, enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: try block.payload())
        }
        let request = Array("*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n".utf8)
        let reply = Array("$-1\r\n".utf8)  // RESP2, as Redis 3.0 answers (no RESP3, no HELLO)
        var t: UInt64 = 1_700_000_000_000_000_000
        var seqC: UInt32 = 1000, seqS: UInt32 = 5000
        for k in 0..<200 {
            let q = Self.frame(fromClient: true, seq: seqC, ack: seqS, payload: request)
            q.withUnsafeBytes { e.appendEnhancedPacket(to: &out, interface: 0, ticks: t, data: $0, originalLength: q.count) }
            seqC &+= UInt32(request.count)
            t += UInt64(100_000 + (k % 7) * 10_000)
            let r = Self.frame(fromClient: false, seq: seqS, ack: seqC, payload: reply)
            r.withUnsafeBytes { e.appendEnhancedPacket(to: &out, interface: 0, ticks: t, data: $0, originalLength: r.count) }
            seqS &+= UInt32(reply.count)
            t += 1_000_000
        }
        let path = NSTemporaryDirectory() + "netprobe-redis30-\(UUID().uuidString).pcapng"
        try Data(out).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }

        let (report, analysis) = try ReportBuilder.build(path: path)
        #expect(analysis.error == nil)
        let tap = try #require(report.vantages.first)
        #expect(tap.requests.byCommand["GET"] == 200)
        #expect(tap.byCommand.first { $0.command == "GET" }?.latencyUs.p50 != nil, "per-command latency")
        let attribution = try #require(report.attribution)
        #expect(attribution.requestsJoined == 200)
        #expect(report.segments.contains { $0.name == "redis" && $0.resolved }, "Redis's time comes from commandstats: \(report.segments.map(\.name))")
        let context = try #require(report.capture)
        #expect(context.redisAddressSource == .loadTarget)
        let text = TextReport.render(report)
        #expect(text.contains("Redis 10.77.0.3:6379 (from the load command's target)"))
        #expect(text.contains("note: Redis 3.0.7: no latencystats (Redis 7.0+), no failed_calls or rejected_calls in commandstats (Redis 6.2+)"), "\(text)")
    }
}
