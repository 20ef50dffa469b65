// One measured run: a child process (a stage of our own, or a reference tool), its wall time, and
// from wait4(2) the CPU time of all its threads and its peak RSS.
import Foundation

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// What one child process took.
struct Run: Codable {
    /// Packets it went through (for a tool: the file's, or the prefix's).
    var packets: Int
    /// Wall seconds of the work: measured inside the child for our stages (process start-up left
    /// out, as in the libpcap loop), from spawn to exit for the reference tools.
    var seconds: Double
    /// Wall seconds from spawn to exit, as the parent saw them (what the tool comparison uses).
    var outerSeconds: Double
    /// User + system seconds of all its threads (wait4).
    var cpuSeconds: Double
    /// Peak resident set, KiB: VmHWM for our stages, GNU time's %M for the tools (both the child's
    /// own; see `spawnMeasured`).
    var peakKiB: Int
    var wallRate: Double { Double(packets) / seconds }
    var cpuRate: Double { Double(packets) / cpuSeconds }
    var outerRate: Double { Double(packets) / outerSeconds }
}

/// The failure of a run, with what it printed.
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `argv` (looked up in PATH) with its output in `stdoutPath` (stderr next to it, stdin
/// /dev/null) and waits: wall seconds, the exit status, and wait4's rusage: the CPU time of all the
/// child's threads (and of the children it waited for). Its ru_maxrss is not the child's own: the
/// child runs in this process's memory until exec (posix_spawn is a vfork), and Linux keeps that
/// peak across exec. Hence VmHWM from our stages and GNU time's %M from the tools.
func spawnMeasured(_ argv: [String], stdoutPath: String) throws -> (status: Int32, seconds: Double, cpuSeconds: Double, peakKiB: Int, stderr: String) {
    let stderrPath = stdoutPath + ".stderr"
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { for a in cArguments { free(a) } }
    var pid: pid_t = 0
    let started = now()
    let rc = posix_spawnp(&pid, argv[0], &actions, nil, &cArguments, environ)
    guard rc == 0 else { throw BenchError("cannot start \(argv[0]): \(String(cString: strerror(rc)))") }
    var raw: Int32 = 0
    var usage = rusage()
    while wait4(pid, &raw, 0, &usage) < 0 {
        guard errno == EINTR else { throw BenchError("wait4 \(argv[0]): \(String(cString: strerror(errno)))") }
    }
    let seconds = now() - started
    let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    let status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : -(raw & 0x7f) // exit code, or minus the signal
    let stderr = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
    try? FileManager.default.removeItem(atPath: stderrPath)
    return (status, seconds, cpu, usage.ru_maxrss, stderr)
}

/// Where this executable is, to run it again as a child.
let executablePath: String = {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}()

/// What a `report` or `analysis` child found: requests and unpaired per vantage point, and the
/// load generator's records.
struct Found: Equatable {
    var requests: [String: Int] = [:]
    var unpaired: [String: Int] = [:]
    var joined = 0
    var clientRecords = 0
}

/// Runs stage `kind` of our own on `path` in a child.
func runStage(_ kind: Stage, _ path: String, scratch: String) throws -> (Run, Found) {
    let out = scratch + "/child.out"
    let r = try spawnMeasured([executablePath, "--child", kind.rawValue, path], stdoutPath: out)
    let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
    let lines = text.split(separator: "\n")
    let first = lines.first?.split(separator: " ") ?? []
    guard r.status == 0, first.count == 3, let packets = Int(first[0]), let seconds = Double(first[1]), let peak = Int(first[2]) else {
        throw BenchError("\(kind.rawValue) on \(path) failed (status \(r.status)): \(text)\(r.stderr)")
    }
    var found = Found()
    for line in lines.dropFirst() {
        let f = line.split(separator: " ")
        if f.count == 4, f[0] == "vantage", let q = Int(f[2]), let u = Int(f[3]) {
            found.requests[String(f[1])] = q
            found.unpaired[String(f[1])] = u
        } else if f.count == 2, f[0] == "client-records", let n = Int(f[1]) {
            found.clientRecords = n
        } else if f.count == 2, f[0] == "joined", let n = Int(f[1]) {
            found.joined = n
        }
    }
    return (Run(packets: packets, seconds: seconds, outerSeconds: r.seconds, cpuSeconds: r.cpuSeconds, peakKiB: peak), found)
}

/// The best of `rounds` runs: the one with the shortest wall time, with that run's own CPU time and
/// peak RSS (issue 17, item 4: never figures from different runs).
func bestRun(_ kind: Stage, _ path: String, rounds: Int, scratch: String) throws -> (Run, Found) {
    var best: (Run, Found)?
    for _ in 0..<max(1, rounds) {
        let r = try runStage(kind, path, scratch: scratch)
        if best == nil || r.0.seconds < best!.0.seconds { best = r }
    }
    return best!
}
