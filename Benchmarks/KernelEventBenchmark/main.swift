// netprobe-kevents-bench: what recording kernel events costs the Redis it watches.
//
//   swift build -c release --product netprobe --product netprobe-kevents-bench
//   sudo .build/release/netprobe-kevents-bench [--setup bridge|host] [--rounds N] [--requests N]
//        [--clients N] [--name LAB] [--readers any|qemu] [--netprobe PATH] [--keep-lab]
//   .build/release/netprobe-kevents-bench --check     # can the recorder run here? (exit 0 or 3)
//
// Brings up a lab (`netprobe lab up --setup bridge --name kevbench`: a TCG guest behind virbr0 +
// vnet0 in namespace np-kevbench; or --setup host: redis-server on the namespace's loopback, the
// worst case for the recorder: fast requests, every packet an event on lo), then, in one
// invocation, alternates redis-benchmark runs (inside the namespace, `-c 10 -n N -t get --csv`)
// without and with a KernelEventRecorder on the lab's interfaces (virbr0 and vnet0, or lo), in the
// order off/on, on/off, off/on ... so that neither mode always goes first.
// While recording, a thread does what a capture would: every 100 ms it drains the recorder and
// encodes the events as a KernelEventBatch (the bytes are counted, then dropped). Each run with
// events is compared with the run without next to it in the same round.
// Prints every run, then per mode the median throughput, the median of the per-round ratios,
// events per request, bytes per event, samples the kernel lost, and the CPU time this process
// used per run (the drain and encode thread; the kernel's cost of writing the samples is paid by
// the tasks that hit the tracepoints and shows only in the throughput).
// The lab is taken down at the end (unless --keep-lab), also when a run fails.
import Foundation
import NetprobeCapture
import NetprobeCore

struct Options {
    var setup = "bridge"
    var check = false
    var rounds = 4
    var requests = 20_000
    var clients = 10
    var name = "kevbench"
    var readers = "any"
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
               netprobe-kevents-bench --check
          --setup     bridge (TCG guest behind virbr0 + vnet0; default) or host (Redis on the
                      namespace's loopback: fast requests, the recorder's worst case)
          --rounds    rounds of (without, with) events; default 4
          --requests  redis-benchmark -n (GET); default 20000
          --clients   redis-benchmark -c; default 10
          --name      lab name (namespace np-NAME); default kevbench
          --readers   copies to readers: any reader of an skb seen on the devices (default), or
                      only QEMU's threads (filtered in the kernel)
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
        case "--netprobe": o.netprobe = value(a)
        case "--keep-lab": o.keepLab = true
        case "-h", "--help": usage()
        default: say("unknown argument \(a)"); usage()
        }
    }
    return o
}

/// Runs a command to its end; (status, stdout + stderr).
func run(_ argv: [String]) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = argv
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
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

func loadAverage() -> String {
    ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
}

/// Drains a recorder every 100 ms and encodes what it got, as a capture would.
final class Drainer: @unchecked Sendable {
    let recorder: KernelEventRecorder
    private let lock = NSLock()
    private var running = true
    private let done = DispatchSemaphore(value: 0)
    private(set) var events = 0
    private(set) var bytes = 0
    private(set) var failure: String?

    init(_ recorder: KernelEventRecorder) {
        self.recorder = recorder
        let t = Thread { [self] in
            while isRunning {
                usleep(100_000)
                take(recorder.drain())
            }
            done.signal()
        }
        t.name = "kevents-drain"
        t.start()
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
        done.wait()
        take(recorder.stop())
    }
}

struct Run {
    var round: Int
    var events: Bool
    var rps: Double
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
    if o.readers == "qemu" && qemu == nil { throw BenchError("--readers qemu: the lab has no QEMU") }
    let host = String(state.redisAddress.split(separator: ":")[0])
    let interfaces = state.vantages.map { KernelEventInterface(name: $0.interface, namespace: $0.namespace) }

    func redisBenchmark() throws -> Double {
        let argv = ["ip", "netns", "exec", state.namespace, "redis-benchmark", "-h", host,
                    "-c", "\(o.clients)", "-n", "\(o.requests)", "-t", "get", "--csv"]
        let (status, text) = try run(argv)
        guard status == 0 else { throw BenchError("\(argv.joined(separator: " ")) failed (\(status)):\n\(text)") }
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            if f.count >= 2, f[0] == "GET", let rps = Double(f[1]) { return rps }
        }
        throw BenchError("could not read redis-benchmark's CSV:\n\(text)")
    }

    func measure(round: Int, events: Bool) throws -> Run {
        guard events else { return Run(round: round, events: false, rps: try redisBenchmark()) }
        let recorder = try KernelEventRecorder(interfaces: interfaces, readers: o.readers == "qemu" ? [qemu!] : nil)
        let cpu0 = cpuSeconds()
        try recorder.start()
        let drainer = Drainer(recorder)
        let rps = try redisBenchmark()
        drainer.finish()
        if let f = drainer.failure { throw BenchError("encoding failed: \(f)") }
        return Run(round: round, events: true, rps: rps, recorded: drainer.events, bytes: drainer.bytes,
                   lost: recorder.statistics.lostSamples, cpu: cpuSeconds() - cpu0)
    }

    say("warm-up")
    _ = try redisBenchmark()
    out("netprobe-kevents-bench: lab \(o.name) (\(o.setup), \(state.hypervisor ?? "no guest"); events on \(interfaces.map(\.name).joined(separator: ", "))), redis-benchmark -c \(o.clients) -n \(o.requests) -t get, \(o.rounds) rounds, readers \(o.readers); load average \(loadAverage())")
    var runs: [Run] = []
    for round in 1...o.rounds {
        let order = round % 2 == 1 ? [false, true] : [true, false]
        for events in order {
            let r = try measure(round: round, events: events)
            runs.append(r)
            var line = "  round \(round)  " + (events ? "events on " : "events off") + String(format: " %8.0f req/s", r.rps)
            if events {
                line += String(format: "   %7d events (%.1f per request), %.1f bytes/event, lost %llu, CPU %.2f s",
                               r.recorded, Double(r.recorded) / Double(o.requests), Double(r.bytes) / Double(max(1, r.recorded)), r.lost, r.cpu)
            }
            out(line)
        }
    }
    let on = runs.filter(\.events), off = runs.filter { !$0.events }
    let ratios = (1...o.rounds).compactMap { k -> Double? in
        guard let a = on.first(where: { $0.round == k }), let b = off.first(where: { $0.round == k }) else { return nil }
        return a.rps / b.rps
    }
    out(String(format: "events off: median %.0f req/s; events on: median %.0f req/s; ratio of medians %.3f; ",
               median(off.map(\.rps)), median(on.map(\.rps)), median(on.map(\.rps)) / median(off.map(\.rps)))
        + "per-round ratios " + ratios.map { String(format: "%.3f", $0) }.joined(separator: " ") + String(format: " (median %.3f)", median(ratios)))
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
