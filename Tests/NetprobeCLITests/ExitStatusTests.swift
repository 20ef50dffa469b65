import Foundation
import Testing
import NetprobeSystem

/// A redis-server on 127.0.0.1 and a free port (loopback only), stopped in deinit.
final class LocalRedis {
    let port: UInt16
    private let server: ChildProcess

    init(password: String? = nil) throws {
        port = try Self.freePort()
        server = try ChildProcess(["redis-server", "--bind", "127.0.0.1", "--port", "\(port)", "--save", "", "--appendonly", "no",
                                   "--daemonize", "no"] + (password.map { ["--requirepass", $0] } ?? []),
                                  stdout: .discard, stderr: .discard)
        for _ in 0..<600 { // 30 s: the machine may be busy
            let ping = try ChildProcess.run(["redis-cli", "-p", "\(port)", "ping"], timeout: 10)
            if ping.stdout.hasPrefix("PONG") || ping.stdout.hasPrefix("NOAUTH") { return }
            usleep(50_000)
        }
        server.stop()
        throw ChildProcessError.timedOut(command: "redis-server on 127.0.0.1:\(port), waiting for PING", seconds: 30)
    }

    deinit { server.stop() }

    /// A port nothing listens on (the kernel's choice for a socket bound to port 0, then closed).
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw ChildProcessError.timedOut(command: "bind 127.0.0.1:0", seconds: 0) }
        return UInt16(bigEndian: address.sin_port)
    }
}

let hasRedis = FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server")

/// Issue 16, item 24: the exit statuses each --help documents are the ones returned.
@Suite("documented exit statuses are the ones returned", .serialized)
struct ExitStatusTests {
    /// One case: a command line, the status it must return, and the command whose help documents it.
    struct Case: CustomStringConvertible {
        var arguments: [String]
        var status: Int32
        var help: [String]
        var description: String { "netprobe \(arguments.joined(separator: " ")) -> \(status)" }
    }

    static let trace = CLI.packageRoot.appendingPathComponent("traces/two-iface-dumpcap-nodrop.pcapng").path

    func check(_ cases: [Case]) throws {
        var helps: [[String]: Set<Int32>] = [:]
        for c in cases {
            let r = try CLI.run(c.arguments)
            #expect(r.status == c.status, "\(c): got \(r.status); stderr: \(r.stderr.prefix(400))")
            if helps[c.help] == nil {
                helps[c.help] = HelpSections.exitStatuses(try CLI.run(c.help + ["--help"], environment: HelpTests.columns).stdout)
            }
            #expect(helps[c.help]?.contains(c.status) == true, "\(c): netprobe \(c.help.joined(separator: " ")) --help documents \(helps[c.help]?.sorted() ?? [])")
        }
    }

    @Test("report, compare, version, reference, stats, vms, lab status, selftest, experiment, capture (no root needed)")
    func mainCases() throws {
        let dir = NSTemporaryDirectory() + "netprobe-exit-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let notATrace = dir + "/notes.txt"
        try Data("GET / HTTP/1.1\r\n".utf8).write(to: URL(fileURLWithPath: notATrace))
        let cut = dir + "/cut.pcapng" // head -c 100000: damaged part-way
        try Data(try Data(contentsOf: URL(fileURLWithPath: Self.trace)).prefix(100_000)).write(to: URL(fileURLWithPath: cut))
        try check([
            Case(arguments: [], status: 0, help: []),
            Case(arguments: ["--no-such-option"], status: 64, help: []),
            Case(arguments: ["report", Self.trace], status: 0, help: ["report"]),
            Case(arguments: ["report", notATrace], status: 1, help: ["report"]),
            Case(arguments: ["report", Self.trace, "--vantage", "eth9"], status: 1, help: ["report"]),
            Case(arguments: ["report", cut], status: 2, help: ["report"]),
            Case(arguments: ["report", Self.trace, "--port", "7000"], status: 3, help: ["report"]),
            Case(arguments: ["report", Self.trace, "--port", "-1"], status: 64, help: ["report"]),
            Case(arguments: ["compare", Self.trace], status: 0, help: ["compare"]),
            Case(arguments: ["compare", notATrace], status: 1, help: ["compare"]),
            Case(arguments: ["compare", cut], status: 2, help: ["compare"]),
            Case(arguments: ["version"], status: 0, help: ["version"]),
            Case(arguments: ["version", "--format", "xml"], status: 64, help: ["version"]),
            Case(arguments: ["reference"], status: 0, help: ["reference"]),
            Case(arguments: ["stats", "-i", "lo", "--count", "1", "--interval", "100ms"], status: 0, help: ["stats"]),
            Case(arguments: ["stats", "-i", "np-none0", "--count", "1"], status: 1, help: ["stats"]),
            Case(arguments: ["stats", "-i", "lo", "--count", "0"], status: 64, help: ["stats"]),
            Case(arguments: ["vms", "-c", "test:///default"], status: 0, help: ["vms"]),
            Case(arguments: ["vms", "--connect", "nosuchdriver:///x"], status: 1, help: ["vms"]),
            Case(arguments: ["lab", "status", "no-such-lab-\(getpid())"], status: 1, help: ["lab", "status"]),
            Case(arguments: ["lab", "up", "--timeout", "-5"], status: 64, help: ["lab", "up"]),
            Case(arguments: ["lab", "down", "--all", "x"], status: 64, help: ["lab", "down"]),
            Case(arguments: ["selftest", "--faults", "disk-full"], status: 64, help: ["selftest"]),
            Case(arguments: ["experiment", "--setups", "moon"], status: 64, help: ["experiment"]),
            Case(arguments: ["capture", "-i", "np-none0", "--duration", "1s", "-w", dir + "/x.pcapng"], status: 1, help: ["capture"]),
            Case(arguments: ["capture", "-i", "lo", "-c", "100"], status: 64, help: ["capture"]),
        ])
    }

    @Test("load: 0 all answered, 1 cannot connect, 2 error replies (a Redis that wants a password), 64 a bad value",
          .enabled(if: hasRedis, "needs redis-server (scripts/deps installs it)"))
    func load() throws {
        let redis = try LocalRedis()
        let locked = try LocalRedis(password: "secret")
        let nobody = try LocalRedis.freePort()
        try check([
            Case(arguments: ["load", "-h", "127.0.0.1", "-p", "\(redis.port)", "-n", "300", "-c", "3", "--quiet"], status: 0, help: ["load"]),
            Case(arguments: ["load", "-h", "127.0.0.1", "-p", "\(nobody)", "-n", "10"], status: 1, help: ["load"]),
            Case(arguments: ["load", "--target", "127.0.0.1:\(locked.port)", "-n", "50", "--quiet"], status: 2, help: ["load"]),
            Case(arguments: ["load", "-h", "127.0.0.1", "-n", "-5"], status: 64, help: ["load"]),
        ])
    }

    @Test("capture: 0 when the capture ran (the trace is complete), in a namespace of its own", .enabled(if: isRoot, rootNote))
    func capture() throws {
        let ns = try LoopbackNamespace()
        let out = NSTemporaryDirectory() + "netprobe-exit-\(UUID().uuidString).pcapng"
        defer { try? FileManager.default.removeItem(atPath: out) }
        try check([Case(arguments: ["capture", "-i", "lo", "--netns", ns.name, "--duration", "500ms", "-w", out, "--quiet"],
                        status: 0, help: ["capture"])])
    }
}
