import ArgumentParser
import Foundation
import Testing
import NetprobeCore
@testable import netprobe

/// Issue 16, item 23: the flags are one family, with the spellings users bring from tcpdump, virsh,
/// redis-benchmark and memtier_benchmark; one duration syntax; numbers checked in words.
@Suite("the options are one family")
struct FlagTests {
    /// What a command needs besides the option under test to get past validation.
    static let required: [String: [String]] = [
        "capture": ["-i", "lo"], "stats": ["-i", "lo"], "load": ["-h", "127.0.0.1"], "report": ["t.pcap"], "compare": ["t.pcap"],
    ]

    static func parse(_ command: CommandTree.Command, _ extra: [String]) throws -> ParsableCommand {
        try Netprobe.parseAsRoot(command.path + (required[command.path.first ?? ""] ?? []) + extra)
    }

    static func message(_ command: CommandTree.Command, _ extra: [String]) -> String? {
        do {
            _ = try parse(command, extra)
            return nil
        } catch {
            return Netprobe.message(for: error)
        }
    }

    @Test("every duration option takes 1m30s (and 500ms, and bare seconds) and refuses -5 and 0 in words")
    func durations() throws {
        var seen: [String] = []
        for command in try CommandTree.load() {
            for option in command.options where option.valueName == "TIME" {
                let name = try #require(option.names.last)
                seen.append("\(command.display) \(name)")
                for good in ["1m30s", "500ms", "90"] where !(command.path == ["selftest"] && good == "500ms") {
                    #expect(Self.message(command, [name, good]) == nil, "\(command.display) \(name) \(good): \(Self.message(command, [name, good]) ?? "")")
                }
                #expect(Self.message(command, [name, "-5"]) == "\(name) must be positive, got -5", "\(command.display)")
                #expect(Self.message(command, [name, "0s"]) == "\(name) must be positive, got 0s", "\(command.display)")
                #expect(Self.message(command, [name, "5 parsecs"])?.contains("takes a duration such as 500ms, 10s or 1m30s") == true)
            }
        }
        for expected in ["netprobe capture --duration", "netprobe stats --interval", "netprobe load --duration", "netprobe experiment --duration",
                         "netprobe experiment --warmup", "netprobe selftest --duration", "netprobe lab up --timeout"] {
            #expect(seen.contains(expected), "\(expected) takes a TIME")
        }
        // The value is the one meant.
        let lab = try #require(try Netprobe.parseAsRoot(["lab", "up", "--timeout", "1m30s"]) as? Netprobe.LabCommand.Up)
        #expect(try lab.timeout.checked("--timeout") == .seconds(90))
        let load = try #require(try Netprobe.parseAsRoot(["load", "-h", "h", "--duration", "1m30s"]) as? Netprobe.LoadCommand)
        #expect(try load.loadConfiguration().limit == .duration(.seconds(90)))
    }

    @Test("a negative number for any numeric option is refused naming the option and the value (was 'Missing value')")
    func negativeNumbers() throws {
        let numeric: Set<String> = ["N", "P", "B", "K", "R", "PORT", "SNAPLEN", "KIB", "TIME", "SET:GET"]
        var checked = 0
        for command in try CommandTree.load() {
            for option in command.options where numeric.contains(option.valueName ?? "") {
                let name = try #require(option.names.last)
                let value = option.valueName == "SET:GET" ? "-5:1" : "-5"
                let message = try #require(Self.message(command, [name, value]), "\(command.display) \(name) \(value) was accepted")
                #expect(!message.contains("Missing value"), "\(command.display) \(name): \(message)")
                #expect(message.contains(value) && (message.contains("must be") || message.contains("needs non-negative")),
                        "\(command.display) \(name): \(message)")
                checked += 1
            }
        }
        #expect(checked >= 20)
    }

    @Test("load -h HOST -p PORT is redis-benchmark's host and port (it printed help and exited 0); help is --help")
    func loadHostPort() throws {
        let port = try LocalRedis.freePort()
        let r = try CLI.run(["load", "-h", "127.0.0.1", "-p", "\(port)", "-n", "10"])
        #expect(r.status == 1, "\(r.stdout)")
        #expect(r.stderr.contains("cannot connect to 127.0.0.1:\(port)"), "\(r.stderr)")
        #expect(!r.stdout.contains("OVERVIEW"))
        let help = try CLI.run(["load", "--help"])
        #expect(help.status == 0 && help.stdout.contains("-h, --host <HOST>") && help.stdout.contains("--help"))

        func server(_ arguments: [String]) throws -> String {
            let load = try #require(try Netprobe.parseAsRoot(["load"] + arguments) as? Netprobe.LoadCommand)
            return try load.redisServer().description
        }
        #expect(try server(["-h", "10.0.0.2", "-p", "6380"]) == "10.0.0.2:6380")
        #expect(try server(["-h", "::1"]) == "[::1]:6379")
        #expect(try server(["--target", "10.0.0.2:7000"]) == "10.0.0.2:7000")
        #expect(try server(["-s", "10.0.0.3", "--port", "7001"]) == "10.0.0.3:7001", "memtier's -s")
        let c = try #require(try Netprobe.parseAsRoot(["load", "-h", "h", "--clients", "7"]) as? Netprobe.LoadCommand)
        #expect(try c.loadConfiguration().connections == 7, "memtier's --clients")
        for (bad, says) in [(["--target", "a:1", "-p", "2"], "already names the port"), (["--target", "a", "-h", "b"], "once"),
                            ([], "Name the Redis server"), (["-h", "a", "-p", "70000"], "-p/--port must be between 1 and 65535, got 70000"),
                            (["-h", "a", "-c", "2", "--clients", "3"], "--clients is the old spelling of -c/--connections")] {
            #expect(throws: (any Error).self) { _ = try Netprobe.parseAsRoot(["load"] + bad) }
            do { _ = try Netprobe.parseAsRoot(["load"] + bad) } catch {
                #expect(Netprobe.message(for: error).contains(says), "\(bad): \(Netprobe.message(for: error))")
            }
        }
    }

    @Test("-c/--connect is the libvirt URI in capture and vms, as in virsh; a tcpdump-style packet count is refused and explained")
    func libvirtURI() throws {
        for spelling in ["-c", "--connect"] {
            let c = try #require(try Netprobe.parseAsRoot(["capture", "--vm", "g", spelling, "qemu:///session"]) as? Netprobe.CaptureCommand)
            #expect(c.request.libvirtURI == "qemu:///session")
            let v = try CLI.run(["vms", spelling, "test:///default", "--format", "json"])
            #expect(v.status == 0, "\(v.stderr)")
            #expect(v.stdout.contains("\"name\" : \"test\""), "\(v.stdout)")
        }
        let count = try CLI.run(["capture", "-i", "lo", "-c", "100"])
        #expect(count.status == 64)
        #expect(count.stderr.contains("libvirt URI for --vm") && count.stderr.contains("tcpdump's -c counts packets"), "\(count.stderr)")
    }

    @Test("outputs: -w only for packets (capture), -o/--output for every other output; --out, --json-out and report's -w are hidden")
    func outputFamily() throws {
        let commands = try CommandTree.load()
        for command in commands {
            let visible = Set(command.options.filter(\.visible).flatMap(\.names))
            #expect(visible.isDisjoint(with: ["--out", "--json-out", "--write"]), "\(command.display): \(visible.sorted())")
            #expect(!visible.contains("-w") || command.path == ["capture"], "\(command.display) shows -w, which is tcpdump's packet file")
        }
        for path in [["report"], ["compare"], ["load"], ["experiment"], ["selftest"]] {
            let command = try #require(commands.first { $0.path == path })
            #expect(command.options.contains { $0.visible && $0.names == ["-o", "--output"] }, "\(command.display) has -o/--output")
        }
        let capture = try #require(commands.first { $0.path == ["capture"] })
        #expect(capture.options.contains { $0.visible && $0.names == ["-w"] })
        // -o never writes over a trace, for load either, and says so before the run.
        let trace = NSTemporaryDirectory() + "netprobe-flag-\(UUID().uuidString).pcap"
        try FileManager.default.copyItem(atPath: CLI.packageRoot.appendingPathComponent("traces/resp-semantics.pcap").path, toPath: trace)
        defer { try? FileManager.default.removeItem(atPath: trace) }
        let before = try Data(contentsOf: URL(fileURLWithPath: trace))
        let r = try CLI.run(["load", "-h", "127.0.0.1", "-p", "\(try LocalRedis.freePort())", "-n", "10", "-o", trace])
        #expect(r.status == 1)
        #expect(r.stderr.contains("will not write the summary") && r.stderr.contains("holds a pcap trace"), "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: trace)) == before)
    }

    @Test("the old spellings still work for scripts (report/compare -w, --out, --json-out, --clients), and both at once is refused")
    func oldSpellings() throws {
        let experiment = try #require(try Netprobe.parseAsRoot(["experiment", "--out", "old"]) as? Netprobe.ExperimentCommand)
        #expect(experiment.oldOutput == "old" && experiment.output == nil)
        let selftest = try #require(try Netprobe.parseAsRoot(["selftest", "--out", "old"]) as? Netprobe.SelftestCommand)
        #expect(selftest.oldOutput == "old")
        let load = try #require(try Netprobe.parseAsRoot(["load", "-h", "h", "--json-out", "x.json"]) as? Netprobe.LoadCommand)
        #expect(load.jsonOut == "x.json")
        do {
            _ = try Netprobe.parseAsRoot(["experiment", "--out", "a", "-o", "b"])
            Issue.record("both spellings were accepted")
        } catch {
            #expect(Netprobe.message(for: error) == "--out is the old spelling of -o/--output: give one of them")
        }
        // report -w FILE still writes the report (and -o does the same).
        let trace = ExitStatusTests.trace
        for flag in ["-w", "-o"] {
            let out = NSTemporaryDirectory() + "netprobe-flag-\(UUID().uuidString).json"
            defer { try? FileManager.default.removeItem(atPath: out) }
            let r = try CLI.run(["report", trace, "--format", "json", flag, out])
            #expect(r.status == 0, "\(r.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any]
            #expect(object?["vantages"] != nil, "report \(flag) wrote the JSON report")
            #expect(r.stdout.isEmpty)
        }
    }
}
