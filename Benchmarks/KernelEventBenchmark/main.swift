// netprobe-kevents-bench: what recording kernel events costs the Redis it watches.
//
//   swift build -c release --product netprobe --product netprobe-kevents-bench
//   sudo .build/release/netprobe-kevents-bench [--setup bridge|host] [--rounds N] [--requests N]
//        [--clients N] [--name LAB] [--readers any|qemu] [--kinds all|essential] [--bpftrace]
//        [--netprobe PATH] [--keep-lab]
//   .build/release/netprobe-kevents-bench --check     # can the recorder run here? (exit 0 or 3)
//
// Brings up a lab (`netprobe lab up --setup bridge --name kevbench`: a TCG guest behind virbr0 +
// vnet0 in namespace np-kevbench; or --setup host: redis-server on the namespace's loopback, the
// worst case for the recorder: fast requests, every packet an event on lo), then, in one
// invocation, alternates redis-benchmark runs (inside the namespace, `-c 10 -n N -t get --csv`)
// without and with a KernelEventRecorder on the lab's interfaces (virbr0 and vnet0, or lo), in the
// order off/on, on/off, off/on ... so that neither mode always goes first. With --bpftrace a third
// mode runs a bpftrace script over the same tracepoints and device filters that only counts per
// tracepoint (no per-event output): what an eBPF-based recorder would cost at the least; the order
// of the three modes rotates from round to round.
// While recording, a thread does what a capture would: every 100 ms it drains the recorder and
// encodes the events as a KernelEventBatch (the bytes are counted, then dropped). Each run with
// events is compared with the run without next to it in the same round.
// Prints every run, then per mode the median throughput, the median of the per-round ratios, the
// CPU time per request (the server process: QEMU or redis-server, from /proc; redis-benchmark; this
// process), which a machine shared with other work disturbs much less than the throughput,
// events per request, bytes per event, samples the kernel lost, and the CPU time this process
// used per run (the drain and encode thread; the kernel's cost of writing the samples is paid by
// the tasks that hit the tracepoints and shows only in the throughput).
// The lab is taken down at the end (unless --keep-lab), also when a run fails.
import Foundation
import NetprobeCapture
import NetprobeCore
import NetprobeSystem

struct Options {
    var setup = "bridge"
    var check = false
    var rounds = 4
    var requests = 20_000
    var clients = 10
    var name = "kevbench"
    var readers = "any"
    var kinds = "all"
    var bpftrace = false
    var netprobe: String?
    var keepLab = false
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

func say(_ s: String) { FileHandle.standardError.write(Data("kevents-bench: \(s)\n".utf8)) }
func out(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }

func usage() -> Never {
    FileHandle.standardError.write(Data("""
        usage: netprobe-kevents-bench [--setup bridge|host] [--rounds N] [--requests N] [--clients N]
                                      [--name LAB] [--readers any|qemu] [--netprobe PATH] [--keep-lab]
                                      [--kinds all|essential] [--bpftrace]
               netprobe-kevents-bench --check
          --setup     bridge (TCG guest behind virbr0 + vnet0; default) or host (Redis on the
                      namespace's loopback: fast requests, the recorder's worst case)
          --rounds    rounds of (without, with) events; default 4
          --requests  redis-benchmark -n (GET); default 20000
          --clients   redis-benchmark -c; default 10
          --name      lab name (namespace np-NAME); default kevbench
          --readers   copies to readers: any reader of an skb seen on the devices (default), or
                      only QEMU's threads (filtered in the kernel)
          --kinds     all (every tracepoint the recorder knows; default) or essential
                      (KernelEventKind.essential: start_xmit, netif_receive_skb, copies, qdisc
                      dequeues, drops)
          --bpftrace  also run a bpftrace script on the same tracepoints with the same device
                      filters that only counts (no per-event output): the floor of an eBPF recorder
          --netprobe  the netprobe binary; default: the one next to this benchmark
          --keep-lab  leave the lab up at the end
          --check     only say whether the kernel event recorder can run here (and why not)

        """.utf8))
    exit(2)
}

func parseOptions() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst()
    func value(_ flag: String) -> String {
        guard let v = args.popFirst() else { say("\(flag) needs a value"); usage() }
        return v
    }
    func count(_ flag: String) -> Int {
        guard let n = Int(value(flag)), n > 0 else { say("\(flag) needs a positive number"); usage() }
        return n
    }
    while let a = args.popFirst() {
        switch a {
        case "--setup":
            o.setup = value(a)
            guard ["bridge", "host"].contains(o.setup) else { usage() }
        case "--check": o.check = true
        case "--rounds": o.rounds = count(a)
        case "--requests": o.requests = count(a)
        case "--clients": o.clients = count(a)
        case "--name": o.name = value(a)
        case "--readers":
            o.readers = value(a)
            guard ["any", "qemu"].contains(o.readers) else { usage() }
        case "--kinds":
            o.kinds = value(a)
            guard ["all", "essential"].contains(o.kinds) else { usage() }
        case "--bpftrace": o.bpftrace = true
        case "--netprobe": o.netprobe = value(a)
        case "--keep-lab": o.keepLab = true
        case "-h", "--help": usage()
        default: say("unknown argument \(a)"); usage()
        }
    }
    return o
}

/// Runs a command to its end; (exit code, stdout + stderr).
func run(_ argv: [String]) throws -> (Int32, String) {
    let r = try ChildProcess.run(argv, timeout: 600)
    return (r.status.code, r.stdout + r.stderr)
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func cpuSeconds() -> Double {
    var u = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
}

/// CPU seconds (user + system) of another process, from /proc/PID/stat (clock ticks).
func processCPUSeconds(_ pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // After the command name: state is field 3, utime 14 and stime 15 (1-based, whole line).
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

func loadAverage() -> String {
    ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
}

/// Drains a recorder every 100 ms and encodes what it got, as a capture would.
final class Drainer: @unchecked Sendable {
    let recorder: KernelEventRecorder
    private let lock = NSLock()
    private var running = true
    private var thread: JoinableThread?
    private(set) var events = 0
    private(set) var bytes = 0
    private(set) var failure: String?

    init(_ recorder: KernelEventRecorder) throws {
        self.recorder = recorder
        thread = try JoinableThread(name: "kevents-drain") { [self] in
            while isRunning {
                usleep(100_000)
                take(recorder.drain())
            }
        }
    }

    private var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    private func take(_ batch: [KernelEvent]) {
        guard !batch.isEmpty else { return }
        do {
            let b = try KernelEventBatch.encode(batch)
            lock.lock()
            events += batch.count
            bytes += b.count
            lock.unlock()
        } catch {
            lock.lock()
            failure = "\(error)"
            lock.unlock()
        }
    }

    func finish() {
        lock.lock()
        running = false
        lock.unlock()
        thread?.join()
        thread = nil
        take(recorder.stop())
    }
}

enum Mode: String { case off = "events off", events = "events on", bpftrace = "bpftrace" }

struct Run {
    var round: Int
    var mode: Mode
    var rps: Double
    /// CPU microseconds per request: the server (QEMU or redis-server), redis-benchmark, and this
    /// process (the recorder's drain thread and the encoding).
    var serverCPU = 0.0, clientCPU = 0.0, selfCPU = 0.0
    var cpuPerRequest: Double { serverCPU + clientCPU + selfCPU }
    var recorded = 0
    var bytes = 0
    var lost: UInt64 = 0
    var cpu = 0.0
}

let o = parseOptions()
if o.check {
    do {
        let r = try KernelEventRecorder(interfaces: [KernelEventInterface(name: "lo")], mountTracefs: false)
        out("kernel events: available (\(r.kinds.count) tracepoints, \(r.statistics.cpus) CPUs)")
        exit(0)
    } catch {
        out("\(error)")
        exit(3)
    }
}
guard geteuid() == 0 else {
    say("needs root (a lab, perf events on tracepoints)")
    exit(1)
}
let netprobe = o.netprobe ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("netprobe").path
guard FileManager.default.isExecutableFile(atPath: netprobe) else {
    say("no netprobe binary at \(netprobe): build it (swift build -c release --product netprobe) or give --netprobe")
    exit(1)
}

var labIsUp = false
@MainActor func labDown() {
    guard labIsUp, !o.keepLab else { return }
    let (status, text) = (try? run([netprobe, "lab", "down", o.name])) ?? (1, "could not run netprobe")
    if status != 0 { say("lab down failed: \(text)") }
    labIsUp = false
}

do {
    say("lab up --setup \(o.setup) --name \(o.name)")
    let (upStatus, upText) = try run([netprobe, "lab", "up", "--setup", o.setup, "--name", o.name])
    labIsUp = true
    guard upStatus == 0 else { throw BenchError("lab up failed:\n\(upText)") }
    let (_, json) = try run([netprobe, "lab", "status", o.name, "--format", "json"])
    let state = try JSONDecoder().decode(LabState.self, from: Data(json.utf8))
    let qemu = state.processes.first(where: { $0.what == "qemu" })?.pid
    let server = state.processes.first(where: { $0.what == "qemu" || $0.what.contains("redis") })?.pid
    if o.readers == "qemu" && qemu == nil { throw BenchError("--readers qemu: the lab has no QEMU") }
    let host = String(state.redisAddress.split(separator: ":")[0])
    let interfaces = state.vantages.map { KernelEventInterface(name: $0.interface, namespace: $0.namespace) }

    /// CPU seconds of the last redis-benchmark (wait4's rusage), the server and this process
    /// during it.
    var lastClientCPU = 0.0, lastServerCPU = 0.0, lastSelfCPU = 0.0
    func redisBenchmark() throws -> Double {
        let s0 = server.map(processCPUSeconds) ?? 0, r0 = cpuSeconds()
        let argv = ["ip", "netns", "exec", state.namespace, "redis-benchmark", "-h", host,
                    "-c", "\(o.clients)", "-n", "\(o.requests)", "-t", "get", "--csv"]
        let child = try ChildProcess(argv, stdout: .capture, stderr: .capture)
        guard let status = child.wait(timeout: 600) else {
            child.stop()
            throw BenchError("\(argv.joined(separator: " ")) did not finish within 600 s: the lab's Redis stopped answering")
        }
        lastClientCPU = child.cpuSeconds ?? 0
        lastServerCPU = (server.map(processCPUSeconds) ?? 0) - s0
        lastSelfCPU = cpuSeconds() - r0
        let text = child.standardOutput
        guard status.succeeded else { throw BenchError("\(argv.joined(separator: " ")) failed (\(status)):\n\(text)\(child.standardError)") }
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            if f.count >= 2, f[0] == "GET", let rps = Double(f[1]) { return rps }
        }
        throw BenchError("could not read redis-benchmark's CSV:\n\(text)")
    }

    let kinds = o.kinds == "all" ? KernelEventKind.allCases : KernelEventKind.essential
    let names = interfaces.map(\.name)

    /// A bpftrace script over the same tracepoints and device filters, counting only.
    func bpftraceScript() -> String {
        let deviceTest = names.map { "str(args->name) == \"\($0)\"" }.joined(separator: " || ")
        var lines: [String] = ["BEGIN { printf(\"ready\\n\"); }"]
        for k in kinds {
            let (group, name) = k.tracepoint
            switch k {
            case .devQueue, .devStartXmit, .devXmit, .rxEntry, .receiveSkbEntry, .receiveSkb:
                lines.append("tracepoint:\(group):\(name) /\(deviceTest)/ { @[probe] = count(); }")
            case .copyToReader:
                lines.append("tracepoint:\(group):\(name) \(o.readers == "qemu" ? "/pid == \(qemu!)/ " : ""){ @[probe] = count(); }")
            case .qdiscDequeue:
                lines.append("tracepoint:\(group):\(name) /args->skbaddr != 0/ { @[probe] = count(); }")
            case .drop:
                lines.append("tracepoint:\(group):\(name) { @[probe] = count(); }")
            case .schedSwitch:
                // The recorder follows QEMU's threads; bpftrace's pid is the thread group of the
                // thread leaving the CPU, close enough for the cost of the probe.
                if let qemu { lines.append("tracepoint:\(group):\(name) /pid == \(qemu)/ { @[probe] = count(); }") }
            case .schedWakeup:
                if let qemu { lines.append("tracepoint:\(group):\(name) /args->pid == \(qemu)/ { @[probe] = count(); }") }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One run, with the CPU time each side used per request.
    func measure(round: Int, mode: Mode) throws -> Run {
        var r = try measureRun(round: round, mode: mode)
        let n = Double(o.requests) / 1e6
        r.serverCPU = lastServerCPU / n
        r.clientCPU = lastClientCPU / n
        // With events: the recorder's thread and the encoding from start() to the last drain.
        r.selfCPU = (mode == .events ? r.cpu : lastSelfCPU) / n
        return r
    }

    func measureRun(round: Int, mode: Mode) throws -> Run {
        switch mode {
        case .off:
            return Run(round: round, mode: .off, rps: try redisBenchmark())
        case .events:
            let recorder = try KernelEventRecorder(interfaces: interfaces, readers: o.readers == "qemu" ? [qemu!] : nil, kinds: kinds,
                                                   scheduled: qemu.map { [$0] } ?? [])
            let cpu0 = cpuSeconds()
            try recorder.start()
            let drainer = try Drainer(recorder)
            let rps = try redisBenchmark()
            drainer.finish()
            if let f = drainer.failure { throw BenchError("encoding failed: \(f)") }
            return Run(round: round, mode: .events, rps: rps, recorded: drainer.events, bytes: drainer.bytes,
                       lost: recorder.statistics.lostSamples, cpu: cpuSeconds() - cpu0)
        case .bpftrace:
            let script = NSTemporaryDirectory() + "kevents-bench-\(getpid()).bt"
            try bpftraceScript().write(toFile: script, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: script) }
            let p = try ChildProcess(["bpftrace", script], stdout: .capture, stderr: .capture)
            defer { p.stop() }
            var ready = false
            for _ in 0..<600 where !ready {
                usleep(100_000)
                let running = p.isRunning // reads what it printed so far
                ready = p.standardOutput.contains("ready")
                if !running { break }
            }
            guard ready else { throw BenchError("bpftrace did not start: \(p.standardOutput)\(p.standardError)") }
            let rps = try redisBenchmark()
            // bpftrace prints its maps and exits on SIGINT; now and then it misses the first one.
            for _ in 0..<30 where p.isRunning {
                p.signal(SIGINT)
                _ = p.wait(timeout: 2)
            }
            _ = p.wait(orStopAfter: 5)
            let text = p.standardOutput
            let counted = text.split(separator: "\n").filter { $0.hasPrefix("@[") }.compactMap { Int($0.split(separator: " ").last ?? "") }.reduce(0, +)
            return Run(round: round, mode: .bpftrace, rps: rps, recorded: counted)
        }
    }

    say("warm-up")
    _ = try redisBenchmark()
    out("netprobe-kevents-bench: lab \(o.name) (\(o.setup), \(state.hypervisor ?? "no guest"); events on \(interfaces.map(\.name).joined(separator: ", "))), redis-benchmark -c \(o.clients) -n \(o.requests) -t get, \(o.rounds) rounds, readers \(o.readers); load average \(loadAverage())")
    var runs: [Run] = []
    let modes: [Mode] = o.bpftrace ? [.off, .events, .bpftrace] : [.off, .events]
    for round in 1...o.rounds {
        // off/on, on/off, ... (with bpftrace: the three modes rotate).
        let order: [Mode]
        if o.bpftrace {
            let k = (round - 1) % 3
            order = Array(modes[k...]) + Array(modes[..<k])
        } else {
            order = round % 2 == 1 ? modes : Array(modes.reversed())
        }
        for mode in order {
            let r = try measure(round: round, mode: mode)
            runs.append(r)
            var line = "  round \(round)  " + mode.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0) + String(format: " %8.0f req/s", r.rps)
                + String(format: "  CPU/request %6.1f us (server %.1f, client %.1f, netprobe %.1f)", r.cpuPerRequest, r.serverCPU, r.clientCPU, r.selfCPU)
            if mode == .events {
                line += String(format: "   %7d events (%.1f per request), %.1f bytes/event, lost %llu, CPU %.2f s",
                               r.recorded, Double(r.recorded) / Double(o.requests), Double(r.bytes) / Double(max(1, r.recorded)), r.lost, r.cpu)
            } else if mode == .bpftrace {
                line += String(format: "   %7d events counted (%.1f per request)", r.recorded, Double(r.recorded) / Double(o.requests))
            }
            out(line)
        }
    }
    let off = runs.filter { $0.mode == .off }
    out("netprobe-kevents-bench: kinds \(o.kinds) (\(kinds.map(\.description).joined(separator: " ")))")
    for mode in modes.dropFirst() {
        let on = runs.filter { $0.mode == mode }
        let ratios = (1...o.rounds).compactMap { k -> Double? in
            guard let a = on.first(where: { $0.round == k }), let b = off.first(where: { $0.round == k }) else { return nil }
            return a.rps / b.rps
        }
        out(mode.rawValue + String(format: ": median %.0f req/s against %.0f off; ratio of medians %.3f; ",
                   median(on.map(\.rps)), median(off.map(\.rps)), median(on.map(\.rps)) / median(off.map(\.rps)))
            + "per-round ratios " + ratios.map { String(format: "%.3f", $0) }.joined(separator: " ") + String(format: " (median %.3f)", median(ratios)))
        let cpuRatios = (1...o.rounds).compactMap { k -> Double? in
            guard let a = on.first(where: { $0.round == k }), let b = off.first(where: { $0.round == k }) else { return nil }
            return a.cpuPerRequest / b.cpuPerRequest
        }
        out(mode.rawValue + String(format: ": CPU per request median %.1f us against %.1f off (+%.1f us, %+.1f %%); per-round ratios ",
                                   median(on.map(\.cpuPerRequest)), median(off.map(\.cpuPerRequest)),
                                   median(on.map(\.cpuPerRequest)) - median(off.map(\.cpuPerRequest)),
                                   (median(on.map(\.cpuPerRequest)) / median(off.map(\.cpuPerRequest)) - 1) * 100)
            + cpuRatios.map { String(format: "%.3f", $0) }.joined(separator: " ") + String(format: " (median %.3f)", median(cpuRatios)))
    }
    let on = runs.filter { $0.mode == .events }
    out(String(format: "events on: %.1f events per request, %.1f bytes per event stored, lost samples %llu, recorder CPU %.2f s per run (median)",
               median(on.map { Double($0.recorded) / Double(o.requests) }), median(on.map { Double($0.bytes) / Double(max(1, $0.recorded)) }),
               on.map(\.lost).reduce(0, +), median(on.map(\.cpu))))
    out("load average after: \(loadAverage())")
    labDown()
} catch {
    say("\(error)")
    labDown()
    exit(1)
}
