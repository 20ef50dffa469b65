import Foundation
import Testing
@testable import NetprobeCapture
import NetprobeCore
import NetprobeSystem

/// Issue 15, item 3: the Redis of OSv (3.2) and Rumprun (3.0). No Redis 3.0 binary exists on this
/// machine (Debian ships 7.x, and there is no network to fetch one), so the Redis 3.0 texts are
/// unit-tested (here and in NetprobeCoreTests' OldRedisInfoTests), and a real Redis 7 is made to
/// lack what Redis 3.0 lacks where a running server can: no HELLO, CLIENT or CONFIG (renamed
/// away) and no latencystats (latency tracking off).
@Suite("older Redis: AUTH replies of Redis before 6")
struct OldRedisAuthTests {
    @Test("AUTH with a password to a Redis without one: Redis 3.0/3.2's refusal lets INFO go on, as Redis 6+'s does")
    func authWithoutPassword() {
        // Redis 3.0.7 and 3.2 (src/redis.c, authCommand): "-ERR Client sent AUTH, but no password is set".
        #expect(RedisClient.authAccepted("(error) ERR Client sent AUTH, but no password is set"))
        // Redis 7.0: "-ERR AUTH <password> called without any password configured for the default user. ..."
        #expect(RedisClient.authAccepted("(error) ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"))
        #expect(RedisClient.authAccepted("OK"))
        #expect(!RedisClient.authAccepted("(error) WRONGPASS invalid username-password pair or user is disabled."))
        #expect(!RedisClient.authAccepted("(error) ERR invalid password"))  // Redis 3.0's wrong password
    }
}

@Suite("older Redis: capture and load without HELLO, CLIENT, CONFIG or latencystats (root, redis-server)", .serialized, .enabled(if: isRoot, rootNote))
struct OldRedisCaptureTests {
    @Test("capture -- netprobe load against a Redis that lacks them: the load runs clean, INFO is read, and the report names latencystats as missing")
    func captureWithoutModernParts() throws {
        let topo = try TestTopology(redisArguments: [
            "--latency-tracking", "no",
            "--rename-command", "HELLO", "", "--rename-command", "CLIENT", "", "--rename-command", "CONFIG", "",
        ])
        defer { topo.teardown() }
        let out = tempPath(".pcapng")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try ChildProcess.run([CaptureCLITests.binary, "capture", "-i", "npbr0", "-i", "npv0", "--netns", topo.client,
                                      "--duration", "60s", "-w", out, "--quiet", "--format", "json", "--",
                                      "netprobe", "load", "--target", "10.78.0.2:6379", "--connections", "2",
                                      "--requests", "2000", "--ratio", "1:1"], timeout: 300)
        #expect(r.status.succeeded, "\(r.stderr)")
        struct Summary: Decodable { var redisInfo: [String]; var redisAddress: String?; var redisAddressSource: String?; var load: Load? }
        struct Load: Decodable { var exitStatus: Int32? }
        let summary = try JSONDecoder().decode(Summary.self, from: Data(r.stdout.utf8))
        #expect(summary.redisInfo == ["before", "after"], "\(r.stderr)")
        #expect(summary.redisAddress == "10.78.0.2:6379" && summary.redisAddressSource == "load-target")
        #expect(summary.load?.exitStatus == 0, "the load generator needs none of HELLO, CLIENT, CONFIG: \(r.stderr)")

        let (report, analysis) = try ReportBuilder.build(path: out)
        #expect(analysis.error == nil)
        let context = try #require(report.capture)
        #expect(context.redisVersion?.hasPrefix("7.") == true, "INFO server's redis_version is recorded: \(String(describing: context.redisVersion))")
        #expect(context.redisInfoMissing == [.latencystats])
        #expect(context.redisLatencyPercentilesUs.isEmpty)
        #expect(context.notes.contains { $0.hasPrefix("Redis 7.") && $0.contains("no latencystats (latency-tracking is off") }, "\(context.notes)")
        #expect(context.redisCommands.first { $0.command == "GET" }?.calls == 1000)
        #expect(context.redisCommands.first { $0.command == "GET" }?.failedCalls == 0, "Redis 7 counts failed calls")
        #expect(report.segments.contains { $0.name == "redis" && $0.resolved })
    }
}
