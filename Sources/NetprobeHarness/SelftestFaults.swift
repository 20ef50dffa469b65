import Foundation
import Glibc
import NetprobeCapture
import NetprobeCore
import NetprobeSystem

/// The faults `netprobe selftest` injects, one at a time, each at a known place and of a known size.
public enum SelftestFault: String, CaseIterable, Codable, Sendable {
    /// A tbf qdisc on the tap: request packets queue there.
    case tapQueue = "tap-queue"
    /// QEMU stopped (SIGSTOP) for a fixed time at a fixed period: the guest gets no CPU.
    case starvedGuest = "starved-guest"
    /// A second client runs a Lua busy loop (EVAL) on the single-threaded server.
    case redisStall = "redis-stall"
    /// QEMU's thread that reads the tap (the virtual NIC's backend) gets only a slice of CPU
    /// time per period (cgroup cpu quota on that thread alone): requests wait in the tun queue.
    case slowBackend = "slow-backend"

    /// The segment the fault must show up in.
    var segment: SegmentName {
        switch self {
        case .tapQueue: .tap
        case .starvedGuest: .guestStack
        case .redisStall: .redis
        case .slowBackend: .vnicBackend
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
                + "measured = the p99 of the requests' wait behind other commands on Redis's timeline, less the baseline's p50 wait. netprobe caps a wait at the blocking "
                + "command's INFO time, so a request held through a whole EVAL shows exactly that: the check is that the waits are found "
                + "and put on redis (tail verdict redis, guest-stack p99 not grown), not that they exceed it."
        case .slowBackend:
            return "slow-backend: injected = the mean time request frames waited in the tap's tun queue until QEMU copied them, measured beside "
                + "the capture by bpftrace over the same tracepoints (net_dev_start_xmit on the lab's tap -> skb_copy_datagram_iovec in QEMU's "
                + "process, per skb in the kernel: no capture stamps, no netprobe code). The fault: QEMU's thread that copies from the tap "
                + "(found in the baseline trace's kernel events) alone in a cgroup with a CPU quota; the vCPU thread is not limited. measured = the "
                + "vnic-backend segment's mean over all requests. The same thread also writes the guest's replies to the tap, so the fault "
                + "delays them too; under TCG no host event shows when a reply was ready in the guest, so that part stays in guest-stack "
                + "(shown, not checked)."
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
    private var thread: JoinableThread?

    var shouldQuit: Bool { lock.withLock { quit } }

    /// Starts `body` on its thread (or, when the system refuses a thread, records why).
    func start() {
        do {
            thread = try JoinableThread(name: "netprobe-fault") { [self] in body() }
        } catch {
            failed("cannot start the injector's thread: \(error)")
        }
    }

    /// Subclasses do their work here until `shouldQuit`.
    func body() {}

    /// Called when the thread cannot start.
    func failed(_ reason: String) {}

    /// Stops the thread and waits for it to finish (it undoes its fault before it returns).
    func finish() {
        lock.withLock { quit = true }
        thread?.join()
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
    override func failed(_ reason: String) { error = reason }

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
                error = "\(SystemCallError.current("kill(\(pid), SIGSTOP)"))"
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
    override func failed(_ reason: String) { error = reason }

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


/// A fault running on its own thread while a capture runs: what `capture(_:during:fault:)` needs.
protocol FaultInjector: AnyObject {
    func start()
    /// Stops the fault and waits until it is undone.
    func finish()
    /// Why the fault could not be injected as asked, if it could not.
    var error: String? { get }
}

extension DutyCycleStopper: FaultInjector {}
extension RedisStaller: FaultInjector {}
