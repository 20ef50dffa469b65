import Foundation
import NetprobeCore
@testable import NetprobeHarness
import NetprobeLab
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

/// The slow-backend fault's parts that need no root: where the cgroup v1 cpu controller is, what
/// bpftrace printed, and which QEMU thread copied from the tap according to a trace's kernel events.
@Suite("selftest: slow-backend's throttle, oracle and tap reader, without the lab")
struct SlowBackendPartsTests {
    @Test("the cgroup v1 cpu controller is found in mountinfo by its option, not by a name that starts with cpu")
    func cpuController() {
        let v1 = """
            31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
            33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
            34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
            32 31 0:29 /lxc/c1 /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
            """
        let found = ThreadCPUQuota.cpuControllerMount(mountinfo: v1)
        #expect(found?.path == "/sys/fs/cgroup/cpu,cpuacct" && found?.root == "/lxc/c1")
        let onlyOthers = "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset"
        #expect(ThreadCPUQuota.cpuControllerMount(mountinfo: onlyOthers) == nil)
        let v2 = "30 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot"
        #expect(ThreadCPUQuota.cpuControllerMount(mountinfo: v2) == nil)
    }

    @Test("a thread's cgroup path maps into the mount, also when the mount shows only part of the hierarchy")
    func cgroupDirectories() {
        #expect(ThreadCPUQuota.directory(of: "/", in: ("/sys/fs/cgroup/cpu", "/")) == "/sys/fs/cgroup/cpu")
        #expect(ThreadCPUQuota.directory(of: "/user.slice", in: ("/sys/fs/cgroup/cpu", "/")) == "/sys/fs/cgroup/cpu/user.slice")
        #expect(ThreadCPUQuota.directory(of: "/lxc/c1/a", in: ("/sys/fs/cgroup/cpu", "/lxc/c1")) == "/sys/fs/cgroup/cpu/a")
        #expect(ThreadCPUQuota.directory(of: "/lxc/c1", in: ("/sys/fs/cgroup/cpu", "/lxc/c1")) == "/sys/fs/cgroup/cpu")
        #expect(ThreadCPUQuota.directory(of: "/lxc/c10", in: ("/sys/fs/cgroup/cpu", "/lxc/c1")) == "/sys/fs/cgroup/cpu/lxc/c10")
    }

    @Test("bpftrace's maps at exit: request copies, mean wait, on-CPU share, copies per thread; nothing without its ready line")
    func oracleOutput() throws {
        // As bpftrace 0.17 printed it on the lab (empty lines between maps, the memlock warning on stderr).
        let text = "Attaching 6 probes...\nready\n\n\n\n\n\n@oncpusum: 217861385\n\n\n@tids[9144]: 9270\n@tids[9146]: 3\n@waits: 9273\n@waitsum: 734770602\n"
        let r = try #require(BackendWaitOracle.parse(text))
        #expect(r.requests == 9273)
        #expect(abs(try #require(r.meanWaitNs) - 734_770_602.0 / 9273) < 1e-6)
        #expect(abs(try #require(r.onCPUShare) - 217_861_385.0 / 734_770_602) < 1e-9)
        #expect(r.copiesByThread == [9144: 9270, 9146: 3])
        let idle = try #require(BackendWaitOracle.parse("Attaching 6 probes...\nready\n@waits: 0\n"))
        #expect(idle.requests == 0 && idle.meanWaitNs == nil && idle.onCPUShare == nil)
        #expect(BackendWaitOracle.parse("ERROR: couldn't attach\n") == nil)
    }

    /// A trace whose kernel events say who copied what: QEMU (pid 100) on two threads, another reader.
    static func trace(batches: [[UInt8]]) throws -> TraceReader {
        let e = PcapngEncoder()
        var out: [UInt8] = []
        e.appendSectionHeader(to: &out)
        e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 128, name: "vnet0")
        let frame = [UInt8](repeating: 0xAB, count: 60)
        frame.withUnsafeBytes { e.appendEnhancedPacket(to: &out, interface: 0, ticks: 1_000, data: $0, originalLength: 60) }
        for (k, b) in batches.enumerated() { try e.appendNetprobeData(to: &out, payload: b, interface: 0, ticks: UInt64(2_000 + k)) }
        return try TraceReader(bytes: out)
    }

    @Test("the tap's reader is counted from the trace's copy events of QEMU's process, per thread, across batches")
    func tapReaders() throws {
        func copy(_ t: Int64, pid: Int32, tid: Int32) -> KernelEvent {
            KernelEvent(timeNs: t, kind: .copyToReader, cpu: 0, pid: pid, tid: tid, skbaddr: UInt64(t), length: 80)
        }
        let first = try KernelEventBatch.encode([
            KernelEvent(timeNs: 1, kind: .devStartXmit, cpu: 0, pid: 100, tid: 100, skbaddr: 1, interface: "vnet0", length: 80),
            copy(2, pid: 100, tid: 100), copy(3, pid: 100, tid: 101), copy(4, pid: 7, tid: 7),
        ])
        let second = try KernelEventBatch.encode([copy(5, pid: 100, tid: 100)])
        #expect(try TapReaderThreads.count(reader: Self.trace(batches: [first, second]), pid: 100) == [100: 2, 101: 1])
        #expect(try TapReaderThreads.count(reader: Self.trace(batches: [first]), pid: 42) == [:])
        // A damaged batch (its only event claims more bytes than the batch has) is an error, not a silent zero.
        var damaged = second
        damaged[KernelEventBatch.headerLength] = 0x7F
        #expect(throws: (any Error).self) { try TapReaderThreads.count(reader: Self.trace(batches: [damaged]), pid: 100) }
    }
}

/// `experiment --guest NAME=SPEC`: which lab runs the experiment makes, and what they are called.
@Suite("experiment: the runs, with and without named guests")
struct ExperimentRunTests {
    func experiment(_ setups: [LabSetup], guests: [Experiment.Guest]) -> Experiment {
        var e = Experiment(setups: setups, load: LoadSpec(connections: 1), duration: .seconds(1), warmup: .seconds(1), directory: "/nonexistent")
        e.guests = guests
        return e
    }

    @Test("without guests: one run per setup, named by the setup (the traces keep their names)")
    func builtin() {
        let runs = experiment([.host, .bridge, .macvtap, .veth], guests: []).runs
        #expect(runs.map(\.name) == ["host", "bridge", "macvtap", "veth"])
        #expect(runs.allSatisfy { $0.guest == nil })
    }

    @Test("with two guests: each guest setup once per guest (NAME-SETUP), host and veth once")
    func twoGuests() {
        let linux = Experiment.Guest(name: "linux", options: LabGuestOptions())
        let osv = Experiment.Guest(name: "osv", options: LabGuestOptions(spec: GuestSpec(kind: .disk, path: "/images/osv.qcow2"), memoryMiB: 1024))
        let runs = experiment([.host, .bridge, .macvtap, .veth], guests: [linux, osv]).runs
        #expect(runs.map(\.name) == ["host", "linux-bridge", "osv-bridge", "linux-macvtap", "osv-macvtap", "veth"])
        #expect(runs.map(\.setup) == [.host, .bridge, .bridge, .macvtap, .macvtap, .veth])
        #expect(runs[2].guest?.options.spec.path == "/images/osv.qcow2" && runs[2].guest?.options.memoryMiB == 1024)
        #expect(runs[0].guest == nil && runs[5].guest == nil)
    }

    @Test("a guest's name must fit file and lab names")
    func names() {
        #expect(Experiment.Guest.problem(withName: "osv") == nil)
        #expect(Experiment.Guest.problem(withName: "rump_2") == nil)
        for bad in ["", "OSv", "a-b", "a/b", "a b", String(repeating: "x", count: 17)] {
            #expect(Experiment.Guest.problem(withName: bad) != nil, "\(bad)")
        }
    }
}
