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

    /// An Ethernet/IPv4/TCP frame (checksums left zero: netprobe does not check them).
    static func frame(from client: Bool, seq: UInt32, ack: UInt32, payload: [UInt8]) -> [UInt8] {
        func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        let (src, dst): ([UInt8], [UInt8]) = client ? ([10, 0, 0, 1], [10, 0, 0, 2]) : ([10, 0, 0, 2], [10, 0, 0, 1])
        let (sport, dport) = client ? (40000, 6379) : (6379, 40000)
        var f: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]
        f += [0x45, 0] + be16(40 + payload.count) + [0, 1, 0x40, 0, 64, 6, 0, 0] + src + dst
        f += be16(sport) + be16(dport) + be32(seq) + be32(ack) + [0x50, 0x18] + be16(65535) + [0, 0, 0, 0]
        return f + payload
    }

    /// A trace whose interface names, Redis command, run metadata and notes carry terminal escape
    /// sequences and line feeds.
    static func hostileTrace() throws -> [UInt8] {
        let e = PcapngEncoder()
        var out: [UInt8] = []
        e.appendSectionHeader(to: &out)
        e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 0, name: Self.evilName,
                                     description: "tap\u{1B}[31m", tsResolution: 9)
        let metadata = RunMetadata(
            netprobeVersion: "0.1.0", startedNs: 1_700_000_000_000_000_000, hostKernel: "Linux\u{1B}]2;owned\u{07}",
            hostname: "h", setup: "bridge\u{9B}2J", vantages: [.init(interface: Self.evilName, role: "tap", namespace: nil)],
            filter: "tcp port 6379", snapLength: 2048, vm: "vm\nnetprobe: the network IS the bottleneck", redisAddress: "10.0.0.2:6379")
        e.appendCustom(to: &out, enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: try NetprobeBlock.run(metadata).payload())
        e.appendCustom(to: &out, enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: try NetprobeBlock.vantageNote(
            VantageNote(timeNs: 1_700_000_000_000_000_000, interface: Self.evilName, note: "gone\u{1B}[2J\u{202E}")).payload())
        let info = "# Commandstats\r\ncmdstat_get\u{1B}[2J:calls=3,usec=30,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n"
        e.appendCustom(to: &out, enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: try NetprobeBlock.redisInfo(
            RedisInfoSnapshot(phase: "after", timeNs: 1_700_000_001_000_000_000, address: "10.0.0.2:6379", commandstats: info,
                              latencystats: "# Latencystats\r\nlatency_percentiles_usec_get\u{1B}[5m:p50=10.001\r\n")).payload())
        let command = "\u{1B}]0;pwned\u{07}"
        let request = Array("*1\r\n$\(command.utf8.count)\r\n\(command)\r\n".utf8)
        let reply = Array("+OK\r\n".utf8)
        var t: UInt64 = 1_700_000_000_000_000_000
        var seqC: UInt32 = 1000, seqS: UInt32 = 5000
        for _ in 0..<3 {
            let q = Self.frame(from: true, seq: seqC, ack: seqS, payload: request)
            q.withUnsafeBytes { e.appendEnhancedPacket(to: &out, interface: 0, ticks: t, data: $0, originalLength: q.count) }
            seqC &+= UInt32(request.count); t += 50_000
            let r = Self.frame(from: false, seq: seqS, ack: seqC, payload: reply)
            r.withUnsafeBytes { e.appendEnhancedPacket(to: &out, interface: 0, ticks: t, data: $0, originalLength: r.count) }
            seqS &+= UInt32(reply.count); t += 1_000_000
        }
        return out
    }

    static let evilName = "vnet0\u{1B}[2J\u{1B}]0;title\u{07}\nforged line"

    @Test("trace strings with terminal escapes and line feeds are shown escaped in text output; JSON keeps them as they are")
    func terminalEscapes() throws {
        let path = try CLI.temp(try Self.hostileTrace(), ".pcapng")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let text = try CLI.run(["report", path])
        #expect(text.status == 0, "\(text.stderr)")
        let bytes = Array(text.stdout.utf8)
        #expect(!bytes.contains(0x1B) && !bytes.contains(0x07), "no raw ESC or BEL reaches the terminal")
        #expect(!text.stdout.unicodeScalars.contains { (0x80...0x9F).contains($0.value) || $0.value == 0x202E })
        #expect(!text.stdout.contains("\nforged line") && !text.stdout.contains("\nnetprobe: the network IS"), "no forged lines")
        #expect(text.stdout.contains("vnet0\\x1b[2J\\x1b]0;title\\x07\\nforged line"), "\(text.stdout)")
        #expect(!text.stdout.contains("pwned"), "a command name from the wire is shown only when it is a name (else '?')")
        #expect(text.stdout.contains("GET\\x1b[2J") && text.stdout.contains("GET\\x1b[5M"), "INFO's command names, escaped")
        #expect(text.stdout.contains("bridge\\x9b2J") && text.stdout.contains("Linux\\x1b]2;owned\\x07"))
        #expect(text.stdout.contains("gone\\x1b[2J\\u{202e}"))
        // stderr (an unknown --vantage lists the trace's names) is escaped too.
        let err = try CLI.run(["report", path, "--vantage", "eth9"])
        #expect(err.status == 1)
        #expect(!err.stderr.utf8.contains(0x1B) && err.stderr.contains("vnet0\\x1b[2J"), "\(err.stderr)")
        // JSON keeps the strings exactly (JSON escapes control characters itself).
        let json = try CLI.run(["report", path, "--format", "json"])
        #expect(json.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let vantages = try #require(object["vantages"] as? [[String: Any]])
        #expect(vantages.first?["name"] as? String == Self.evilName)
        #expect(!json.stdout.utf8.contains(0x1B))
        // compare's text too.
        let compare = try CLI.run(["compare", path])
        #expect(!compare.stdout.utf8.contains(0x1B) && compare.stdout.contains("vnet0\\x1b[2J"), "\(compare.stdout)")
    }

    /// A redis-server that wants a password, on 127.0.0.1:6379 inside `namespace`; stopped in
    /// deinit.
    final class PasswordRedis {
        let server: ChildProcess
        init(namespace: String, password: String) throws {
            server = try ChildProcess(["ip", "netns", "exec", namespace, "redis-server", "--bind", "127.0.0.1", "--port", "6379",
                                       "--requirepass", password, "--save", "", "--appendonly", "no", "--daemonize", "no"],
                                      stdout: .discard)
            for _ in 0..<400 { // 20 s: the machine may be busy
                let ping = try ChildProcess.run(["ip", "netns", "exec", namespace, "redis-cli", "--no-auth-warning", "-a", password, "ping"],
                                                timeout: 10)
                if ping.stdout.hasPrefix("PONG") { return }
                usleep(50_000)
            }
            server.stop()
            throw ChildProcessError.timedOut(command: "redis-server in \(namespace), waiting for PING", seconds: 20)
        }
        func stop() { server.stop() }
        deinit { stop() }
    }

    @Test("capture stores the load command without its password, and takes INFO from a Redis that wants one (REDISCLI_AUTH or --redis-password-file)",
          .enabled(if: isRoot, rootNote), .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server")
                                                 && FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-benchmark"), "needs redis-server and redis-benchmark"))
    func credentials() throws {
        let secret = "s3cr3tPW"
        let ns = try LoopbackNamespace()
        let redis = try PasswordRedis(namespace: ns.name, password: secret)
        defer { redis.stop() }
        let dir = Self.tempPath(".d")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let passwordFile = dir + "/redis-password"
        try Data((secret + "\n").utf8).write(to: URL(fileURLWithPath: passwordFile))
        let load = ["redis-benchmark", "-h", "127.0.0.1", "-a", secret, "-n", "2000", "-c", "2", "-t", "get", "-q"]
        for (k, way) in [([], ["REDISCLI_AUTH": secret]), (["--redis-password-file", passwordFile], [:])].enumerated() {
            let trace = dir + "/trace-\(k).pcapng"
            let r = try CLI.run(["capture", "-i", "lo", "--netns", ns.name, "--redis", "127.0.0.1:6379", "-w", trace, "--quiet"]
                                + way.0 + ["--"] + load, environment: way.1)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stderr.contains("Redis INFO: before and after"), "\(r.stderr)")
            #expect(!r.stderr.contains(secret))
            // netprobe's own blocks (run metadata, INFO) do not hold it. (The packets hold
            // redis-benchmark's AUTH as it went over the wire, as in any capture.)
            let reader = try TraceReader(path: trace)
            while try reader.next() != nil {}
            #expect(!reader.customBlocks.isEmpty)
            #expect(reader.customBlocks.allSatisfy { Data($0.payload).range(of: Data(secret.utf8)) == nil }, "no password in netprobe's blocks")
            let json = try CLI.run(["report", trace, "--format", "json"])
            #expect(json.status == 0, "\(json.stderr)")
            #expect(!json.stdout.contains(secret))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            let capture = try #require(object["capture"] as? [String: Any])
            #expect(capture["loadCommand"] as? [String] == ["redis-benchmark", "-h", "127.0.0.1", "-a", CommandRedaction.placeholder,
                                                             "-n", "2000", "-c", "2", "-t", "get", "-q"])
            let commands = capture["redisCommands"] as? [[String: Any]] ?? []
            #expect(commands.contains { $0["command"] as? String == "GET" && ($0["calls"] as? Int ?? 0) >= 2000 }, "INFO was taken")
        }
        // Without a password, INFO fails and the note says how to give one.
        let trace = dir + "/trace-none.pcapng"
        let r = try CLI.run(["capture", "-i", "lo", "--netns", ns.name, "--redis", "127.0.0.1:6379", "-w", trace, "--quiet",
                             "--duration", "1s"], environment: ["REDISCLI_AUTH": ""])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("NOAUTH") && r.stderr.contains("--redis-password-file"), "\(r.stderr)")
    }

    @Test("a load command that --duration cuts short is said to be cut short, in capture's summary and in the report (was only 'exit status 143')",
          .enabled(if: isRoot, rootNote))
    func loadCutShortByDuration() throws {
        let ns = try LoopbackNamespace()
        let dir = Self.tempPath(".d")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let trace = dir + "/cut.pcapng"
        let r = try CLI.run(["capture", "-i", "lo", "--netns", ns.name, "--duration", "1s", "-w", trace, "--quiet", "--", "sleep", "30"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("exit status 143: cut short") && r.stderr.contains("--duration of 1 s ran out"), "\(r.stderr)")
        let text = try CLI.run(["report", trace])
        #expect(text.status == 3, "\(text.stderr)") // `sleep` sent no Redis request
        #expect(text.stdout.contains("note: load command: exit status 143: cut short") && text.stdout.contains("--duration of 1 s ran out"),
                "\(text.stdout)")
        let json = try CLI.run(["report", trace, "--format", "json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let notes = (object["capture"] as? [String: Any])?["notes"] as? [String] ?? []
        #expect(notes.contains { $0.contains("cut short") })

        // A load that ends by itself before --duration is not cut short.
        let whole = dir + "/whole.pcapng"
        let w = try CLI.run(["capture", "-i", "lo", "--netns", ns.name, "--duration", "30s", "-w", whole, "--quiet", "--", "true"])
        #expect(w.status == 0, "\(w.stderr)")
        #expect(w.stderr.contains("load command: exit status 0") && !w.stderr.contains("cut short"), "\(w.stderr)")
        #expect(!(try CLI.run(["report", whole]).stdout.contains("cut short")))
    }
}
