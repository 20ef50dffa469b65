import Foundation
import Testing
@testable import NetprobeCapture
import NetprobeCore
import NetprobeSystem

/// Issue 16, item 16: a capture made now is read by tshark and tcpdump as exactly its packets
/// (netprobe's own data travels where they do not make frames of it), and what was written before
/// a `kill -9` stays readable.
@Suite("netprobe's data in a capture, as tshark and tcpdump see it (root, redis-server)", .serialized, .enabled(if: isRoot, rootNote))
struct TraceCarriageCaptureTests {
    /// `tshark -r FILE` and `tcpdump -r FILE`: how many frames each lists, and tshark's stderr
    /// without its warning about running as root.
    static func frameCounts(_ path: String) throws -> (tshark: Int, tcpdump: Int, tsharkErrors: String) {
        let t = try ChildProcess.run(["tshark", "-n", "-r", path], timeout: 600)
        let d = try ChildProcess.run(["tcpdump", "-n", "-r", path], timeout: 600)
        let errors = t.stderr.split(separator: "\n").filter { !$0.hasPrefix("Running as user") }.joined(separator: "\n")
        return (t.stdout.split(separator: "\n").count, d.stdout.split(separator: "\n").count, errors)
    }

    /// The "Duration:" of `tshark -q -z io,stat,0`, in seconds.
    static func tsharkDuration(_ path: String) throws -> Double? {
        let r = try ChildProcess.run(["tshark", "-n", "-r", path, "-q", "-z", "io,stat,0"], timeout: 600)
        guard let line = r.stdout.split(separator: "\n").first(where: { $0.contains("Duration:") }) else { return nil }
        return line.split(separator: " ").compactMap { Double($0) }.first
    }

    /// netprobe's reading of the file: packets, first and last stamp, its own data by kind.
    struct Contents {
        var packets = 0
        var firstNs = Int64.max, lastNs = Int64.min
        var runs = 0, netlink = 0, redisInfo = 0, clientRecordBlocks = 0
        var error: String?
    }

    static func contents(_ path: String) -> Contents {
        var c = Contents()
        do {
            let reader = try TraceReader(path: path)
            reader.onCustomBlock = { pen, payload in
                if ClientRecordBlock.isClientRecords(enterpriseNumber: pen, payload: payload) {
                    c.clientRecordBlocks += 1
                    return true
                }
                return false
            }
            do {
                while let p = try reader.next() {
                    c.packets += 1
                    c.firstNs = min(c.firstNs, p.timestampNs)
                    c.lastNs = max(c.lastNs, p.timestampNs)
                }
            } catch { c.error = "\(error)" }
            for b in reader.customBlocks {
                switch NetprobeBlock.decode(enterpriseNumber: b.pen, payload: b.payload) {
                case .run?: c.runs += 1
                case .netlink?: c.netlink += 1
                case .redisInfo?: c.redisInfo += 1
                default: break
                }
            }
        } catch { c.error = "\(error)" }
        return c
    }

    /// The pcapng block types in a file (whole blocks only).
    static func blockTypes(_ path: String) throws -> Set<UInt32> {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var types: Set<UInt32> = []
        var i = 0
        while i + 12 <= bytes.count {
            let type = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i, as: UInt32.self) }
            let length = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self) })
            guard length >= 12, i + length <= bytes.count else { break }
            types.insert(type)
            i += length
        }
        return types
    }

    @Test("capture -- netprobe load on loopback: tshark and tcpdump list exactly the packets, io,stat spans the capture, report still has every kind of netprobe data")
    func tsharkSeesOnlyPackets() throws {
        let topo = try TestTopology(loopbackOnly: true)
        defer { topo.teardown() }
        let out = tempPath(".pcapng")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let (status, log) = try sh([CaptureCLITests.binary, "capture", "-i", "lo", "--netns", topo.client, "--role", "lo=host",
                                    "--redis", "127.0.0.1:6379", "--duration", "60s", "-s", "128", "-w", out, "--quiet", "--",
                                    "netprobe", "load", "--target", "127.0.0.1:6379", "--connections", "4",
                                    "--requests", "2000", "--ratio", "1:1"], allowFailure: true)
        #expect(status == 0, "capture failed: \(log)")

        let c = Self.contents(out)
        #expect(c.error == nil)
        #expect(c.packets >= 4000)
        let (tshark, tcpdump, errors) = try Self.frameCounts(out)
        #expect(tshark == c.packets, "tshark lists \(tshark) frames, the file holds \(c.packets) packets")
        #expect(tcpdump == c.packets, "tcpdump lists \(tcpdump) packets, the file holds \(c.packets)")
        #expect(errors.isEmpty, "tshark complained: \(errors)")
        let span = Double(c.lastNs - c.firstNs) / 1e9
        let duration = try #require(try Self.tsharkDuration(out), "no Duration in tshark's io,stat")
        #expect(abs(duration - span) < 0.01, "tshark's io,stat says \(duration) s; the packets span \(span) s")
        #expect(!(try Self.blockTypes(out)).contains(0x0000_0BAD), "the file still has custom blocks")

        // Nothing of netprobe's own is lost on the way: the report has all of it.
        #expect(c.runs >= 1 && c.netlink >= 1 && c.redisInfo == 2 && c.clientRecordBlocks >= 1,
                "run \(c.runs), netlink \(c.netlink), INFO \(c.redisInfo), client record blocks \(c.clientRecordBlocks)")
        let (report, analysis) = try ReportBuilder.build(path: out)
        #expect(analysis.error == nil)
        let context = try #require(report.capture)
        #expect(context.roles == ["lo": "host"])
        #expect(context.clientRequests == 2000)
        #expect(context.interfaces.map(\.interface) == ["lo"])
        #expect(context.redisCommands.first { $0.command == "SET" }?.calls == 1000)
        #expect(report.trace.vantagePoints.first?.dropped != nil, "the report lost the drop count")

        // What the README says of editcap: it keeps the run description (Section Header Block) and
        // the packets, and drops the ISBs after the first packet (samples, INFO after, records).
        let edited = tempPath(".pcapng")
        defer { try? FileManager.default.removeItem(atPath: edited) }
        try sh(["editcap", out, edited])
        let e = Self.contents(edited)
        #expect(e.packets == c.packets && e.runs == 1 && e.clientRecordBlocks == 0 && e.redisInfo < 2, "editcap's copy: \(e)")
        let (editedReport, _) = try ReportBuilder.build(path: edited)
        #expect(editedReport.capture?.roles == ["lo": "host"])
    }

    @Test("kill -9 mid-capture: what reached the file (packets, run description, netlink samples, INFO) is read by netprobe, tshark and tcpdump")
    func killNine() throws {
        let topo = try TestTopology(loopbackOnly: true)
        defer { topo.teardown() }
        let out = tempPath(".pcapng")
        defer { try? FileManager.default.removeItem(atPath: out) }
        // A light load (50 requests/s), so that the capture's own buffer would take minutes to fill:
        // what is in the file comes from the writer's regular flushes.
        let capture = try ChildProcess([CaptureCLITests.binary, "capture", "-i", "lo", "--netns", topo.client, "--role", "lo=host",
                                        "--redis", "127.0.0.1:6379", "-s", "128", "-w", out, "--quiet", "--",
                                        "netprobe", "load", "--target", "127.0.0.1:6379", "--connections", "2",
                                        "--rate", "50", "--duration", "300s"], stdout: .discard, stderr: .capture)
        defer {
            if capture.isRunning { capture.signal(SIGKILL) }
            _ = capture.wait(timeout: 10)
            // The load command outlives a killed netprobe: end it (it runs in the test's namespace).
            if let r = try? ChildProcess.run(["ip", "netns", "pids", topo.client], timeout: 10) {
                for pid in r.stdout.split(separator: "\n").compactMap({ pid_t($0) }) {
                    let cmdline = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
                    guard cmdline.contains("load") else { continue }
                    kill(pid, SIGKILL)
                    // Its records file, which only the killed capture would have stored and removed.
                    let argv = cmdline.split(separator: "\0").map(String.init)
                    if let k = argv.firstIndex(of: "--timestamps-out"), k + 1 < argv.count {
                        try? FileManager.default.removeItem(atPath: argv[k + 1])
                    }
                }
            }
        }
        // Wait (up to 30 s: not a measurement) until the file holds the run, INFO before, three
        // netlink samples and 50 packets.
        var seen = Contents()
        for _ in 0..<300 {
            seen = Self.contents(out)
            if seen.runs >= 1, seen.redisInfo >= 1, seen.netlink >= 3, seen.packets >= 50 { break }
            #expect(capture.isRunning, "the capture ended by itself: \(capture.standardError)")
            usleep(100_000)
        }
        #expect(seen.runs >= 1 && seen.redisInfo >= 1 && seen.netlink >= 3 && seen.packets >= 50,
                "after 30 s the file holds run \(seen.runs), INFO \(seen.redisInfo), netlink \(seen.netlink), packets \(seen.packets)")
        capture.signal(SIGKILL)
        _ = capture.wait(timeout: 10)

        let after = Self.contents(out)
        #expect(after.packets >= seen.packets && after.netlink >= seen.netlink && after.runs >= 1 && after.redisInfo >= 1,
                "after kill -9: packets \(after.packets) (had \(seen.packets)), netlink \(after.netlink) (had \(seen.netlink)), run \(after.runs), INFO \(after.redisInfo)")
        let (tshark, tcpdump, _) = try Self.frameCounts(out)
        #expect(tshark == after.packets, "tshark lists \(tshark) frames, netprobe reads \(after.packets) packets")
        #expect(tcpdump == after.packets, "tcpdump lists \(tcpdump), netprobe reads \(after.packets) packets")
        // report reads it as a netprobe capture: its roles and Redis address, its netlink samples.
        let (report, _) = try ReportBuilder.build(path: out)
        #expect(report.capture?.roles == ["lo": "host"])
        #expect(report.capture?.interfaces.map(\.interface) == ["lo"])
        #expect(report.vantages.first.map { $0.requests.total > 0 } == true)
    }
}
