import Foundation
import Testing
import NetprobeCore
import NetprobeSystem

/// Runs the built `netprobe` binary, as a user would.
struct CLI {
    static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    static let binary: String = {
        // NETPROBE_CLI_BINARY runs the tests against another build (an older one, to see that a
        // regression test fails there).
        if let other = ProcessInfo.processInfo.environment["NETPROBE_CLI_BINARY"], !other.isEmpty { return other }
        let nextToTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("netprobe").path
        if FileManager.default.isExecutableFile(atPath: nextToTests) { return nextToTests }
        for candidate in [".build/debug/netprobe", ".build/release/netprobe"] {
            let path = packageRoot.appendingPathComponent(candidate).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nextToTests
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the built binary from the package root; both pipes are drained together by the
    /// project's spawner, so a large stderr (a sanitizer report) cannot block the child.
    /// `environment` is added to this process's own.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let env = environment.isEmpty ? nil : ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let r = try ChildProcess.run([binary] + arguments, timeout: 600, environment: env, directory: packageRoot.path)
        return Result(status: r.status.code, stdout: r.stdout, stderr: r.stderr)
    }

    static func temp(_ bytes: [UInt8], _ suffix: String) throws -> String {
        let path = NSTemporaryDirectory() + "netprobe-cli-\(UUID().uuidString)\(suffix)"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}

@Suite("netprobe command line")
struct CLITests {
    @Test("selftest --faults takes the three names, in any order, and rejects others before touching anything (no root needed)")
    func selftestFaultNames() throws {
        let bad = try CLI.run(["selftest", "--faults", "tap-queue,disk-full"])
        #expect(bad.status == 64, "\(bad.stderr)")
        #expect(bad.stderr.contains("Unknown fault disk-full"), "\(bad.stderr)")
        #expect(bad.stderr.contains("tap-queue, starved-guest, redis-stall"), "\(bad.stderr)")
        let setup = try CLI.run(["experiment", "--setups", "host,moon"])
        #expect(setup.status == 64, "\(setup.stderr)")
        #expect(setup.stderr.contains("Unknown setup moon"), "\(setup.stderr)")
    }

    @Test("--help teaches the subcommands; report --help matches the golden file")
    func help() throws {
        let top = try CLI.run(["--help"])
        #expect(top.status == 0)
        #expect(top.stdout.contains("report"))
        let report = try CLI.run(["report", "--help"])
        #expect(report.status == 0)
        let golden = CLI.packageRoot.appendingPathComponent("Tests/NetprobeCLITests/golden/report-help.txt")
        let expected = try String(contentsOf: golden, encoding: .utf8)
        #expect(report.stdout == expected, "report --help changed; if on purpose: .build/debug/netprobe report --help > \(golden.path)")
    }

    @Test("version names the C libraries, libvirt's version from the library it loads")
    func version() throws {
        let r = try CLI.run(["version"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("libpcap version"))
        #expect(r.stdout.contains("libnl"))
        #expect(r.stdout.contains(/libvirt \d+\.\d+\.\d+/), "libvirt.so.0 did not load: \(r.stdout)")
    }

    @Test("report never loads libvirt (the dynamic loader's own log, LD_DEBUG=files); version does")
    func libvirtLoadedOnlyWhenAsked() throws {
        let report = try CLI.run(["report", "traces/resp-semantics.pcap", "-o", "/dev/null"], environment: ["LD_DEBUG": "files"])
        #expect(report.status == 0)
        #expect(report.stderr.contains("libpcap"), "LD_DEBUG printed no loader log: \(report.stderr.prefix(300))")
        #expect(!report.stderr.contains("libvirt"))
        let version = try CLI.run(["version"], environment: ["LD_DEBUG": "files"])
        #expect(version.stderr.contains("libvirt.so.0"))
    }

    @Test("a file that is not a trace: exit 1, and the message names file, offset and what was expected")
    func notATrace() throws {
        let path = try CLI.temp(Array("GET / HTTP/1.1\r\n".utf8), ".pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try CLI.run(["report", path])
        #expect(r.status == 1)
        #expect(r.stderr.contains(path))
        #expect(r.stderr.contains("byte offset 0"))
        #expect(r.stderr.contains("expected a pcap magic"))
        #expect(r.stdout.isEmpty)
    }

    @Test("no Redis request in the trace: exit 3, the report says so and which ports carried TCP")
    func noRedisRequests() throws {
        let trace = CLI.packageRoot.appendingPathComponent("traces/two-iface-dumpcap-nodrop.pcapng").path
        let r = try CLI.run(["report", trace, "--port", "7000"])
        #expect(r.status == 3)
        #expect(r.stdout.contains("No Redis requests in this trace"))
        #expect(r.stdout.contains("TCP traffic was seen on ports 6379"))
        #expect(r.stderr.contains("no Redis requests"))
        let ok = try CLI.run(["report", trace])
        #expect(ok.status == 0)
    }

    @Test("damage part-way: exit 2, the report covers what came before")
    func damaged() throws {
        let e = PcapngEncoder()
        var out: [UInt8] = []
        e.appendSectionHeader(to: &out)
        e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 0, name: "vnet0")
        let frame = [UInt8](repeating: 0, count: 60)
        frame.withUnsafeBytes { e.appendEnhancedPacket(to: &out, interface: 0, ticks: 1, data: $0, originalLength: 60) }
        out += [6, 0, 0, 0, 7, 0, 0, 0] + [UInt8](repeating: 0, count: 8) // length 7: not a multiple of 4
        let path = try CLI.temp(out, ".pcapng")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try CLI.run(["report", path, "--format", "json"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("multiple of 4"))
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let trace = json?["trace"] as? [String: Any]
        #expect(trace?["packets"] as? Int == 1)
        #expect((trace?["error"] as? String)?.contains("offset") == true)
    }

    @Test("an unknown --vantage lists the ones the trace has")
    func unknownVantage() throws {
        let e = PcapngEncoder()
        var out: [UInt8] = []
        e.appendSectionHeader(to: &out)
        e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 0, name: "virbr0")
        let path = try CLI.temp(out, ".pcapng")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try CLI.run(["report", path, "--vantage", "eth9"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("eth9"))
        #expect(r.stderr.contains("virbr0"))
    }

    @Test("argument mistakes are explained")
    func usage() throws {
        #expect(try CLI.run(["report"]).stderr.contains("Name a trace"))
        #expect(try CLI.run(["report", "a", "-r", "b"]).stderr.contains("not both"))
        #expect(try CLI.run(["report", "a", "--format", "xml"]).status != 0)
    }
}
