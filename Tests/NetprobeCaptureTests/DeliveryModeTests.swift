import Foundation
import Testing
@testable import NetprobeCapture
import NetprobeCore
import NetprobeHarness

@Suite("capture delivery: --immediate-mode and block delivery")
struct DeliveryModeTests {
    @Test("--immediate-mode as in tcpdump; block delivery unless asked", arguments: [false, true])
    func flag(immediate: Bool) throws {
        // --netns names the namespace, so planning does not look for the interface.
        var request = CaptureRequest()
        request.interfaces = ["lo"]
        request.namespace = "npt-nowhere"
        request.duration = .seconds(1)
        request.immediateMode = immediate
        #expect(request.arguments.contains("--immediate-mode") == immediate)
        #expect(try CapturePlanner.plan(request, labs: []).settings.immediate == immediate)
    }

    @Test("loopback under redis-benchmark, both modes: drops counted, every request in the file when none, the outgoing copies kept out of the socket",
          .enabled(if: isRoot, rootNote), arguments: [false, true])
    func loopback(immediate: Bool) throws {
        let topo = try TestTopology(loopbackOnly: true)
        defer { topo.teardown() }
        let out = tempPath(".pcapng")
        defer { try? FileManager.default.removeItem(atPath: out) }
        var c = CaptureConfiguration(vantages: [CaptureVantage(interface: "lo", role: "host", namespace: topo.client)], output: out)
        c.settings.immediate = immediate
        c.loadCommand = ["redis-benchmark", "-h", "127.0.0.1", "-c", "10", "-n", "20000", "-t", "get,set", "-q"]
        c.loadNamespace = topo.client
        c.durationNs = 120_000_000_000
        let summary = try CaptureSession(configuration: c).run()
        #expect(summary.loadExitStatus == 0)
        let v = try #require(summary.vantages.first)
        let dropped = try #require(v.dropped, "the kernel's drop count is missing")
        // PACKET_IGNORE_OUTGOING: the kernel counts each loopback packet once, and every packet
        // it counted and did not drop (a loaded machine, sanitizers) is in the file.
        #expect(v.receivedCopiesPerPacket == 1)
        #expect(v.received == v.written + dropped, "\(v.written) written + \(dropped) dropped of \(v.received ?? 0) received")
        let (report, analysis) = try ReportBuilder.build(path: out)
        #expect(analysis.error == nil)
        let vantage = try #require(report.vantages.first)
        if dropped == 0 {
            #expect(vantage.requests.byCommand["GET"] == 20_000)
            #expect(vantage.requests.byCommand["SET"] == 20_000)
            #expect(vantage.unpairedRequests == 0)
        } else {
            #expect((vantage.requests.byCommand["GET"] ?? 0) <= 20_000 && (vantage.requests.byCommand["SET"] ?? 0) <= 20_000)
        }
    }
}

@Suite("pcapng writer: the per-packet path")
struct WriterFastPathTests {
    @Test("appendEnhancedPacket writes the encoder's bytes, for every padding", arguments: 0...9)
    func sameBytes(length: Int) throws {
        let path = tempPath(".pcapng")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let packet = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 1) }
        let ticks: UInt64 = 1_764_000_000_123_456_789
        let writer = try PcapngFileWriter(path: path)
        try packet.withUnsafeBytes { try writer.appendEnhancedPacket(interface: 3, ticks: ticks, data: $0, originalLength: length + 100) }
        try packet.withUnsafeBytes { try writer.appendEnhancedPacket(interface: 0, ticks: 7, data: $0, originalLength: length) }
        try writer.close()
        var expected: [UInt8] = []
        packet.withUnsafeBytes {
            PcapngEncoder().appendEnhancedPacket(to: &expected, interface: 3, ticks: ticks, data: $0, originalLength: length + 100)
            PcapngEncoder().appendEnhancedPacket(to: &expected, interface: 0, ticks: 7, data: $0, originalLength: length)
        }
        let written = try #require(FileManager.default.contents(atPath: path))
        #expect([UInt8](written) == expected)
        #expect(writer.size == Int64(expected.count))
    }
}
