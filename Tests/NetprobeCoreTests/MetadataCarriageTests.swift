import Foundation
import Testing
@testable import NetprobeCore
@testable import NetprobeTrace

/// netprobe's own data in custom options of Section Header and Interface Statistics Blocks
/// (`MetadataCarriage`), and older traces' Custom Blocks rewritten into them.
@Suite("netprobe's data in pcapng custom options")
struct MetadataCarriageTests {
    static let run = RunMetadata(netprobeVersion: "t", startedNs: 1_000, hostKernel: "Linux", hostname: "h", setup: "host",
                                 vantages: [.init(interface: "a", role: "bridge", namespace: nil),
                                            .init(interface: "b", role: "tap", namespace: nil)],
                                 filter: "tcp port 6379", snapLength: 128,
                                 // Non-ASCII text across option boundaries: pieces are cut between characters.
                                 domainXML: String(repeating: "<x>é€😀</x>", count: 20_000))

    /// A trace in netprobe's carriage: SHB with the run, two interfaces, packets, data ISBs (one
    /// after the statistics ISB), a binary item of four options, another vendor's custom option.
    static func trace(swapped: Bool) throws -> (bytes: [UInt8], items: [[UInt8]]) {
        let e = PcapngEncoder(swapped: swapped)
        var out: [UInt8] = []
        let runPayload = try NetprobeBlock.run(run).payload()
        e.appendSectionHeader(to: &out, options: [.init(1, string: MetadataCarriage.fileComment)]
                              + (try MetadataCarriage.options(for: runPayload, swapped: swapped)))
        e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 128, name: "a")
        e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 128, name: "b")
        let sample = try NetprobeBlock.netlink(NetlinkSample(timeNs: 2_000, interface: "b", link: nil, qdisc: nil)).payload()
        try e.appendNetprobeData(to: &out, payload: sample, interface: 1, ticks: 2_000)
        let frame = [UInt8](repeating: 0xAB, count: 60)
        frame.withUnsafeBytes { e.appendEnhancedPacket(to: &out, interface: 0, ticks: 3_000, data: $0, originalLength: 60) }
        // Binary records: 4 options' worth, any byte values.
        let records = ClientRecordFormat.magic + (0..<(3 * MetadataCarriage.pieceLength + 1000)).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try e.appendNetprobeData(to: &out, payload: records, interface: 0, ticks: 4_000)
        // Another vendor's custom option in a statistics block: neither an item nor a counter.
        e.appendInterfaceStatistics(to: &out, interface: 0, ticks: 5_000, received: 9, interfaceDropped: 1, osDropped: 2,
                                    extra: [.init(custom: 2989, enterpriseNumber: 12345, data: [1, 2, 3], swapped: swapped)])
        frame.withUnsafeBytes { e.appendEnhancedPacket(to: &out, interface: 1, ticks: 6_000, data: $0, originalLength: 60) }
        let info = try NetprobeBlock.redisInfo(RedisInfoSnapshot(phase: "after", timeNs: 7_000, address: "x:1",
                                                                  commandstats: "", latencystats: "")).payload()
        try e.appendNetprobeData(to: &out, payload: info, interface: 0, ticks: 7_000)
        return (out, [runPayload, sample, records, info])
    }

    @Test("the reader hands on each item whole and in order, in both byte orders; statistics stay the statistics ISB's", arguments: [false, true])
    func readBack(swapped: Bool) throws {
        let (bytes, items) = try Self.trace(swapped: swapped)
        let reader = try TraceReader(bytes: bytes)
        var packets = 0
        while try reader.next() != nil { packets += 1 }
        #expect(packets == 2)
        #expect(reader.warnings.isEmpty, "\(reader.warnings)")
        #expect(reader.customBlocks.map(\.pen) == [UInt32](repeating: 32473, count: 4))
        #expect(reader.customBlocks.map(\.payload) == items)
        #expect(NetprobeBlock.decode(enterpriseNumber: 32473, payload: reader.customBlocks[0].payload) == .run(Self.run))
        #expect(reader.interfaces[0].received == 9 && reader.interfaces[0].interfaceDropped == 1 && reader.interfaces[0].osDropped == 2)
        #expect(reader.interfaces[1].received == nil)
        #expect(reader.sections.first?["comment"] == MetadataCarriage.fileComment)
    }

    @Test("damaged carriage (bytes overwritten at 3,000 seeded places) is read without a crash, in both byte orders", arguments: [false, true])
    func damaged(swapped: Bool) throws {
        let (bytes, _) = try Self.trace(swapped: swapped)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(truncatingIfNeeded: state >> 33)
        }
        // Most damage is aimed at the blocks' option lists (the first 4 KiB and the ISBs' headers).
        for _ in 0..<3000 {
            var copy = bytes
            for _ in 0..<(1 + next() % 4) {
                let at = next() % 2 == 0 ? next() % 4096 : next() % copy.count
                copy[at] = UInt8(truncatingIfNeeded: next())
            }
            guard let reader = try? TraceReader(bytes: copy) else { continue }
            var items = 0
            reader.onCustomBlock = { _, payload in items += payload.count > 0 ? 1 : 0; return true }
            while (try? reader.next()) != nil {}
            #expect(items <= 6)
        }
    }

    @Test("options: at most 65,535 bytes each, 2988 for JSON cut between characters, 2989 for binary; too large an item is refused")
    func options() throws {
        let json = try NetprobeBlock.run(Self.run).payload()
        let textOptions = try MetadataCarriage.options(for: json, swapped: false)
        #expect(textOptions.count > 1)
        #expect(textOptions.allSatisfy { $0.code == 2988 && $0.value.count <= 65_535 })
        #expect(textOptions.allSatisfy { String(validating: $0.value.dropFirst(4), as: UTF8.self) != nil })
        #expect(textOptions.flatMap { $0.value.dropFirst(4) } == json)
        let binary = ClientRecordFormat.magic + [UInt8](repeating: 0xE2, count: 70_000)
        let binaryOptions = try MetadataCarriage.options(for: binary, swapped: false)
        #expect(binaryOptions.map(\.code) == [2989, 2989])
        #expect(binaryOptions[0].value.count == 65_532)
        #expect(throws: MetadataCarriage.TooLarge.self) {
            try MetadataCarriage.options(for: [UInt8](repeating: 0, count: MetadataCarriage.maximumPayload + 1), swapped: false)
        }
    }

    /// The pcapng block types of a file, in order (little-endian files only).
    static func blockTypes(_ bytes: [UInt8]) -> [UInt32] {
        var types: [UInt32] = []
        var i = 0
        bytes.withUnsafeBytes { raw in
            while i + 12 <= raw.count {
                types.append(raw.loadUnaligned(fromByteOffset: i, as: UInt32.self))
                i += Int(raw.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self))
            }
        }
        return types
    }

    @Test("an older netprobe trace rewritten: no Custom Block left, the same packets and the same items in the same order",
          arguments: ["netprobe-host-records.pcapng", "netprobe-host-old-records.pcapng"])
    func rewriteRealTrace(name: String) throws {
        let path = "\(tracesDirectory)/\(name)"
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(Self.blockTypes(original).contains(0x0BAD))
        let rewritten = try MetadataCarriage.rewritingCustomBlocks(original, name: path)
        #expect(!Self.blockTypes(rewritten).contains(0x0BAD))

        func read(_ bytes: [UInt8]) throws -> (packets: [Int64], items: [[UInt8]]) {
            let reader = try TraceReader(bytes: bytes)
            var stamps: [Int64] = []
            while let p = try reader.next() { stamps.append(p.timestampNs) }
            #expect(reader.warnings.isEmpty)
            // A Custom Block pads JSON with zeros; an option carries it exactly.
            let items = reader.customBlocks.map { b in
                b.payload.starts(with: NetprobeBlock.magic) ? Array(b.payload.reversed().drop { $0 == 0 }.reversed()) : b.payload
            }
            return (stamps, items)
        }
        let before = try read(original), after = try read(rewritten)
        #expect(after.packets == before.packets)
        #expect(after.items.count == before.items.count)
        #expect(after.items == before.items)
    }

    @Test("rewriting refuses what is not whole pcapng blocks, naming the offset")
    func rewriteDamaged() throws {
        let (bytes, _) = try Self.trace(swapped: false)
        let error = #expect(throws: TraceError.self) { try MetadataCarriage.rewritingCustomBlocks(Array(bytes.dropLast(2)), name: "cut") }
        #expect(error?.file == "cut")
        #expect(error?.description.contains("file ends") == true || error?.description.contains("within the file") == true)
        #expect(throws: TraceError.self) { try MetadataCarriage.rewritingCustomBlocks([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) }
    }
}
