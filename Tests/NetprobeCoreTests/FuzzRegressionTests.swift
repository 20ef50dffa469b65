import Foundation
import Testing
@testable import NetprobeCore

/// Replays every input in Fuzz/regressions/ through the same code paths as the fuzz targets.
@Suite("fuzz regressions")
struct FuzzRegressionTests {
    static let directory: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Fuzz/regressions").path
    }()

    static var inputs: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    @Test("every saved fuzz input is handled without a crash")
    func replay() throws {
        for name in Self.inputs {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(Self.directory)/\(name)")))
            if name.hasPrefix("trace-") {
                if let reader = try? TraceReader(bytes: bytes, name: name) {
                    let join = RequestJoin()
                    let a = TraceAnalyzer().analyze(reader) { join.add($0) }
                    _ = Report(analysis: a, file: name, format: reader.format.rawValue)
                    _ = Attribution.compute(join, inputs: AttributionInputs(vantages: a.vantages.map { ($0.name, "other") }))
                }
            } else if name.hasPrefix("resp-"), let control = bytes.first {
                var d = RESPStreamDecoder(role: control & 1 == 0 ? .requests : .responses)
                Array(bytes.dropFirst()).withUnsafeBytes { raw in
                    _ = d.feed(.data(raw, sequence: 0, timestampNs: 0)) { _ in }
                }
            }
        }
    }

    @Test("an in-memory trace reads like the same file")
    func memoryEqualsFile() throws {
        let path = "\(tracesDirectory)/loopback-pipelined.pcap"
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let a = TraceAnalyzer().analyze(try TraceReader(bytes: bytes))
        let b = TraceAnalyzer().analyze(try TraceReader(path: path))
        #expect(a.packets == b.packets)
        #expect(a.vantages.map(\.requests) == b.vantages.map(\.requests))
    }
}
