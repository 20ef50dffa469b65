import Foundation
import Testing
import NetprobeCore
import NetprobeSystem

/// Issue 16, item 16, on the traces in traces/: each netprobe trace, rewritten so that its data
/// travels as netprobe writes it now (`MetadataCarriage`), gives the very report JSON of the
/// original (traces/reports/), and tshark and tcpdump list exactly its packets. The originals
/// stay as they are, and are read as before (scripts/same-reports).
@Suite("netprobe traces in today's carriage: same report, tshark lists only the packets")
struct TraceCarriageCLITests {
    @Test("rewritten trace: report JSON byte for byte the original's; tshark and tcpdump count the packets; io,stat spans them",
          arguments: ["netprobe-host-records", "netprobe-host-old-records"])
    func rewrittenTrace(name: String) throws {
        let original = "traces/\(name).pcapng"
        let bytes = try [UInt8](Data(contentsOf: CLI.packageRoot.appendingPathComponent(original)))
        let copy = try CLI.temp(try MetadataCarriage.rewritingCustomBlocks(bytes, name: original), ".pcapng")
        defer { try? FileManager.default.removeItem(atPath: copy) }

        let report = try CLI.run(["report", copy, "--format", "json"])
        #expect(report.status == 0, "\(report.stderr)")
        let golden = try String(contentsOf: CLI.packageRoot.appendingPathComponent("traces/reports/\(name).json"), encoding: .utf8)
        let mine = report.stdout.replacingOccurrences(of: "\"file\" : \"\(copy)\"", with: "\"file\" : \"\(original)\"")
        #expect(mine == golden, "the report of the rewritten \(name) differs from traces/reports/\(name).json")

        let decoded = try JSONDecoder().decode(Report.self, from: Data(report.stdout.utf8))
        let packets = decoded.trace.packets
        let tshark = try ChildProcess.run(["tshark", "-n", "-r", copy], timeout: 300)
        let tcpdump = try ChildProcess.run(["tcpdump", "-n", "-r", copy], timeout: 300)
        #expect(tshark.stdout.split(separator: "\n").count == packets)
        #expect(tcpdump.stdout.split(separator: "\n").count == packets)
        #expect(!tshark.stderr.split(separator: "\n").contains { !$0.hasPrefix("Running as user") }, "tshark: \(tshark.stderr)")
        // The original's Custom Blocks are frames to tshark 4.0: why the carriage changed.
        let before = try ChildProcess.run(["tshark", "-n", "-r", CLI.packageRoot.appendingPathComponent(original).path], timeout: 300)
        #expect(before.stdout.split(separator: "\n").count > packets)

        // io,stat's duration is the span of the packets (as capinfos measures it).
        let io = try ChildProcess.run(["tshark", "-n", "-r", copy, "-q", "-z", "io,stat,0"], timeout: 300)
        let duration = io.stdout.split(separator: "\n").first { $0.contains("Duration:") }?
            .split(separator: " ").compactMap { Double($0) }.first
        let capinfos = try ChildProcess.run(["capinfos", "-u", "-M", copy], timeout: 300)
        let span = capinfos.stdout.split(separator: "\n").first { $0.hasPrefix("Capture duration:") }?
            .split(separator: " ").compactMap { Double($0) }.first
        let d = try #require(duration, "no Duration in \(io.stdout)"), s = try #require(span, "no duration in \(capinfos.stdout)")
        #expect(s > 0.01 && s < 10, "its 1000 requests took about 50 ms: capinfos says \(s) s")
        #expect(abs(d - s) < 0.01, "io,stat says \(d) s, the packets span \(s) s")
    }
}
