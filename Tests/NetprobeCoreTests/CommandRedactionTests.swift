import Testing
import NetprobeCore

@Suite("load commands are stored without their credentials")
struct CommandRedactionTests {
    static let r = CommandRedaction.placeholder

    static let options: [([String], [String])] = [
        (["redis-cli", "-a", "s3cr3tPW", "-h", "10.0.0.2", "ping"], ["redis-cli", "-a", r, "-h", "10.0.0.2", "ping"]),
        (["redis-benchmark", "-h", "h", "-a", "pw", "-n", "100"], ["redis-benchmark", "-h", "h", "-a", r, "-n", "100"]),
        (["redis-cli", "--user", "alice", "--pass", "pw", "info"], ["redis-cli", "--user", r, "--pass", r, "info"]),
        (["redis-cli", "--pass=pw", "--user=alice"], ["redis-cli", "--pass=\(r)", "--user=\(r)"]),
        (["memtier_benchmark", "--authenticate=alice:pw", "-s", "h"], ["memtier_benchmark", "--authenticate=\(r)", "-s", "h"]),
        (["memtier_benchmark", "-apw", "-s", "h"], ["memtier_benchmark", "-a\(r)", "-s", "h"]),
        (["redis-cli", "--askpass", "-h", "h"], ["redis-cli", "--askpass", "-h", "h"]),
        (["redis-cli", "-u", "redis://alice:pw@10.0.0.2:6379/0", "ping"], ["redis-cli", "-u", "redis://\(r)@10.0.0.2:6379/0", "ping"]),
        (["redis-cli", "--uri=rediss://:pw@host"], ["redis-cli", "--uri=rediss://\(r)@host"]),
    ]

    static let others: [([String], [String])] = [
        (["redis-cli", "-h", "h", "AUTH", "alice", "pw"], ["redis-cli", "-h", "h", "AUTH", r, r]),
        (["redis-cli", "hello", "3", "auth", "alice", "pw"], ["redis-cli", "hello", "3", "auth", r, r]),
        (["redis-server", "--port", "6380", "--requirepass", "pw"], ["redis-server", "--port", "6380", "--requirepass", r]),
        (["redis-cli", "CONFIG", "SET", "requirepass", "pw"], ["redis-cli", "CONFIG", "SET", "requirepass", r]),
        (["env", "REDISCLI_AUTH=pw", "redis-cli", "ping"], ["env", "REDISCLI_AUTH=\(r)", "redis-cli", "ping"]),
        (["REDIS_PASSWORD=pw", "LANG=C", "sh", "-c", "x"], ["REDIS_PASSWORD=\(r)", "LANG=C", "sh", "-c", "x"]),
        (["sh", "-c", "redis-benchmark -a pw -n 10 && redis-cli  --pass pw ping"], ["sh", "-c", "redis-benchmark -a \(r) -n 10 && redis-cli  --pass \(r) ping"]),
        (["netprobe", "load", "--target", "10.0.0.2:6379", "--duration", "10s"], ["netprobe", "load", "--target", "10.0.0.2:6379", "--duration", "10s"]),
        (["redis-benchmark", "-h", "10.77.0.2", "-n", "50000", "-t", "get,set"], ["redis-benchmark", "-h", "10.77.0.2", "-n", "50000", "-t", "get,set"]),
    ]

    @Test("options, URIs, AUTH arguments and environment assignments", arguments: options + others)
    func redacts(argv: [String], expected: [String]) {
        #expect(CommandRedaction.redact(argv) == expected)
        #expect(CommandRedaction.redact(expected) == expected, "redacting twice changes nothing")
    }

    @Test("a trace written before redaction is redacted when reported")
    func oldTraces() {
        let run = RunMetadata(netprobeVersion: "0.1.0", startedNs: 0, hostKernel: "Linux", hostname: "h", setup: nil,
                              vantages: [], filter: "tcp port 6379", snapLength: 2048,
                              loadCommand: ["redis-benchmark", "-a", "s3cr3tPW", "-n", "10"])
        let context = CaptureContext(blocks: [.run(run)])
        #expect(context.loadCommand == ["redis-benchmark", "-a", Self.r, "-n", "10"])
    }
}
