// netprobe-capture-bench: what `netprobe capture` costs the Redis it watches.
//
//   swift build -c release --product netprobe
//   sudo swift run -c release netprobe-capture-bench [--setup host|bridge] [--rounds N] [--requests N]
//        [--clients N] [--name LAB] [--netprobe PATH] [--pin together|split|none] [--tcpdump] [--floor] [--keep-lab]
//        [--capture-wrap 'CMD ARGS'] [--capture-arg ARG]... [--modes LIST]
//
// Brings up a lab (`netprobe lab up --setup S --name capbench`, namespace np-capbench), then, in one
// invocation, alternates redis-benchmark runs (inside the namespace, `-c 10 -t set,get --csv`)
// without a capture and with `netprobe capture` on the lab's vantage interfaces (host: lo in the
// namespace; bridge: virbr0 + vnet0), with --immediate-mode and with --no-immediate-mode (block
// delivery), with --tcpdump also one tcpdump per interface as a reference, and with --floor a
// null capture (below) as the floor any libpcap capture can reach, in A B A B order:
//   round 1: without, immediate, without, block
//   round 2: without, block, without, immediate      (the order of the modes rotates)
// Each capture run is compared with the run without capture just before it. Per mode it reports
// the median throughput with and without, their ratio, the kernel drops (pcap_stats ps_drop, as
// `netprobe capture` prints them) and the CPU time of the capture process (rusage from wait4:
// user + system over the capture's whole life). The load average is printed before and after (the
// machine may be shared). The lab is always taken down: on success, on error and on
// SIGINT/SIGTERM/SIGHUP. Exit status 1 when any capture dropped packets or failed.
//
// The null capture (--floor) is this benchmark run again as a child, with the hidden first argument
// --null-capture: it enters the lab's namespace as netprobe capture does, opens every vantage
// interface with the same LiveCapture and netprobe capture's default settings (snap length 2048,
// 64 MiB ring, nanosecond stamps, block delivery with a 100 ms timeout, the kernel BPF filter,
// PACKET_IGNORE_OUTGOING on lo), and then only polls and discards (pcap_dispatch with an empty
// callback): no file, no netlink samples, no Redis INFO. What it costs Redis is the kernel's
// per-packet work (the packet socket's filter, copy and stamp) plus the cheapest possible reader.
import Foundation
import NetprobeCapture
import NetprobeCore
import NetprobeSystem

// MARK: options

struct Options {
    var setup = "host"
    var rounds = 6
    var requests: Int?
    var tcpdump = false
    /// Also run the null capture (see the top of the file) as the floor for any libpcap capture.
    var floor = false
    /// For experiments: a command put in front of every capture process (e.g. "nice -n 10"), and
    /// extra arguments for netprobe capture (e.g. -s 128).
    var captureWrap: [String] = []
    var captureArgs: [String] = []
    /// Only these modes (default: immediate and block, plus tcpdump and floor when asked for).
    var modes: [Mode]?
    var clients = 10
    var name = "capbench"
    var netprobe: String?
    var keepLab = false
    /// Where the lab's Redis (or QEMU) and redis-benchmark run: together on CPU 0, split over CPUs
    /// 0 and 1, or wherever the scheduler likes. The capture is never pinned. Default: together for
    /// host, none for bridge (see usage()).
    var pin: String?
}

func usage() -> Never {
    FileHandle.standardError.write(Data("""
        usage: netprobe-capture-bench [--setup host|bridge] [--rounds N] [--requests N] [--clients N]
                                      [--name LAB] [--netprobe PATH] [--keep-lab] [--pin together|split|none] [--tcpdump]
                                      [--floor] [--capture-wrap 'CMD ARGS'] [--capture-arg ARG]... [--modes LIST]
          --setup     lab setup: host (Redis on loopback in the namespace) or bridge (TCG guest
                      behind virbr0 + vnet0); default host
          --rounds    rounds of (without, immediate, without, block); default 6
          --requests  redis-benchmark -n (per test, SET and GET); default 100000 (host), 20000 (bridge)
          --clients   redis-benchmark -c; default 10
          --name      lab name (namespace np-NAME); default capbench
          --netprobe  the netprobe binary; default: the one next to this benchmark
          --keep-lab  leave the lab up at the end (it is still removed on failure or a signal)
          --tcpdump   also run tcpdump (one per vantage point, same snap length, buffer, filter and
                      stamps) as a reference for what the kernel's packet capture costs by itself
          --floor     also run a null capture: the same libpcap handles and settings as netprobe
                      capture, every packet discarded unread (no file, no netlink, no INFO); its
                      ratio is the floor for any libpcap capture here
          --capture-wrap  a command put in front of every capture process, split at spaces
                      (experiments: 'nice -n 10', 'chrt -b 0')
          --capture-arg   an extra argument for netprobe capture (repeat; experiments: -s 128)
          --modes     only these capture modes, comma-separated (immediate, block, kevents, ksched,
                      tcpdump, floor; e.g. block for a quick experiment); --tcpdump and --floor add
                      to the list. immediate and block record packets only; kevents is block plus
                      the default kernel events, ksched plus the scheduler's too (bridge: their
                      cost is their ratio against block's, e.g. --setup bridge --modes block,kevents)
          --pin       together: the lab's Redis (or QEMU) and redis-benchmark both on CPU 0;
                      split: Redis/QEMU on CPU 0, redis-benchmark on CPU 1; none: no pinning.
                      netprobe capture is never pinned. Default: together for host (measured on 2
                      CPUs: 66k req/s steady, against 25-35k split, where every loopback round trip
                      crosses CPUs, and 52-66k unpinned, as the scheduler moves them: too noisy for
                      a 3 % effect), none for bridge (QEMU's vCPU and I/O threads pinned to one
                      CPU swung between 4k and 14k req/s; unpinned they held 13.4-14.4k).

        """.utf8))
    exit(2)
}

func parseOptions() -> Options {
    var o = Options()
    var it = CommandLine.arguments.dropFirst().makeIterator()
    func value(_ flag: String) -> String {
        guard let v = it.next() else { FileHandle.standardError.write(Data("\(flag) needs a value\n".utf8)); usage() }
        return v
    }
    func count(_ flag: String) -> Int {
        guard let n = Int(value(flag)), n > 0 else { FileHandle.standardError.write(Data("\(flag) takes a positive number\n".utf8)); usage() }
        return n
    }
    while let a = it.next() {
        switch a {
        case "--setup":
            o.setup = value(a)
            guard ["host", "bridge"].contains(o.setup) else { FileHandle.standardError.write(Data("--setup is host or bridge\n".utf8)); usage() }
        case "--rounds": o.rounds = count(a)
        case "--requests": o.requests = count(a)
        case "--clients": o.clients = count(a)
        case "--name": o.name = value(a)
        case "--netprobe": o.netprobe = value(a)
        case "--keep-lab": o.keepLab = true
        case "--tcpdump": o.tcpdump = true
        case "--floor": o.floor = true
        case "--capture-wrap": o.captureWrap = value(a).split(separator: " ").map(String.init)
        case "--capture-arg": o.captureArgs.append(value(a))
        case "--modes":
            let list = value(a).split(separator: ",").map { Mode(rawValue: String($0)) }
            guard !list.isEmpty, !list.contains(nil) else { FileHandle.standardError.write(Data("--modes takes a list of immediate, block, kevents, ksched, tcpdump, floor\n".utf8)); usage() }
            o.modes = list.map { $0! }
        case "--pin":
            o.pin = value(a)
            guard ["together", "split", "none"].contains(o.pin!) else { FileHandle.standardError.write(Data("--pin is together, split or none\n".utf8)); usage() }
        case "-h", "--help": usage()
        default: FileHandle.standardError.write(Data("unknown argument \(a)\n".utf8)); usage()
        }
    }
    return o
}

// MARK: signals: blocked here and polled, so every way out passes through the teardown

/// SIGINT, SIGTERM and SIGHUP are blocked in this process (children start with a clean mask) and
/// looked for with sigpending between steps.
enum Signals {
    static func block() {
        // A shell without job control starts background jobs with SIGINT ignored, and an ignored
        // signal never becomes pending: restore the default (harmless while blocked). SIGHUP
        // stays ignored under nohup.
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&set, s) }
        sigprocmask(SIG_BLOCK, &set, nil)
    }

    /// The first pending stop signal, if any.
    static func pending() -> Int32? {
        var set = sigset_t()
        sigpending(&set)
        for s in [SIGINT, SIGTERM, SIGHUP] where sigismember(&set, s) == 1 { return s }
        return nil
    }
}

struct Interrupted: Error { let signal: Int32 }
struct BenchError: Error, CustomStringConvertible { let description: String; init(_ d: String) { description = d } }

// MARK: child processes

/// A child started by the project's spawner (`ChildProcess`: clean signal mask, default handlers);
/// its CPU time comes from wait4's rusage.
final class Child {
    let argv: [String]
    private let process: ChildProcess
    private(set) var status: Int32?
    private(set) var cpuSeconds: Double = 0
    let started = Date()
    private(set) var ended: Date?

    var pid: pid_t { process.pid }

    init(_ argv: [String], stdout: Int32? = nil, stderr: Int32? = nil) throws {
        self.argv = argv
        do {
            process = try ChildProcess(argv, stdin: .inherit, stdout: stdout.map { .descriptor(FileDescriptor(rawValue: $0)) } ?? .inherit,
                                       stderr: stderr.map { .descriptor(FileDescriptor(rawValue: $0)) } ?? .inherit)
        } catch {
            throw BenchError("\(error)")
        }
    }

    /// Reaps the child if it has exited (non-blocking).
    var isRunning: Bool {
        if status != nil { return false }
        guard !process.isRunning, let s = process.wait(timeout: 0) else { return true }
        ended = Date()
        cpuSeconds = process.cpuSeconds ?? 0
        status = s.code
        return false
    }

    /// Waits for the child; a stop signal meanwhile is passed on to it (unless `passSignals` is
    /// false) and reported by throwing once the child is gone. After `timeout`, SIGKILL.
    @discardableResult
    func wait(timeout: Double = .infinity, passSignals: Bool = true) throws -> Int32 {
        var interrupted: Int32?
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning {
            if interrupted == nil, let sig = Signals.pending() {
                interrupted = sig
                if passSignals { process.signal(SIGINT) }
            }
            if Date() > deadline { process.signal(SIGKILL) }
            usleep(10_000)
        }
        if let interrupted, passSignals { throw Interrupted(signal: interrupted) }
        return status!
    }

    var wallSeconds: Double { (ended ?? Date()).timeIntervalSince(started) }
}

/// Runs a command to the end; returns its status and output (stdout and stderr together).
@discardableResult
func run(_ argv: [String], passSignals: Bool = true, timeout: Double = .infinity) throws -> (Int32, String) {
    let path = NSTemporaryDirectory() + "capbench-out-\(getpid())-\(UUID().uuidString)"
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { throw BenchError("cannot create \(path)") }
    defer { unlink(path) }
    let child: Child
    do { child = try Child(argv, stdout: fd, stderr: fd) } catch { close(fd); throw error }
    close(fd)
    let status = try child.wait(timeout: timeout, passSignals: passSignals)
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    return (status, text)
}

func loadAverage() -> String {
    ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?")
        .split(separator: " ").prefix(3).joined(separator: " ")
}

func median(_ xs: [Double]) -> Double {
    guard !xs.isEmpty else { return .nan }
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

// MARK: the benchmark

/// How the capture runs: netprobe capture with per-packet or block delivery, or (references for
/// what the kernel's packet capture costs by itself) tcpdump with its defaults (block delivery) or
/// the null capture (--floor).
/// immediate and block: netprobe capture of packets only (`--kernel-events none`); kevents: block
/// delivery with the kernel events capture records by default where a tap is captured
/// (`--kernel-events essential`): its ratio against block's is what the events cost.
/// ksched: the same with the scheduler's events too (`--kernel-events scheduler`).
enum Mode: String, CaseIterable { case immediate, block, kevents, ksched, tcpdump, floor
    var flags: [String] {
        switch self {
        case .immediate: ["--immediate-mode", "--kernel-events", "none"]
        case .block: ["--no-immediate-mode", "--kernel-events", "none"]
        case .kevents: ["--no-immediate-mode", "--kernel-events", "essential"]
        case .ksched: ["--no-immediate-mode", "--kernel-events", "scheduler"]
        case .tcpdump, .floor: []
        }
    }
}

struct Run {
    var round: Int
    var mode: Mode?            // nil: without capture
    var pairedWith: Mode?      // for a run without capture: the capture run after it
    var requestsPerSecond: Double
    var captureCPU: Double = 0
    var captureWall: Double = 0
    var drops: UInt64 = 0
    var received: UInt64 = 0
    var written: UInt64 = 0
}

final class Bench {
    let o: Options
    let netprobe: String
    /// This benchmark's own binary, for the null capture.
    let this: String
    let requests: Int
    let modes: [Mode]
    var lab: LabState?
    let scratch: String

    init(_ o: Options) throws {
        self.o = o
        requests = o.requests ?? (o.setup == "host" ? 100_000 : 20_000)
        var modes = o.modes ?? [.immediate, .block]
        for (asked, mode) in [(o.tcpdump, Mode.tcpdump), (o.floor, .floor)] where asked && !modes.contains(mode) { modes.append(mode) }
        self.modes = modes
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        this = me
        netprobe = o.netprobe ?? URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("netprobe").path
        guard FileManager.default.isExecutableFile(atPath: netprobe) else {
            throw BenchError("no netprobe binary at \(netprobe): build it first (swift build -c release --product netprobe), or give --netprobe PATH")
        }
        scratch = NSTemporaryDirectory() + "netprobe-capbench-\(getpid())"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    func say(_ s: String) { FileHandle.standardError.write(Data("capture-bench: \(s)\n".utf8)) }

    func labUp() throws {
        say("netprobe lab up --setup \(o.setup) --name \(o.name)")
        let (status, out) = try run([netprobe, "lab", "up", "--setup", o.setup, "--name", o.name])
        guard status == 0 else { throw BenchError("lab up failed (\(status)):\n\(out)") }
        let (s2, json) = try run([netprobe, "lab", "status", o.name, "--format", "json"])
        guard s2 == 0 else { throw BenchError("lab status failed (\(s2)):\n\(json)") }
        // lab status may print progress lines before the JSON object.
        guard let start = json.firstIndex(of: "{") else { throw BenchError("lab status printed no JSON:\n\(json)") }
        let state = try JSONDecoder().decode(LabState.self, from: Data(json[start...].utf8))
        lab = state
        if pin != "none" {
            for p in state.processes {
                let (status, out) = try run(["taskset", "-a", "-p", "-c", "0", "\(p.pid)"])
                guard status == 0 else { throw BenchError("cannot pin \(p.what) (pid \(p.pid)) to CPU 0: \(out)") }
            }
        }
    }

    /// together, split or none (none when there is no taskset, split needs 2 CPUs).
    var pin: String {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset") else { return "none" }
        let p = o.pin ?? (o.setup == "host" ? "together" : "none")
        return p == "split" && ProcessInfo.processInfo.activeProcessorCount < 2 ? "together" : p
    }

    /// taskset for the client, by `pin`.
    var clientPin: [String] {
        switch pin {
        case "together": return ["taskset", "-c", "0"]
        case "split": return ["taskset", "-c", "1"]
        default: return []
        }
    }

    /// Takes the lab down; never throws (it runs on every way out) and ignores signals meanwhile.
    func labDown() {
        say("netprobe lab down \(o.name)")
        do {
            let (status, out) = try run([netprobe, "lab", "down", o.name], passSignals: false, timeout: 120)
            if status != 0 { say("lab down failed (\(status)): \(out)") }
        } catch { say("lab down: \(error)") }
        try? FileManager.default.removeItem(atPath: scratch)
    }

    /// One redis-benchmark run in the lab's namespace: requests per second over SET and GET.
    func redisBenchmark(_ n: Int) throws -> Double {
        guard let lab else { throw BenchError("no lab") }
        let parts = lab.redisAddress.split(separator: ":")
        let argv = ["ip", "netns", "exec", lab.namespace] + clientPin + ["redis-benchmark", "-h", String(parts[0]), "-p", String(parts.last!),
                    "-c", "\(o.clients)", "-n", "\(n)", "-t", "set,get", "--csv"]
        // A guest can stop answering (seen once under TCG: the guest went idle with 10 requests
        // unanswered and redis-benchmark waited for ever): give up after 120 s.
        let started = Date()
        let (status, out) = try run(argv, timeout: 120)
        if status == 128 + SIGKILL && Date().timeIntervalSince(started) >= 120 {
            throw BenchError("redis-benchmark did not finish within 120 s: the lab's Redis (\(lab.redisAddress)) stopped answering")
        }
        guard status == 0 else { throw BenchError("\(argv.joined(separator: " ")) failed (\(status)):\n\(out)") }
        // --csv: "test","rps",...  then  "SET","98814.23",...  "GET","99502.49",...
        var seconds = 0.0, tests = 0
        for line in out.split(separator: "\n") {
            let f = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            guard f.count >= 2, f[0] == "SET" || f[0] == "GET", let rps = Double(f[1]), rps > 0 else { continue }
            seconds += Double(n) / rps
            tests += 1
        }
        guard tests == 2 else { throw BenchError("could not read redis-benchmark's CSV:\n\(out)") }
        return Double(2 * n) / seconds
    }

    /// The same load with `netprobe capture` running on every vantage point of the lab (or, for
    /// the tcpdump reference, one tcpdump per vantage point with the same snap length, buffer,
    /// filter and nanosecond stamps; for the floor, the null capture on every vantage point).
    func withCapture(_ mode: Mode, round: Int) throws -> Run {
        guard let lab else { throw BenchError("no lab") }
        var commands: [(argv: [String], file: String, log: String)] = []
        let port = lab.redisAddress.split(separator: ":").last.map(String.init) ?? "6379"
        if mode == .floor {
            // The file it creates says "every handle is open and filtering", as netprobe's pcapng does.
            let base = "\(scratch)/floor-\(round)"
            var argv = [this, "--null-capture", "--netns", lab.namespace, "-f", "tcp port \(port)", "--ready", base + ".ready"]
            for v in lab.vantages { argv += ["-i", v.interface] }
            commands.append((argv, base + ".ready", base + ".log"))
        } else if mode == .tcpdump {
            for v in lab.vantages {
                let base = "\(scratch)/tcpdump-\(round)-\(v.interface)"
                commands.append((["ip", "netns", "exec", v.namespace, "tcpdump", "-i", v.interface, "-s", "2048", "-B", "65536",
                                  "--time-stamp-precision", "nano", "-w", base + ".pcap", "tcp port \(port)"], base + ".pcap", base + ".log"))
            }
        } else {
            let base = "\(scratch)/\(mode.rawValue)-\(round)"
            var argv = [netprobe, "capture", "--quiet"] + mode.flags + ["--netns", lab.namespace, "-w", base + ".pcapng"]
            for v in lab.vantages { argv += ["-i", v.interface] }
            commands.append((argv + o.captureArgs, base + ".pcapng", base + ".log"))
        }
        commands = commands.map { (o.captureWrap + $0.argv, $0.file, $0.log) }
        defer { for c in commands { unlink(c.file); unlink(c.log) } }
        var children: [Child] = []
        var result: Double?
        var failure: Error?
        do {
            for c in commands {
                let fd = open(c.log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
                guard fd >= 0 else { throw BenchError("cannot create \(c.log)") }
                defer { close(fd) }
                children.append(try Child(c.argv, stdout: fd, stderr: fd))
            }
            // The file appears once the handles are open and filtering (netprobe and tcpdump
            // open them before they create the file); give the startup (INFO, netlink) a moment.
            let deadline = Date().addingTimeInterval(30)
            for (c, child) in zip(commands, children) {
                while !FileManager.default.fileExists(atPath: c.file) {
                    guard child.isRunning else { throw BenchError("\(c.argv.joined(separator: " ")) exited (\(child.status!)) before capturing") }
                    if let sig = Signals.pending() { throw Interrupted(signal: sig) }
                    guard Date() < deadline else { throw BenchError("\(c.argv.joined(separator: " ")) did not start within 30 s") }
                    usleep(10_000)
                }
            }
            usleep(300_000)
            result = try redisBenchmark(requests)
        } catch { failure = error }
        // Stop the captures as a user would (Ctrl-C) and collect their reports.
        for child in children { kill(child.pid, SIGINT) }
        for child in children { try child.wait(timeout: 60, passSignals: false) }
        let texts = commands.map { (try? String(contentsOfFile: $0.log, encoding: .utf8)) ?? "" }
        if let failure { throw failure }
        var r = Run(round: round, mode: mode, requestsPerSecond: result!)
        for (i, child) in children.enumerated() {
            let text = texts[i]
            guard child.status == 0 else { throw BenchError("\(commands[i].argv.joined(separator: " ")) failed (\(child.status!)):\n\(text)") }
            r.captureCPU += child.cpuSeconds
            r.captureWall = max(r.captureWall, child.wallSeconds)
            if mode == .tcpdump {
                // "400170 packets captured" / "400170 packets received by filter" / "0 packets dropped by kernel"
                func count(_ what: String) -> UInt64? {
                    text.split(separator: "\n").first { $0.hasSuffix(what) }.flatMap { UInt64($0.split(separator: " ")[0]) }
                }
                guard let captured = count("packets captured"), let received = count("packets received by filter"),
                      let dropped = count("packets dropped by kernel") else {
                    throw BenchError("could not read tcpdump's counts:\n\(text)")
                }
                r.written += captured; r.received += received; r.drops += dropped
                continue
            }
            // netprobe capture:  "  lo (host): 400012 packets written, 400012 received by filter, 0 dropped by kernel"
            // the null capture:  "  lo: 400012 packets read, 400012 received by filter, 0 dropped by kernel"
            let marker = mode == .floor ? " packets read, " : " packets written, "
            var vantagesSeen = 0
            for line in text.split(separator: "\n") where line.contains(marker) {
                let numbers = line.split(whereSeparator: { $0 == " " || $0 == "," }).compactMap { UInt64($0) }
                guard numbers.count >= 3 else { continue }
                r.written += numbers[0]; r.received += numbers[1]; r.drops += numbers[2]
                vantagesSeen += 1
            }
            guard vantagesSeen == lab.vantages.count else { throw BenchError("could not read the drop counts of \(mode == .floor ? "the null capture" : "netprobe capture"):\n\(text)") }
            if text.contains("never reached the file") || text.contains("ended early") {
                throw BenchError("netprobe capture lost packets on the way to the file:\n\(text)")
            }
        }
        return r
    }

    func measure() throws -> [Run] {
        guard let lab else { throw BenchError("no lab") }
        var runs: [Run] = []
        func f(_ x: Double) -> String { String(format: "%.0f", x) }
        out("netprobe-capture-bench: setup \(lab.setup), Redis \(lab.redisAddress) in \(lab.namespace), capture on \(lab.vantages.map(\.interface).joined(separator: " + "))")
        out("  load: ip netns exec \(lab.namespace) redis-benchmark -c \(o.clients) -n \(requests) -t set,get --csv; \(o.rounds) rounds of \(modes.map { "without/\($0.rawValue)" }.joined(separator: "/")) (the order of the modes rotates)")
        let server = lab.processes.map(\.what).joined(separator: ", ")
        out("  \(ProcessInfo.processInfo.activeProcessorCount) CPUs; " + [
            "together": "\(server) and redis-benchmark pinned to CPU 0 (--pin together), netprobe capture not pinned",
            "split": "\(server) pinned to CPU 0, redis-benchmark to CPU 1 (--pin split), netprobe capture not pinned",
            "none": "nothing pinned (--pin none)",
        ][pin]!)
        if !o.captureWrap.isEmpty { out("  every capture process runs under: \(o.captureWrap.joined(separator: " "))") }
        if !o.captureArgs.isEmpty { out("  netprobe capture also gets: \(o.captureArgs.joined(separator: " "))") }
        out("  load average before: \(loadAverage())")
        out("")
        out(pad("ROUND", 6) + pad("RUN", 11) + lpad("REQ/S", 10) + lpad("CAPTURE CPU s", 15) + lpad("CPU %", 7) + lpad("PACKETS", 10) + lpad("DROPS", 7))
        // Warm-up (not counted): the guest's translated code, Redis's memory, the page cache.
        _ = try redisBenchmark(max(requests / 4, 1000))
        for round in 1...o.rounds {
            // Rotate the modes, so that none always comes first.
            let order = (0..<modes.count).map { modes[($0 + round - 1) % modes.count] }
            for mode in order {
                let base = Run(round: round, mode: nil, pairedWith: mode, requestsPerSecond: try redisBenchmark(requests))
                out(pad("\(round)", 6) + pad("without", 11) + lpad(f(base.requestsPerSecond), 10))
                runs.append(base)
                let r = try withCapture(mode, round: round)
                out(pad("\(round)", 6) + pad(mode.rawValue, 11) + lpad(f(r.requestsPerSecond), 10)
                      + lpad(String(format: "%.2f", r.captureCPU), 15) + lpad(String(format: "%.0f", 100 * r.captureCPU / r.captureWall), 7)
                      + lpad("\(r.written)", 10) + lpad("\(r.drops)", 7))
                runs.append(r)
            }
        }
        return runs
    }

    func summarize(_ runs: [Run]) -> Bool {
        var ok = true
        out("")
        out(pad("MODE", 11) + lpad("WITHOUT req/s", 14) + lpad("WITH req/s", 12) + lpad("RATIO", 8) + lpad("PAIRED", 8) + lpad("PAIRS >=0.97", 14)
              + lpad("DROPS", 7) + lpad("CAPTURE CPU s", 15) + lpad("CPU %", 7))
        for mode in modes {
            let with = runs.filter { $0.mode == mode }
            let without = runs.filter { $0.mode == nil && $0.pairedWith == mode }
            let pairs = zip(without, with).map { $1.requestsPerSecond / $0.requestsPerSecond }
            let drops = with.reduce(0) { $0 + $1.drops }
            if drops > 0 { ok = false }
            let ratio = median(with.map(\.requestsPerSecond)) / median(without.map(\.requestsPerSecond))
            out(pad(mode.rawValue, 11) + lpad(String(format: "%.0f", median(without.map(\.requestsPerSecond))), 14)
                  + lpad(String(format: "%.0f", median(with.map(\.requestsPerSecond))), 12)
                  + lpad(String(format: "%.3f", ratio), 8) + lpad(String(format: "%.3f", median(pairs)), 8) + lpad("\(pairs.filter { $0 >= 0.97 }.count) of \(pairs.count)", 14)
                  + lpad("\(drops)", 7) + lpad(String(format: "%.2f", median(with.map(\.captureCPU))), 15)
                  + lpad(String(format: "%.0f", median(with.map { 100 * $0.captureCPU / $0.captureWall })), 7))
        }
        if modes.contains(.block) {
            func paired(_ m: Mode) -> [Double] {
                zip(runs.filter { $0.mode == nil && $0.pairedWith == m }, runs.filter { $0.mode == m })
                    .map { $1.requestsPerSecond / $0.requestsPerSecond }
            }
            let off = median(paired(.block))
            for m in [Mode.kevents, .ksched] where modes.contains(m) {
                out("")
                out("kernel events: PAIRED \(m.rawValue) / PAIRED block = \(String(format: "%.3f", median(paired(m)) / off)) (throughput with the events over without them, both against no capture)")
            }
        }
        out("")
        out("  RATIO = median req/s with capture / median req/s of the runs without capture just before them;")
        out("  PAIRED = median over rounds of (req/s with capture / req/s of the run without just before it);")
        out("  CAPTURE CPU = user + system seconds of the capture processes (median; CPU % of their lifetime);")
        if modes.contains(.floor) {
            out("  floor = the null capture: netprobe capture's libpcap handles and settings, every packet discarded unread.")
        }
        out("  DROPS = kernel drops (pcap_stats ps_drop) summed over all rounds and vantage points.")
        out("  load average after: \(loadAverage())")
        if !ok { out("FAIL: a capture dropped packets") }
        return ok
    }
}

/// Writes a line to stdout at once (print buffers when stdout is a file or pipe).
func out(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }

// MARK: --floor: the null capture

/// `netprobe-capture-bench --null-capture --netns NS -f FILTER --ready FILE -i IF [-i IF]...`
/// (started by the benchmark for --floor, see the top of the file). Opens every interface as
/// netprobe capture does, creates FILE once all of them filter, discards every packet until
/// SIGINT, SIGTERM or SIGHUP, then prints per interface
/// "  IF: N packets read, N received by filter, N dropped by kernel" and exits 0 (1 on a failure).
/// It does not wait for the kernel to hand over its last, partly filled block, so "read" may fall
/// a little short of "received by filter"; the kernel did its work for those packets either way.
func nullCapture(_ args: [String]) -> Int32 {
    func fail(_ s: String) -> Int32 { FileHandle.standardError.write(Data("null capture: \(s)\n".utf8)); return 1 }
    var namespace: String?, filter = "tcp port 6379", ready: String?, interfaces: [String] = []
    var it = args.makeIterator()
    while let a = it.next() {
        guard let v = it.next() else { return fail("\(a) needs a value") }
        switch a {
        case "--netns": namespace = v
        case "-f": filter = v
        case "--ready": ready = v
        case "-i": interfaces.append(v)
        default: return fail("unknown argument \(a)")
        }
    }
    guard let ready, !interfaces.isEmpty else { return fail("needs --ready FILE and at least one -i IF") }
    Signals.block()
    // netprobe capture's defaults (LiveCaptureSettings and the CLI agree: -s 2048, -B 65536 KiB,
    // block delivery, 100 ms); only the filter is the lab's port, as the benchmark gives it to tcpdump.
    var settings = LiveCaptureSettings()
    settings.filter = filter
    let captures: [LiveCapture]
    do {
        captures = try interfaces.map { i in try NetworkNamespace.withNamespace(namespace) { try LiveCapture(interface: i, settings: settings) } }
    } catch { return fail("\(error)") }
    for c in captures { if let w = c.activationWarning { FileHandle.standardError.write(Data("  note: \(c.interface): \(w)\n".utf8)) } }
    guard FileManager.default.createFile(atPath: ready, contents: nil) else { return fail("cannot create \(ready)") }
    var fds = captures.map { pollfd(fd: $0.selectableFD, events: Int16(POLLIN), revents: 0) }
    var read = captures.map { _ in 0 }
    while Signals.pending() == nil {
        _ = poll(&fds, nfds_t(fds.count), 50)
        for (i, c) in captures.enumerated() {
            guard let n = c.discardWaiting() else { return fail("\(c.interface) failed while capturing") }
            read[i] += n
        }
    }
    for (i, c) in captures.enumerated() {
        guard let s = c.statistics() else { return fail("pcap_stats on \(c.interface) failed") }
        FileHandle.standardError.write(Data("  \(c.interface): \(read[i]) packets read, \(s.received) received by filter, \(s.dropped) dropped by kernel\n".utf8))
    }
    return 0
}

// MARK: main

if CommandLine.arguments.dropFirst().first == "--null-capture" {
    exit(nullCapture(Array(CommandLine.arguments.dropFirst(2))))
}
let options = parseOptions()
guard getuid() == 0 else {
    FileHandle.standardError.write(Data("netprobe-capture-bench: needs root (it builds a lab in a network namespace and captures)\n".utf8))
    exit(2)
}
Signals.block()
let bench: Bench
do { bench = try Bench(options) } catch {
    FileHandle.standardError.write(Data("netprobe-capture-bench: \(error)\n".utf8))
    exit(2)
}
var status: Int32 = 0
do {
    try bench.labUp()
    let runs = try bench.measure()
    status = bench.summarize(runs) ? 0 : 1
    if !options.keepLab { bench.labDown() } else { try? FileManager.default.removeItem(atPath: bench.scratch) }
} catch let i as Interrupted {
    bench.say("interrupted by signal \(i.signal): taking the lab down")
    bench.labDown()
    status = 128 + i.signal
} catch {
    FileHandle.standardError.write(Data("netprobe-capture-bench: \(error)\n".utf8))
    bench.labDown()
    status = 1
}
exit(status)
