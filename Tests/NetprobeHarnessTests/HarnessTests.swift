import Foundation
import NetprobeCore
@testable import NetprobeHarness
import Testing

/// The harness without root or a lab: capture planning, the command lines it builds, and the
/// replay that sizes the selftest's tap queue. Part of `scripts/test --fast`.
@Suite("harness: capture planning and command lines")
struct CapturePlanningTests {
    static let lab = LabState(
        name: "h", setup: .bridge, namespace: "np-h", redisAddress: "10.77.0.2:6379", hypervisor: "tcg",
        vantages: [.init(interface: "virbr0", role: .bridge, namespace: "np-h"), .init(interface: "vnet0", role: .tap, namespace: "np-h")],
        createdAt: "2026-01-01T00:00:00Z")

    @Test("a lab's interfaces: namespace, roles, setup and Redis come from its state; the filter from Redis's port")
    func fromLab() throws {
        var r = CaptureRequest()
        r.interfaces = ["virbr0", "vnet0"]
        let c = try CapturePlanner.plan(r, labs: [Self.lab])
        #expect(c.vantages.map(\.namespace) == ["np-h", "np-h"])
        #expect(c.vantages.map(\.role) == ["bridge", "tap"])
        #expect(c.setup == "bridge")
        #expect(c.hypervisor == "tcg")
        #expect(c.redisAddress == "10.77.0.2:6379")
        #expect(c.settings.filter == "tcp port 6379")
    }

    @Test("netprobe load as the load: this binary runs it, and its records become the client vantage point")
    func builtinLoad() throws {
        var r = CaptureRequest()
        r.interfaces = ["virbr0"]
        r.namespace = "np-h"
        r.load = ["netprobe", "load", "--target", "10.77.0.2:6380"]
        let c = try CapturePlanner.plan(r, labs: [], netprobe: "/opt/np/netprobe")
        let load = try #require(c.loadCommand)
        #expect(load.first == "/opt/np/netprobe")
        #expect(load.contains("--timestamps-out"))
        #expect(c.finalBlocks != nil)
        #expect(c.redisAddress == "10.77.0.2:6380")
        #expect(c.settings.filter == "tcp port 6380")
        #expect(c.loadNamespace == "np-h")
    }

    @Test("HOST:PORT from redis-benchmark, memtier_benchmark and netprobe load command lines", arguments: [
        (["redis-benchmark", "-h", "10.0.0.9", "-p", "6380", "-n", "10"], "10.0.0.9:6380"),
        (["memtier_benchmark", "--server=10.0.0.9", "--port=7000"], "10.0.0.9:7000"),
        (["netprobe", "load", "--target", "10.0.0.9:6379"], "10.0.0.9:6379"),
        (["redis-benchmark", "-n", "10"], nil),
    ])
    func loadTargets(argv: [String], expected: String?) {
        #expect(LoadCommandLine.redisAddress(fromLoad: argv) == expected)
    }

    @Test("a lab run's capture request: the lab's vantages and roles, its Redis, the load after --, a stop of its own")
    func labRunRequest() throws {
        let run = LabRun(name: "h", setup: .bridge, directory: "/tmp/x", load: LoadSpec(connections: 4), netprobe: "/np", say: { _ in })
        #expect(run.captureRequest("baseline", seconds: 4).interfaces.isEmpty)  // no lab up: nothing to capture
        let request = LabRunTestAccess.request(run, state: Self.lab, seconds: 4, filter: "tcp port 6379 or not ip")
        #expect(request.arguments == [
            "capture", "-i", "virbr0", "-i", "vnet0", "--netns", "np-h", "-w", "/tmp/x/baseline.pcapng",
            "--redis", "10.77.0.2:6379", "--duration", "124s",
            "-f", "tcp port 6379 or not ip", "--role", "virbr0=bridge", "--role", "vnet0=tap", "--quiet", "--",
            "/np", "load", "--target", "10.77.0.2:6379", "--connections", "4", "--pipeline", "1",
            "--duration", "4000ms", "--ratio", "1:1", "--quiet",
        ])
    }

    @Test("every load tool's command line for a target and a time", arguments: LoadTool.allCases)
    func loadCommands(tool: LoadTool) {
        let argv = LoadSpec(tool: tool, connections: 10, pipeline: 2).command(target: "10.77.0.2:6379", seconds: 3, netprobe: "/np")
        switch tool {
        case .builtin: #expect(argv.prefix(4) == ["/np", "load", "--target", "10.77.0.2:6379"])
        case .redisBenchmark: #expect(argv == ["redis-benchmark", "-h", "10.77.0.2", "-p", "6379", "-c", "10", "-P", "2", "-n", "12000", "-t", "set,get", "-q"])
        case .memtier: #expect(argv.contains("--test-time=3") && argv.contains("--pipeline=2"))
        }
    }
}

/// Sets a lab run's state without bringing a lab up.
enum LabRunTestAccess {
    static func request(_ run: LabRun, state: LabState, seconds: Double, filter: String?) -> CaptureRequest {
        run.setStateForTesting(state)
        return run.captureRequest("baseline", seconds: seconds, filter: filter)
    }
}

@Suite("selftest: the tap queue's injected size, computed without the lab")
struct TokenBucketTests {
    typealias A = RequestPathPackets.Arrival
    func a(_ seconds: Double, _ length: Int, request: Bool = true) -> A {
        A(timeNs: Int64(seconds * 1e9), length: length, isRequest: request, tapTimeNs: Int64(seconds * 1e9), bridged: true)
    }

    @Test("a full bucket lets a burst through, then packets wait for tokens in order, and an idle bucket refills")
    func tokenBucket() {
        // 1000 B/s, 200 B of burst: the bucket holds 0.2 s of tokens; a 100 B packet costs 0.1 s.
        let replay = TokenBucketReplay(rateBytesPerSecond: 1000, burstBytes: 200)
        let r = replay.run([a(0, 100), a(0, 100), a(0, 100), a(0.05, 100), a(1.0, 100), a(1.0, 60, request: false)])
        let waits = r.waitsNs.map { Double($0) / 1e9 }
        let expected = [0, 0, 0.1, 0.15, 0, 0]
        for (w, e) in zip(waits, expected) { #expect(abs(w - e) < 1e-6, "waits \(waits), expected \(expected)") }
        #expect(r.requests == 5)
        #expect(abs(r.meanRequestWaitNs / 1e9 - 0.25 / 5) < 1e-6)
    }

    @Test("a bare ACK behind requests takes tokens but is not in the request mean")
    func nonRequestsTakeTokens() {
        let replay = TokenBucketReplay(rateBytesPerSecond: 1000, burstBytes: 100)
        // The ACK empties the bucket; the request after it waits its whole cost.
        let r = replay.run([a(0, 100, request: false), a(0, 100)])
        #expect(r.requests == 1)
        #expect(abs(r.meanRequestWaitNs / 1e9 - 0.1) < 1e-6)
    }
}
