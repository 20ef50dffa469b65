import Foundation
import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

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
                    _ = Attribution.compute(join, inputs: AttributionInputs(vantages: a.vantages.map { ($0.name, VantageRole.other) }))
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

    /// decode-* inputs are FuzzDecode's (Fuzz/Sources/FuzzDecode/main.swift): a control byte (bits
    /// 0-3 the link type, 4-6 small reassembly limits), then frames with 2-byte big-endian lengths,
    /// decoded and reassembled per direction.
    @Test("every saved FuzzDecode input is handled without a crash")
    func replayDecode() throws {
        let links: [LinkType] = [.ethernet, .linuxSLL, .linuxSLL2, .null, .loop, .raw, .rawAlias12, .rawAlias14,
                                 .ipv4, .ipv6, LinkType(rawValue: 147)]
        for name in Self.inputs where name.hasPrefix("decode-") {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(Self.directory)/\(name)")))
            guard let control = bytes.first else { continue }
            let limit = control & 0x10 != 0 ? 128 : 1 << 20
            let budget = ReassemblyBudget(limit: control & 0x20 != 0 ? 256 : 64 << 20)
            let hold: Int64 = control & 0x40 != 0 ? 2_000_000 : 2_000_000_000
            var streams = [StreamReassembler(perStreamLimit: limit, holdTimeNs: hold),
                           StreamReassembler(perStreamLimit: limit, holdTimeNs: hold)]
            bytes.dropFirst().withUnsafeBytes { input in
                var offset = 0
                var frames: Int64 = 0
                while input.count - offset >= 2 {
                    let n = min(Int(input[offset]) << 8 | Int(input[offset + 1]), input.count - offset - 2)
                    let frame = UnsafeRawBufferPointer(rebasing: input[(offset + 2)..<(offset + 2 + n)])
                    offset += 2 + n
                    frames += 1
                    guard case let .success(s) = PacketDecoder().decode(frame, linkType: links[Int(control & 0x0F) % links.count])
                    else { continue }
                    let d = s.source < s.destination ? 0 : 1
                    streams[d].accept(sequence: s.sequence, acknowledgement: s.acknowledgement, syn: s.flags.contains(.syn),
                                      payload: s.payload, wireLength: s.payloadLength, timestampNs: frames * 1_000_000,
                                      budget: budget) { _ in }
                    if !s.flags.isDisjoint(with: [.fin, .rst]) { streams[d].finish(budget: budget) { _ in } }
                }
            }
            for d in 0..<2 { streams[d].finish(budget: budget) { _ in } }
            #expect(budget.used == 0, "\(name)")
        }
    }
}
