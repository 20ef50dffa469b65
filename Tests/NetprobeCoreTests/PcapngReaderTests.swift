import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

@Suite("pcapng reading")
struct PcapngReaderTests {
    static let frame = FrameBuilder.tcp(seq: 7, payload: Array("+OK\r\n".utf8))

    /// Two interfaces, packets on each, custom/unknown/NRB blocks in between, ISBs at the end.
    static func twoInterfaceTrace(swapped: Bool) -> [UInt8] {
        let e = PcapngEncoder(swapped: swapped)
        var out: [UInt8] = []
        e.appendSectionHeader(to: &out, options: [.init(4, string: "test writer")])
        e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 256, name: "virbr0", description: "bridge", tsResolution: 9)
        e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 256, name: "vnet0", description: "tap", tsResolution: 6)
        frame.withUnsafeBytes { e.appendEnhancedPacket(to: &out, interface: 0, ticks: 1_700_000_000_000_000_001, data: $0, originalLength: frame.count, direction: .outbound) }
        e.appendCustom(to: &out, enterpriseNumber: 32473, payload: [1, 2, 3])
        e.appendRaw(to: &out, type: 0x0000_0004, body: [1, 0, 8, 0, 10, 0, 0, 1, 0x61, 0, 0, 0, 0, 0, 0, 0]) // NRB
        e.appendRaw(to: &out, type: 0x1234_5678, body: [9, 9, 9, 9]) // unknown block type
        frame.withUnsafeBytes { e.appendEnhancedPacket(to: &out, interface: 1, ticks: 1_700_000_000_000_002, data: $0, originalLength: frame.count) }
        e.appendInterfaceStatistics(to: &out, interface: 0, ticks: 0, received: 10, interfaceDropped: 1, osDropped: 2)
        e.appendInterfaceStatistics(to: &out, interface: 1, ticks: 0, received: 10, interfaceDropped: 0, osDropped: 5)
        return out
    }

    @Test("two interfaces, names, resolutions, ISB drops; unknown and custom blocks skipped", arguments: [false, true])
    func twoInterfaces(swapped: Bool) throws {
        let file = try TempFile(Self.twoInterfaceTrace(swapped: swapped), suffix: ".pcapng")
        let (packets, reader) = try readAll(file.path)
        #expect(reader.format == .pcapng)
        #expect(packets.map(\.0) == [0, 1])
        #expect(packets[0].1 == 1_700_000_000_000_000_001)
        #expect(packets[1].1 == 1_700_000_000_000_002_000) // microsecond ticks -> ns
        #expect(packets[0].2 == Self.frame)
        #expect(reader.interfaces.map(\.name) == ["virbr0", "vnet0"])
        #expect(reader.interfaces.map(\.description) == ["bridge", "tap"])
        #expect(reader.interfaces[0].dropped == 3)
        #expect(reader.interfaces[1].dropped == 5)
        #expect(reader.interfaces[1].received == 10)
        #expect(reader.customBlocks.count == 1)
        #expect(reader.customBlocks[0].pen == 32473)
        #expect(reader.sections.first?["application"] == "test writer")
        #expect(reader.warnings.isEmpty)
    }

    @Test("several sections: interface ids restart, byte order may change")
    func sections() throws {
        var out = Self.twoInterfaceTrace(swapped: false)
        let e = PcapngEncoder(swapped: true)
        e.appendSectionHeader(to: &out)
        e.appendInterfaceDescription(to: &out, linkType: .raw, snapLength: 0, name: nil)
        let raw = Array(Self.frame[14...])
        raw.withUnsafeBytes { e.appendEnhancedPacket(to: &out, interface: 0, ticks: 5, data: $0, originalLength: raw.count) }
        let file = try TempFile(out, suffix: ".pcapng")
        let (packets, reader) = try readAll(file.path)
        #expect(packets.count == 3)
        #expect(packets[2].0 == 2)
        #expect(reader.interfaces[2].name == "s1.if0")
        #expect(reader.interfaces[2].linkType == .raw)
        #expect(reader.interfaces[2].nameRecorded == false)
    }

    @Test("binary and decimal if_tsresol, if_tsoffset")
    func timestampResolutions() {
        var i = TraceInterface(name: "x", nameRecorded: true, linkType: .ethernet, snapLength: 0)
        i.tsResolutionIsBinary = true
        i.tsResolutionExponent = 10 // 1/1024 s
        #expect(i.nanoseconds(fromTicks: 1024) == 1_000_000_000)
        #expect(i.nanoseconds(fromTicks: 1) == 976_562)
        i.tsResolutionIsBinary = false
        i.tsResolutionExponent = 3
        #expect(i.nanoseconds(fromTicks: 5) == 5_000_000)
        i.tsResolutionExponent = 12
        #expect(i.nanoseconds(fromTicks: 5_000) == 5)
        i.tsOffsetSeconds = 2
        #expect(i.nanoseconds(fromTicks: 5_000) == 2_000_000_005)
    }

    @Test("a Simple Packet Block belongs to interface 0, cut to its snaplen")
    func simplePacket() throws {
        let e = PcapngEncoder()
        var out: [UInt8] = []
        e.appendSectionHeader(to: &out)
        e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 40, name: "eth0")
        Self.frame.withUnsafeBytes { e.appendSimplePacket(to: &out, data: $0, originalLength: Self.frame.count) }
        let file = try TempFile(out, suffix: ".pcapng")
        let (packets, _) = try readAll(file.path)
        #expect(packets.count == 1)
        #expect(packets[0].2.count == 40)
    }

    @Test("a block claiming 2 GiB is refused with its offset; memory stays bounded")
    func hugeBlock() throws {
        var out = Self.twoInterfaceTrace(swapped: false)
        let offset = out.count
        out += [6, 0, 0, 0] + [0, 0, 0, 0x80] + [UInt8](repeating: 0, count: 64) // EPB claiming 2 GiB
        let file = try TempFile(out, suffix: ".pcapng")
        let reader = try TraceReader(path: file.path)
        var n = 0
        do {
            while try reader.next() != nil { n += 1 }
            Issue.record("expected an error")
        } catch let e as TraceError {
            #expect(n == 2)
            #expect(e.offset == Int64(offset + 4))
            #expect(e.message.contains("claims 2147483648 bytes"))
        }
    }

    @Test("a wrong trailing length is an error at the trailer's offset")
    func badTrailer() throws {
        var out: [UInt8] = []
        let e = PcapngEncoder()
        e.appendSectionHeader(to: &out)
        let idbStart = out.count
        e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 0, name: "a")
        out[out.count - 4] ^= 0x40
        let file = try TempFile(out, suffix: ".pcapng")
        let reader = try TraceReader(path: file.path)
        do {
            _ = try reader.next()
            Issue.record("expected an error")
        } catch let err as TraceError {
            #expect(err.offset == Int64(out.count - 4))
            #expect(err.message.contains("trailing block length"))
            #expect(idbStart > 0)
        }
    }

    @Test("a capture cut anywhere: the complete blocks before the cut are read, then an error at the cut block (exit 2); cut inside the first section header it cannot be opened (exit 1)")
    func cutMidBlock() throws {
        let full = Self.twoInterfaceTrace(swapped: false)
        // Where each block starts (and the file's end).
        var boundaries: [Int] = [0]
        while boundaries.last! < full.count {
            let at = boundaries.last!
            let length = Int(full[at + 4]) | Int(full[at + 5]) << 8 | Int(full[at + 6]) << 16 | Int(full[at + 7]) << 24
            boundaries.append(at + length)
        }
        let packetEnds = [boundaries[4], boundaries[8]] // the two Enhanced Packet Blocks end there
        // Cut at every byte position: never a crash, never a packet invented, never a silent end.
        for cut in 1..<full.count {
            let file = try TempFile(Array(full[0..<cut]), suffix: ".pcapng")
            guard cut >= boundaries[1] else {
                #expect(throws: TraceError.self, "cut at \(cut), inside the section header") { try TraceReader(path: file.path) }
                continue
            }
            let reader = try TraceReader(path: file.path)
            var n = 0
            var error: TraceError?
            do {
                while let p = try reader.next() {
                    #expect(p.data.count == Self.frame.count)
                    n += 1
                }
            } catch let e as TraceError {
                error = e
            }
            #expect(n == packetEnds.filter { $0 <= cut }.count, "cut at \(cut)")
            if boundaries.contains(cut) {
                #expect(error == nil, "cut at \(cut), a block boundary: a shorter but whole trace")
            } else {
                let start = boundaries.last { $0 < cut }!
                #expect(error?.offset == Int64(start), "cut at \(cut)")
                #expect(error?.message.contains("cut off") == true)
                #expect(error?.file == file.path)
            }
            #expect(reader.warnings.isEmpty)
        }
    }
}
