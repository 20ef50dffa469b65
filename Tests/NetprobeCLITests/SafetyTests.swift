import Foundation
import Testing
import NetprobeCore
import NetprobeSystem

/// Whether the tests run as root: live capture needs CAP_NET_RAW and CAP_NET_ADMIN, and the
/// network namespaces these tests make need CAP_SYS_ADMIN.
let isRoot = getuid() == 0
let rootNote: Comment = "needs root (capture, network namespaces): CI runs as root; run `sudo swift test`"

/// A network namespace of its own with only `lo` up, deleted in deinit (also when a test fails):
/// the capture tests below capture there, so no traffic outside it is ever touched.
final class LoopbackNamespace {
    let name = "npt-cli-\(getpid())-\(Int.random(in: 1000...9999))"

    init() throws {
        try Self.ip(["netns", "add", name])
        do { try Self.ip(["-n", name, "link", "set", "lo", "up"]) } catch {
            _ = try? Self.ip(["netns", "del", name])
            throw error
        }
    }

    deinit { _ = try? Self.ip(["netns", "del", name]) }

    static func ip(_ arguments: [String]) throws {
        try ChildProcess.run(["ip"] + arguments, timeout: 30).check()
    }
}

/// Issue 16: "Say only what the data backs, and survive every input".
@Suite("netprobe survives hostile input and says what happened", .serialized)
struct SafetyTests {
    static func tempPath(_ suffix: String) -> String {
        NSTemporaryDirectory() + "netprobe-cli-\(UUID().uuidString)\(suffix)"
    }

    @Test("capture with a filter libpcap cannot compile: exit 1, the error names filter, interface and libpcap's text (was a double free, exit 134)",
          .enabled(if: isRoot, rootNote),
          arguments: ["bad filter (((", "tcp port", ")", "tcp port 99999"])
    func badFilter(filter: String) throws {
        let ns = try LoopbackNamespace()
        let out = Self.tempPath(".pcapng")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try CLI.run(["capture", "-i", "lo", "--netns", ns.name, "-f", filter, "-w", out, "--duration", "1s", "--quiet"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("capture filter \"\(filter)\""))
        #expect(r.stderr.contains(" on lo: "))
        #expect(r.stderr.contains("syntax error") || r.stderr.contains("port"), "libpcap's own message: \(r.stderr)")
        #expect(!r.stderr.contains("double free"))
        #expect(!FileManager.default.fileExists(atPath: out), "no trace is created when a handle cannot be opened")
    }

    /// A copy of a real trace in a temporary directory of its own (removed by the caller).
    static func scratchCopy(of trace: String = "traces/two-iface-dumpcap-nodrop.pcapng") throws -> (dir: String, copy: String) {
        let dir = tempPath(".d")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        let copy = dir + "/copy." + (trace as NSString).pathExtension
        try FileManager.default.copyItem(atPath: CLI.packageRoot.appendingPathComponent(trace).path, toPath: copy)
        return (dir, copy)
    }

    @Test("report -w refuses the trace it reads and any pcap or pcapng file, says why, and leaves them intact; other files are written")
    func reportWriteRefusesTraces() throws {
        let (dir, copy) = try Self.scratchCopy()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let original = try Data(contentsOf: URL(fileURLWithPath: copy))

        // -r copy -w copy (was: the 2 MB trace replaced by a 4 KB text report, exit 0).
        var r = try CLI.run(["report", "-r", copy, "-w", copy])
        #expect(r.status == 1)
        #expect(r.stderr.contains(copy) && r.stderr.contains("the file being read"), "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == original)

        // The same file under another name (a hard link) is the input too.
        let hard = dir + "/hard.pcapng"
        try FileManager.default.linkItem(atPath: copy, toPath: hard)
        r = try CLI.run(["report", copy, "-w", hard])
        #expect(r.status == 1)
        #expect(r.stderr.contains("the file being read"), "\(r.stderr)")

        // Another trace, pcap or pcapng, is refused by its magic whatever its name.
        for (name, trace) in [("other.txt", "traces/loopback-pipelined.pcap"), ("other.json", "traces/two-iface-dumpcap.pcapng")] {
            let other = dir + "/" + name
            try FileManager.default.copyItem(atPath: CLI.packageRoot.appendingPathComponent(trace).path, toPath: other)
            let before = try Data(contentsOf: URL(fileURLWithPath: other))
            r = try CLI.run(["report", copy, "--format", "json", "-w", other])
            #expect(r.status == 1)
            #expect(r.stderr.contains("holds a \(trace.hasSuffix(".pcap") ? "pcap" : "pcapng") trace"), "\(r.stderr)")
            #expect(r.stderr.contains("not packets"))
            #expect(try Data(contentsOf: URL(fileURLWithPath: other)) == before)
        }

        // A new file, and an existing file that is not a trace, are written as before.
        let fresh = dir + "/report.json"
        r = try CLI.run(["report", copy, "--format", "json", "-w", fresh])
        #expect(r.status == 0, "\(r.stderr)")
        let written = try String(contentsOfFile: fresh, encoding: .utf8)
        #expect(written.hasPrefix("{"))
        try "old text\n".write(toFile: fresh, atomically: false, encoding: .utf8)
        r = try CLI.run(["report", copy, "--format", "json", "-w", fresh])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOfFile: fresh, encoding: .utf8) == written)

        // compare -w: the same rule, with all its inputs protected.
        r = try CLI.run(["compare", copy, hard, "-w", copy])
        #expect(r.status == 1)
        #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == original)
        r = try CLI.run(["compare", fresh, copy, "--format", "json", "-w", fresh])
        #expect(r.status == 1)
        #expect(r.stderr.contains("the file being read"), "\(r.stderr)")
        #expect(try String(contentsOfFile: fresh, encoding: .utf8) == written)
    }

    @Test("a trace cut short (head -c 100000 of a pcap or pcapng): the report of what came before on stdout, the damage on stderr, exit 2",
          arguments: ["traces/loopback-pipelined.pcap", "traces/two-iface-dumpcap-nodrop.pcapng"])
    func truncatedTrace(trace: String) throws {
        let whole = try Data(contentsOf: CLI.packageRoot.appendingPathComponent(trace))
        let cut = try CLI.temp(Array(whole.prefix(100_000)), "." + (trace as NSString).pathExtension)
        defer { try? FileManager.default.removeItem(atPath: cut) }
        var r = try CLI.run(["report", cut])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains(cut) && r.stderr.contains("byte offset") && r.stderr.contains("cut off"), "\(r.stderr)")
        #expect(r.stdout.contains("Vantage "), "the report of the packets before the cut is still printed")
        r = try CLI.run(["report", cut, "--format", "json"])
        #expect(r.status == 2)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let summary = try #require(json["trace"] as? [String: Any])
        #expect((summary["packets"] as? Int ?? 0) > 100)
        #expect((summary["error"] as? String)?.contains("cut off") == true)
    }

    @Test("a pcapng cut inside its section header cannot be read at all: exit 1 and why (was an empty report, exit 0)", arguments: [8, 12, 20, 100, 163])
    func cutInsideSectionHeader(length: Int) throws {
        let whole = try Data(contentsOf: CLI.packageRoot.appendingPathComponent("traces/two-iface-dumpcap-nodrop.pcapng"))
        let cut = try CLI.temp(Array(whole.prefix(length)), ".pcapng")
        defer { try? FileManager.default.removeItem(atPath: cut) }
        let r = try CLI.run(["report", cut])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains(cut) && r.stderr.contains("Section Header Block"), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    @Test("a report that cannot be written (stdout or -w on /dev/full) is an error: exit 1 and why (was exit 0)",
          arguments: [["--format", "text"], ["--format", "json"], ["--format", "html"]])
    func fullDevice(format: [String]) throws {
        let trace = "traces/loopback-pipelined.pcap"
        // Standard output on /dev/full, as `netprobe report T > /dev/full`.
        let full = try FileDescriptor.open("/dev/full", .writeOnly)
        defer { try? full.close() }
        let child = try ChildProcess([CLI.binary, "report", trace] + format, directory: CLI.packageRoot.path,
                                     stdout: .descriptor(full), stderr: .capture)
        let status = child.wait(orStopAfter: 600)
        #expect(status == .exited(1), "\(child.standardError)")
        #expect(child.standardError.contains("standard output") && child.standardError.contains("no space left on device"),
                "\(child.standardError)")
        // -w /dev/full.
        let r = try CLI.run(["report", trace, "-w", "/dev/full"] + format)
        #expect(r.status == 1)
        #expect(r.stderr.contains("/dev/full") && r.stderr.contains("no space left on device"), "\(r.stderr)")
        // compare too.
        let c = try CLI.run(["compare", trace, "-w", "/dev/full"] + format)
        #expect(c.status == 1)
    }

    @Test("capture -w never follows a symbolic link planted at the output path (it emptied the link's target); it says why, exit 1",
          .enabled(if: isRoot, rootNote))
    func captureRefusesSymbolicLink() throws {
        let ns = try LoopbackNamespace()
        let dir = Self.tempPath(".d")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let precious = dir + "/precious", link = dir + "/trace.pcapng", dangling = dir + "/dangling.pcapng"
        try Data("keep me\n".utf8).write(to: URL(fileURLWithPath: precious))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: precious)
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: dir + "/created-through-link")
        for path in [link, dangling] {
            let r = try CLI.run(["capture", "-i", "lo", "--netns", ns.name, "-w", path, "--duration", "1s", "--quiet"])
            #expect(r.status == 1, "\(r.stderr)")
            #expect(r.stderr.contains(path) && r.stderr.contains("symbolic link"), "\(r.stderr)")
        }
        #expect(FileManager.default.contents(atPath: precious) == Data("keep me\n".utf8))
        #expect(!FileManager.default.fileExists(atPath: dir + "/created-through-link"))

        // An existing regular file is replaced, as tcpdump -w does.
        let old = dir + "/old.pcapng"
        try Data(repeating: 7, count: 100).write(to: URL(fileURLWithPath: old))
        let r = try CLI.run(["capture", "-i", "lo", "--netns", ns.name, "-w", old, "--duration", "1s", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: old)).prefix(4) == Data([0x0A, 0x0D, 0x0D, 0x0A]))
    }
}
