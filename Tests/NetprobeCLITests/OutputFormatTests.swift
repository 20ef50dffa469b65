import Foundation
import Testing
import NetprobeSystem

/// Issue 16, item 26: JSON from stats, capture's summary and version, with the --format option
/// report has.
@Suite("--format json everywhere there is output", .serialized)
struct OutputFormatTests {
    @Test("--format is spelled the same everywhere and always offers text and json")
    func oneSpelling() throws {
        var with: [String] = []
        for command in try CommandTree.load() {
            for option in command.options where option.names.contains("--format") {
                with.append(command.display)
                #expect(option.names == ["--format"], "\(command.display): \(option.names)")
                #expect(option.allValues.starts(with: ["text", "json"]), "\(command.display): \(option.allValues)")
            }
            #expect(!command.options.flatMap(\.names).contains("--json"), "\(command.display) has a --json of its own")
        }
        #expect(Set(with) == ["netprobe report", "netprobe compare", "netprobe capture", "netprobe stats", "netprobe vms",
                              "netprobe lab status", "netprobe load", "netprobe version"], "\(with)")
    }

    @Test("version --format json: netprobe's version and the three libraries'")
    func version() throws {
        let r = try CLI.run(["version", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: String])
        #expect(Set(object.keys) == ["netprobe", "libpcap", "libnl", "libvirt"])
        #expect(object["libpcap"]?.contains("libpcap version") == true)
        let text = try CLI.run(["version"]).stdout
        #expect(text.hasPrefix("netprobe \(object["netprobe"] ?? "?")\n"))
    }

    @Test("stats --format json: one JSON object a line per interval, rates per second")
    func stats() throws {
        let r = try CLI.run(["stats", "-i", "lo", "--count", "2", "--interval", "100ms", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 2, "\(r.stdout)")
        var times: [Int64] = []
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let interfaces = try #require(object["interfaces"] as? [[String: Any]])
            #expect(interfaces.count == 1)
            #expect(interfaces.first?["interface"] as? String == "lo")
            #expect(interfaces.first?["rxPacketsPerSecond"] is NSNumber)
            #expect(interfaces.first?.keys.contains("qdisc") == true)
            times.append((object["timeNs"] as? NSNumber)?.int64Value ?? 0)
        }
        #expect(times.count == 2 && times[1] > times[0])
    }

    @Test("capture --format json: standard output is the summary alone (the load command's output goes to standard error)",
          .enabled(if: isRoot, rootNote))
    func capture() throws {
        let ns = try LoopbackNamespace()
        let out = NSTemporaryDirectory() + "netprobe-json-\(UUID().uuidString).pcapng"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try CLI.run(["capture", "-i", "lo", "--netns", ns.name, "-w", out, "--quiet", "--format", "json",
                             "--", "echo", "from-the-load"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "stdout: \(r.stdout)")
        #expect(object["file"] as? String == out)
        #expect((object["bytes"] as? Int ?? 0) > 0)
        let vantages = try #require(object["vantages"] as? [[String: Any]])
        #expect(vantages.first?["interface"] as? String == "lo")
        #expect(vantages.first?.keys.contains("droppedByKernel") == true)
        let load = try #require(object["load"] as? [String: Any])
        #expect(load["exitStatus"] as? Int == 0 && load["cutShort"] as? Bool == false)
        #expect(object["warnings"] as? [String] == [])
        #expect(r.stderr.contains("from-the-load") && !r.stdout.contains("from-the-load"))
        // Text: the summary on standard error, the load's output on standard output, as before.
        let text = try CLI.run(["capture", "-i", "lo", "--netns", ns.name, "-w", out, "--quiet", "--", "echo", "from-the-load"])
        #expect(text.status == 0 && text.stdout == "from-the-load\n" && text.stderr.contains("netprobe capture: \(out):"), "\(text.stderr)")
    }
}
