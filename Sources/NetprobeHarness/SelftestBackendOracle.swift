import Foundation
import Glibc
import NetprobeCapture
import NetprobeSystem

/// The slow-backend fault's size, measured without netprobe: a bpftrace program over the same
/// tracepoints netprobe records, running beside the capture. It keys each request frame by its
/// skb in the kernel and takes the time from the tap's transmit (`net:net_dev_start_xmit`, the
/// frame entering the tun queue) to QEMU's copy of it (`skb:skb_copy_datagram_iovec` in QEMU's
/// process): no capture stamps, no matching by time, no netprobe code. Only the lab's tap counts
/// (by ifindex and network namespace, through BTF), and only frames longer than a bare TCP
/// segment (66 bytes with timestamps): the requests.
///
/// It also follows the backend thread on and off the CPUs (`sched:sched_switch`), to say for
/// how much of those waits the thread was running at all: what the report's "slow backend or
/// starved hypervisor?" evidence tries to tell from the packets alone.
final class BackendWaitOracle {
    struct Result {
        /// Request frames copied by QEMU, and their mean wait in the tun queue, ns.
        var requests: Int
        var meanWaitNs: Double?
        /// The share of those waits during which the backend thread was on a CPU.
        var onCPUShare: Double?
        /// Request copies per QEMU thread.
        var copiesByThread: [Int32: Int]
    }

    /// $1 QEMU's pid, $2 the lab namespace's inode, $3 the tap's ifindex, $4 the backend thread.
    /// No lists of tracepoints (bpftrace 0.17 fails to load a tracepoint beside a list that holds
    /// it too); `@on` is first assigned a time, so that bpftrace types it unsigned like `nsecs`.
    static let script = """
        BEGIN { printf("ready\\n"); }
        tracepoint:sched:sched_switch /args->next_pid == $4/ { @on = nsecs; }
        tracepoint:sched:sched_switch /args->prev_pid == $4 && @on != 0/ { @cum = @cum + (nsecs > @on ? nsecs - @on : 0); @on = 0; }
        tracepoint:net:net_dev_start_xmit
        /((struct sk_buff *)args->skbaddr)->dev->ifindex == $3 && ((struct sk_buff *)args->skbaddr)->dev->nd_net.net->ns.inum == (uint32)$2/ {
          $t = nsecs;
          @q[args->skbaddr] = $t; @ql[args->skbaddr] = args->len;
          @c0[args->skbaddr] = @cum + (@on != 0 && $t > @on ? $t - @on : 0);
        }
        tracepoint:skb:skb_copy_datagram_iovec /pid == $1 && @q[args->skbaddr] != 0/ {
          $t = nsecs;
          $w = $t - @q[args->skbaddr];
          if (@ql[args->skbaddr] > 66) {
            @waits = count(); @waitsum = sum($w); @tids[tid] = count();
            // The backend thread's time on a CPU during this wait. Unsigned arithmetic: events on
            // two CPUs can race by a few ns, so no difference is allowed below 0 or above the wait.
            $c1 = @cum + (@on != 0 && $t > @on ? $t - @on : 0);
            $on = $c1 > @c0[args->skbaddr] ? $c1 - @c0[args->skbaddr] : 0;
            @oncpusum = sum($on < $w ? $on : $w);
          }
          delete(@q[args->skbaddr]); delete(@ql[args->skbaddr]); delete(@c0[args->skbaddr]);
        }
        END { clear(@q); clear(@ql); clear(@c0); clear(@on); clear(@cum); }
        """

    struct Failure: Error, CustomStringConvertible { var description: String }

    private let child: ChildProcess
    let command: String

    /// Starts bpftrace (it writes its program into `directory`) and waits until it is attached.
    init(directory: String, qemuPid: pid_t, backendTid: pid_t, namespace: String, tap: String) throws {
        guard ChildProcess.find("bpftrace") != nil else {
            throw Failure(description: "bpftrace is not installed: slow-backend needs it to measure the injected wait without netprobe (apt-get install bpftrace; scripts/deps installs it)")
        }
        var st = stat()
        guard stat("\(NetworkNamespace.directory)/\(namespace)", &st) == 0 else {
            throw Failure(description: "\(SystemCallError.current("stat(\(NetworkNamespace.directory)/\(namespace))"))")
        }
        let ifindex = try NetworkNamespace.withNamespace(namespace) { if_nametoindex(tap) }
        guard ifindex != 0 else { throw Failure(description: "no interface \(tap) in namespace \(namespace)") }
        let path = "\(directory)/slow-backend.bt"
        try Self.script.write(toFile: path, atomically: true, encoding: .utf8)
        let argv = ["bpftrace", path, "\(qemuPid)", "\(st.st_ino)", "\(ifindex)", "\(backendTid)"]
        command = argv.joined(separator: " ")
        child = try ChildProcess(argv, stdout: .capture, stderr: .capture)
        // Loading BTF and attaching takes a few seconds on this kind of machine.
        let deadline = Date().addingTimeInterval(60)
        while !child.standardOutput.contains("ready") {
            guard child.isRunning, Date() < deadline else {
                child.stop()
                throw Failure(description: "bpftrace did not start (\(command)): \(child.standardError.suffix(400))")
            }
            usleep(100_000)
        }
    }

    deinit { child.stop() }

    /// Stops bpftrace (SIGINT: it prints its maps and exits) and reads what it measured.
    func finish() throws -> Result {
        // bpftrace 0.17 now and then misses the first SIGINT.
        for _ in 0..<15 where child.isRunning {
            child.signal(SIGINT)
            _ = child.wait(timeout: 2)
        }
        _ = child.wait(orStopAfter: 5)
        guard let r = Self.parse(child.standardOutput) else {
            throw Failure(description: "bpftrace printed no figures (\(command)): \(child.standardOutput.suffix(400)) \(child.standardError.suffix(400))")
        }
        return r
    }

    /// Reads the maps bpftrace prints at exit (`@name: value`, `@name[key]: value`).
    static func parse(_ text: String) -> Result? {
        var values: [String: Double] = [:]
        var tids: [Int32: Int] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("@") {
            let parts = line.dropFirst().split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let v = Double(parts[1].trimmingCharacters(in: .whitespaces)) else { continue }
            let name = String(parts[0])
            if name.hasPrefix("tids["), name.hasSuffix("]"), let t = Int32(name.dropFirst(5).dropLast()) {
                tids[t] = Int(v)
            } else {
                values[name] = v
            }
        }
        guard text.contains("ready") else { return nil }
        let n = values["waits"] ?? 0, sum = values["waitsum"] ?? 0
        return Result(requests: Int(n), meanWaitNs: n > 0 ? sum / n : nil,
                      onCPUShare: sum > 0 ? values["oncpusum"].map { $0 / sum } : nil, copiesByThread: tids)
    }
}
