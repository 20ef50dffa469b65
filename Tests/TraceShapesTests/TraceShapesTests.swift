import Foundation
import NetprobeCore
import Testing
import TraceShapes

/// netprobe-bench's trace shapes (Benchmarks/TraceShapes) are what they claim: `report` reads each
/// one, pairs every request synthesised at every vantage point with none left over, joins them
/// all, and (client-records) times them all by the load generator's records. The benchmark checks
/// the same on its big traces; this catches a synthesiser gone wrong without running it.
@Suite("netprobe-bench's trace shapes")
struct TraceShapesTests {
    @Test("report pairs and joins every synthesised request", arguments: TraceShape.allCases)
    func reportFindsEveryRequest(shape: TraceShape) throws {
        let path = NSTemporaryDirectory() + "trace-shape-\(getpid())-\(shape.rawValue).\(shape.fileExtension)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let made = try shape.synthesise(path: path, packets: 6_000)

        let (report, analysis) = try ReportBuilder.build(path: path)

        #expect(made.packets >= 6_000)
        #expect(analysis.packets == made.packets)
        #expect(try TraceReader(path: path).format == (shape.fileExtension == "pcap" ? .pcap : .pcapng))
        #expect(Dictionary(uniqueKeysWithValues: analysis.vantages.map { ($0.name, $0.requests) }) == made.requestsPerVantage)
        #expect(analysis.vantages.allSatisfy { $0.unpairedTotal == 0 && $0.desynchronisedStreams == 0 })
        #expect(analysis.vantages.allSatisfy { $0.connections == made.connections })
        #expect(report.attribution?.requestsJoined == made.requestsPerVantage.values.min())
        #expect(shape.isSingleVantage == (made.requestsPerVantage.count == 1))
        if shape == .clientRecords {
            #expect(made.clientRecords == made.requestsPerVantage["lo"])
            #expect(report.attribution?.endToEndDefinition.hasPrefix("at the client") == true)
            #expect(report.attribution?.endToEndUs?.count == made.clientRecords)
        } else {
            #expect(made.clientRecords == 0)
        }
    }

    @Test("the shapes written through CaptureOrder are in capture-time order, as a capture is",
          arguments: TraceShape.allCases.filter { $0 != .twoVantage })
    func captureTimeOrder(shape: TraceShape) throws {
        let path = NSTemporaryDirectory() + "trace-shape-order-\(getpid())-\(shape.rawValue).\(shape.fileExtension)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try shape.synthesise(path: path, packets: 3_000)
        let reader = try TraceReader(path: path)
        var last = Int64.min
        var outOfOrder = 0
        while let p = try reader.next() {
            if p.timestampNs < last { outOfOrder += 1 }
            last = p.timestampNs
        }
        #expect(outOfOrder == 0)
    }
}
