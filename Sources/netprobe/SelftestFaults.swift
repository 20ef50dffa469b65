import Foundation
import Glibc
import NetprobeCapture
import NetprobeCore

/// The faults `netprobe selftest` injects, one at a time, each at a known place and of a known size.
enum SelftestFault: String, CaseIterable, Codable {
    /// A tbf qdisc on the tap: request packets queue there.
    case tapQueue = "tap-queue"
    /// QEMU stopped (SIGSTOP) for a fixed time at a fixed period: the guest gets no CPU.
    case starvedGuest = "starved-guest"
    /// A second client runs a Lua busy loop (EVAL) on the single-threaded server.
    case redisStall = "redis-stall"

    /// The segment the fault must show up in.
    var segment: SegmentName {
        switch self {
        case .tapQueue: .tap
        case .starvedGuest: .guestStack
        case .redisStall: .redis
        }
    }

    /// What the selftest compares and why the two numbers are the same quantity (printed under
    /// the table, stored in the JSON).
    var definition: String {
        switch self {
        case .tapQueue:
            return "tap-queue: injected = the mean time request frames must wait in a token bucket of the tbf's rate and burst, "
                + "computed by replaying that bucket (Linux's tbf_dequeue) over every frame that crossed the qdisc, in the order it left the tap, "
                + "each arriving when the bridge saw it - from tc's parameters and the arrivals only, never from the tap's stamps or "
                + "netprobe's attribution. measured = the tap segment's mean over all requests. Both are per-request means of the "
                + "time spent queued in the tap's qdisc; the kernel's timer and softirq latency (shown as the model's lag) is not in the injected size."
        case .starvedGuest:
            return "starved-guest: injected = the mean length of QEMU's SIGSTOP -> SIGCONT intervals, timed by the injector around kill(2). "
                + "With pipeline 1, the request each connection has in flight when QEMU stops is held for the whole stop; the held requests "
                + "(stops x connections, checked to be >= 1.5 % of all) are the slowest 1 %. measured = guest-stack p99 - the baseline's "
                + "guest-stack p50 (what a held request spends in the guest anyway). It reads a little high: after SIGCONT the held "
                + "requests are served one after another, and p99 picks the last ones."
        case .redisStall:
            return "redis-stall: injected = how long each EVAL ran, from Redis's own INFO commandstats (usec per call, delta over the run); "
                + "the script busy-loops on Redis's TIME until 50 ms have passed. The next request of every load connection reaches Redis "
                + "while the EVAL runs and waits for the rest of it (EVALs x (connections + 1), checked to be >= 1.5 % of all requests). "
                + "measured = redis p99 - the baseline's redis p50 (the request's own execution). netprobe caps a wait at the blocking "
                + "command's INFO time, so a request held through a whole EVAL shows exactly that: the check is that the waits are found "
                + "and put on redis (tail verdict redis, guest-stack p99 not grown), not that they exceed it."
        }
    }
}

/// Clocks and sleeps for the injectors.
enum SelftestClock {
    static func monotonicNs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Sleeps until CLOCK_MONOTONIC reaches `ns` (clock_nanosleep, absolute).
    static func sleep(untilMonotonic ns: Int64) {
        var ts = timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
    }

    /// Asks for SCHED_FIFO for the calling thread, so that its wake-ups (and thus the injected
    /// times) are not delayed by the load on a busy 2-core host. Best effort.
    static func realtimePriority() {
        var p = sched_param()
        p.sched_priority = 10
        _ = pthread_setschedparam(pthread_self(), SCHED_FIFO, &p)
    }
}

/// Runs a body on a thread of its own and lets the caller stop it and wait for it.
class InjectorThread: @unchecked Sendable {
    private let lock = NSLock()
    private var quit = false
    private let done = DispatchSemaphore(value: 0)

    var shouldQuit: Bool { lock.withLock { quit } }

    func start() {
        let t = Thread { [self] in
            body()
            done.signal()
        }
        t.stackSize = 1 << 20
        t.start()
    }

    /// Subclasses do their work here until `shouldQuit`.
    func body() {}

    /// Stops the thread and waits for it to finish (it undoes its fault before it returns).
    func finish() {
        let first = lock.withLock { () -> Bool in
            defer { quit = true }
            return !quit
        }
        if first { done.wait() }
    }
}

/// starved-guest: SIGSTOP the QEMU process for `stopNs`, let it run for `runNs`, repeat.
/// Records every stop as [after kill(SIGSTOP), before kill(SIGCONT)] on CLOCK_REALTIME (the
/// capture's clock). Always leaves QEMU running.
final class DutyCycleStopper: InjectorThread, @unchecked Sendable {
    let pid: pid_t
    let stopNs: Int64
    let runNs: Int64
    private let stopsLock = NSLock()
    private var recorded: [(startNs: Int64, endNs: Int64)] = []
    private(set) var error: String?

    init(pid: pid_t, stopNs: Int64, runNs: Int64) {
        self.pid = pid
        self.stopNs = stopNs
        self.runNs = runNs
    }

    var stops: [(startNs: Int64, endNs: Int64)] { stopsLock.withLock { recorded } }

    override func body() {
        SelftestClock.realtimePriority()
        var next = SelftestClock.monotonicNs() + runNs
        while !shouldQuit {
            SelftestClock.sleep(untilMonotonic: next)
            if shouldQuit { break }
            guard kill(pid, SIGSTOP) == 0 else {
                error = "kill(\(pid), SIGSTOP): \(String(cString: strerror(errno)))"
                break
            }
            let start = realtimeNanoseconds()
            let resumeAt = SelftestClock.monotonicNs() + stopNs
            SelftestClock.sleep(untilMonotonic: resumeAt)
            let end = realtimeNanoseconds()
            kill(pid, SIGCONT)
            stopsLock.withLock { recorded.append((start, end)) }
            next = SelftestClock.monotonicNs() + runNs
        }
        kill(pid, SIGCONT)
    }
}

/// redis-stall: a client of its own, in the lab's namespace, that sends a Lua busy loop of
/// `busyUs` microseconds (measured with Redis's TIME inside the script), waits for its reply,
/// sleeps `gapNs`, and repeats.
final class RedisStaller: InjectorThread, @unchecked Sendable {
    /// Busy-waits on Redis's clock until ARGV[1] microseconds have passed; returns the loop count.
    static let script = """
        local t0 = redis.call('TIME') local s0 = t0[1] * 1000000 + t0[2] local n = 0 \
        repeat local t = redis.call('TIME') n = n + 1 until (t[1] * 1000000 + t[2]) - s0 >= tonumber(ARGV[1]) \
        return n
        """
    let namespace: String
    let address: String
    let busyUs: Int
    let gapNs: Int64
    private let lock2 = NSLock()
    private var sent: [(startNs: Int64, endNs: Int64)] = []
    private(set) var error: String?

    init(namespace: String, address: String, busyUs: Int, gapNs: Int64) {
        self.namespace = namespace
        self.address = address
        self.busyUs = busyUs
        self.gapNs = gapNs
    }

    /// Each EVAL as the client saw it: send -> reply, CLOCK_REALTIME.
    var stalls: [(startNs: Int64, endNs: Int64)] { lock2.withLock { sent } }

    override func body() {
        let client: RedisClient
        do {
            client = try NetworkNamespace.withNamespace(namespace) { try RedisClient(address: address, timeoutMs: 10_000) }
        } catch {
            self.error = "cannot connect the stalling client: \(error)"
            return
        }
        while !shouldQuit {
            let start = realtimeNanoseconds()
            do {
                let reply = try client.command(["EVAL", Self.script, "0", "\(busyUs)"])
                if reply.hasPrefix("(error)") {
                    error = "EVAL failed: \(reply)"
                    return
                }
            } catch {
                self.error = "EVAL failed: \(error)"
                return
            }
            let end = realtimeNanoseconds()
            lock2.withLock { sent.append((start, end)) }
            let wake = SelftestClock.monotonicNs() + gapNs
            while !shouldQuit && SelftestClock.monotonicNs() < wake {
                SelftestClock.sleep(untilMonotonic: min(wake, SelftestClock.monotonicNs() + 5_000_000))
            }
        }
    }
}

/// What the selftest reads from a trace itself (not through netprobe's analysis): every frame that
/// left the tap towards the guest, in the order it left (the qdisc's FIFO order), with the time the
/// same frame passed the bridge (its arrival at the qdisc).
struct RequestPathPackets {
    struct Arrival {
        /// When the frame reached the tap's qdisc: its bridge stamp (frames the host sent on the tap
        /// itself, e.g. IPv6 router solicitations, are not seen at the bridge: the previous frame's).
        var timeNs: Int64
        /// Length on the wire (what a qdisc counts: the Ethernet frame, no FCS).
        var length: Int
        /// Carries Redis bytes (a request), not a bare ACK / SYN / FIN or another protocol.
        var isRequest: Bool
        /// When it was captured leaving the tap.
        var tapTimeNs: Int64
        /// Whether it was seen at the bridge.
        var bridged: Bool
    }
    /// Frames towards the guest, in the order they left the tap.
    var arrivals: [Arrival] = []
    /// First and last request seen at the bridge.
    var firstRequestNs: Int64?
    var lastRequestNs: Int64?
    /// Frames towards the guest seen at the bridge but never at the tap (dropped, or lost).
    var bridgeOnly = 0

    /// Reads `path`: frames towards the guest (any frame at the tap whose source MAC is not the
    /// guest's: the guest's MAC is learnt from Redis's replies) and, by their bytes, their bridge stamps.
    static func read(path: String, bridge: String, tap: String, redis: Endpoint) throws -> RequestPathPackets {
        struct Frame { var timeNs: Int64; var length: Int; var hash: UInt64; var source: UInt64; var isRequest: Bool }
        let reader = try TraceReader(path: path)
        let decoder = PacketDecoder()
        var guestMAC: UInt64?
        var atBridge: [Frame] = [], atTap: [Frame] = []
        var out = RequestPathPackets()
        while let p = try reader.next() {
            let interface = reader.interfaces[p.interface]
            let isBridge = interface.name == bridge
            guard isBridge || interface.name == tap, interface.linkType == .ethernet, p.data.count >= 14 else { continue }
            var source: UInt64 = 0
            for i in 6..<12 { source = source << 8 | UInt64(p.data[i]) }
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325 // FNV-1a of the captured bytes
            for b in p.data { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
            var request = false
            if case let .success(s) = decoder.decode(p.data, linkType: interface.linkType) {
                if s.source == redis { guestMAC = source }
                request = s.destination == redis && s.payloadLength > 0
                if request && isBridge {
                    out.firstRequestNs = min(out.firstRequestNs ?? .max, p.timestampNs)
                    out.lastRequestNs = max(out.lastRequestNs ?? .min, p.timestampNs)
                }
            }
            let f = Frame(timeNs: p.timestampNs, length: p.originalLength, hash: hash, source: source, isRequest: request)
            if isBridge { atBridge.append(f) } else { atTap.append(f) }
        }
        let towardsGuest = { (f: Frame) in f.source != guestMAC }
        var byHash: [UInt64: [Int64]] = [:]
        for f in atBridge where towardsGuest(f) { byHash[f.hash, default: []].append(f.timeNs) }
        var used: [UInt64: Int] = [:]
        var previous: Int64?
        for f in atTap.sorted(by: { $0.timeNs < $1.timeNs }) where towardsGuest(f) {
            var arrival: Int64? = nil
            if let list = byHash[f.hash], used[f.hash, default: 0] < list.count {
                arrival = list[used[f.hash, default: 0]]
                used[f.hash, default: 0] += 1
            }
            let t = arrival ?? min(previous ?? f.timeNs, f.timeNs)
            out.arrivals.append(Arrival(timeNs: t, length: f.length, isRequest: f.isRequest, tapTimeNs: f.timeNs, bridged: arrival != nil))
            previous = t
        }
        out.bridgeOnly = byHash.reduce(0) { $0 + $1.value.count - used[$1.key, default: 0] }
        return out
    }

    /// How many of `intervals` start while requests were flowing.
    func count(_ intervals: [(startNs: Int64, endNs: Int64)]) -> Int {
        guard let a = firstRequestNs, let b = lastRequestNs else { return 0 }
        return intervals.filter { $0.startNs >= a && $0.startNs <= b }.count
    }
}

/// The tbf qdisc's token bucket, replayed over known arrivals: when each packet may leave.
///
/// Linux's tbf (net/sched/sch_tbf.c, tbf_dequeue): the bucket holds up to `burst` bytes' worth
/// of time (buffer = burst / rate), starts full, fills at `rate`; the head packet leaves as soon
/// as the bucket holds its length's worth (length / rate), in arrival order.
struct TokenBucketReplay {
    var rateBytesPerSecond: Double
    var burstBytes: Int

    struct Result {
        /// Per packet: departure - arrival, ns.
        var waitsNs: [Int64]
        /// Mean wait of the packets carrying requests, ns.
        var meanRequestWaitNs: Double
        var requests: Int
        /// Mean (tap stamp - predicted departure): how well the model matches what the kernel did
        /// (timer and softirq latency show here).
        var meanModelErrorNs: Double?
    }

    func run(_ arrivals: [RequestPathPackets.Arrival]) -> Result {
        let buffer = Double(burstBytes) / rateBytesPerSecond * 1e9
        var tokens = buffer
        var lastNs: Int64 = arrivals.first?.timeNs ?? 0
        var previousDeparture = Int64.min
        var waits: [Int64] = []
        waits.reserveCapacity(arrivals.count)
        var sum = 0.0, n = 0
        var errorSum = 0.0, errorCount = 0
        for a in arrivals {
            let cost = Double(a.length) / rateBytesPerSecond * 1e9
            let ready = max(a.timeNs, previousDeparture)
            let available = min(tokens + Double(ready - lastNs), buffer)
            let departure = available >= cost ? ready : ready + Int64((cost - available).rounded(.up))
            tokens = min(tokens + Double(departure - lastNs), buffer) - cost
            lastNs = departure
            previousDeparture = departure
            let wait = departure - a.timeNs
            waits.append(wait)
            if a.isRequest {
                sum += Double(wait)
                n += 1
            }
            errorSum += Double(a.tapTimeNs - departure)
            errorCount += 1
        }
        return Result(waitsNs: waits, meanRequestWaitNs: n > 0 ? sum / Double(n) : 0, requests: n,
                      meanModelErrorNs: errorCount > 0 ? errorSum / Double(errorCount) : nil)
    }
}

/// Runs `tc` (or any command) in the lab's namespace and returns its status and output.
@discardableResult
func selftestRun(_ argv: [String]) -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = argv
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    do { try p.run() } catch { return (127, "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}
