import Foundation
import Testing
@testable import NetprobeCapture
import NetprobeCore

/// Issue 16, item 3: a capture of Redis on another port than 6379 reports its requests without
/// `--port`: the trace records Redis's address, and report and compare use it (and say so).
@Suite("the Redis port a capture recorded", .serialized, .enabled(if: isRoot, rootNote))
struct RecordedPortTests {
    @Test("capture --redis HOST:7399: report and compare find the requests on 7399 without --port")
    func recordedPortIsUsed() throws {
        let topo = try TestTopology(port: 7399)
        defer { topo.teardown() }
        let out = tempPath(".pcapng")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let (status, _) = try sh([CaptureCLITests.binary, "capture", "-i", "npbr0", "-i", "npv0", "--netns", topo.client,
                                  "--role", "npv0=veth", "--redis", "10.78.0.2:7399", "--duration", "60s", "-w", out,
                                  "--quiet", "--", "netprobe", "load", "--target", "10.78.0.2:7399", "--connections", "2",
                                  "--requests", "500"])
        #expect(status == 0)
        #expect(ReportBuilder.recordedRedis(path: out) == HostPort(host: "10.78.0.2", port: 7399))
        let (reportStatus, json) = try sh([CaptureCLITests.binary, "report", out, "--format", "json"])
        #expect(reportStatus == 0)
        let report = try JSONDecoder().decode(Report.self, from: Data(json.utf8))
        #expect(report.vantages.allSatisfy { $0.requests.total >= 500 })
        #expect(report.capture?.notes.contains { $0.hasPrefix("port 7399 analysed as Redis") } == true)
        // INFO came from that Redis and is used, not denied.
        #expect(report.segments.first { $0.name == "redis" }?.resolved == true)
        #expect(report.attribution?.notes.contains { $0.contains("no Redis INFO") } == false)
        // --port names the ports instead: 6379 alone finds nothing, and says so (exit 3).
        let (explicitStatus, _) = try sh([CaptureCLITests.binary, "report", out, "--port", "6379"], allowFailure: true)
        #expect(explicitStatus == 3)
        let (compareStatus, text) = try sh([CaptureCLITests.binary, "compare", out])
        #expect(compareStatus == 0)
        #expect(!text.contains(" 0 requests"))
    }
}
