import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

@Suite("classic pcap reading")
struct PcapReaderTests {
    @Test("micro- and nanosecond magic in both byte orders", arguments: [(false, false), (false, true), (true, false), (true, true)])
    func magicAndByteOrder(nanosecond: Bool, swapped: Bool) throws {
        var b = PcapBuilder(nanosecond: nanosecond, swapped: swapped)
        let frame = FrameBuilder.tcp(seq: 1, payload: Array("PING\r\n".utf8))
        b.add(frame, ns: 1_700_000_000_123_456_789)
        b.add(frame, ns: 1_700_000_001_000_001_000)
        let file = try TempFile(b.bytes)
        let (packets, reader) = try readAll(file.path)
        #expect(reader.format == .pcap)
        #expect(packets.count == 2)
        #expect(packets[0].2 == frame)
        #expect(packets[0].1 == (nanosecond ? 1_700_000_000_123_456_789 : 1_700_000_000_123_456_000))
        #expect(packets[1].1 == 1_700_000_001_000_001_000)
        #expect(reader.interfaces.count == 1)
        #expect(reader.interfaces[0].linkType == .ethernet)
        #expect(reader.warnings.isEmpty)
    }

    @Test("a file cut inside a record header or a record: the packets before it, then an error at the record's offset", arguments: [10, 70])
    func truncatedRecord(cutFromEnd: Int) throws {
        var b = PcapBuilder()
        let frame = FrameBuilder.tcp(seq: 1, payload: Array("PING\r\n".utf8))
        b.add(frame, ns: 1_000_000_000)
        b.add(frame, ns: 2_000_000_000)
        let file = try TempFile(Array(b.bytes[0..<(b.bytes.count - cutFromEnd)]))
        let reader = try TraceReader(path: file.path)
        #expect(try reader.next() != nil)
        let error = #expect(throws: TraceError.self) { try reader.next() }
        #expect(error?.offset == Int64(24 + 16 + frame.count))
        #expect(error?.message.contains("cut off") == true)
        #expect(error?.file == file.path)
        #expect(reader.warnings.isEmpty)
        #expect(try reader.next() == nil)
    }

    @Test("a record claiming an absurd length is an error naming file and offset, after the good packets")
    func hostileLength() throws {
        var b = PcapBuilder()
        b.add(FrameBuilder.tcp(seq: 1), ns: 1)
        let offset = b.bytes.count
        b.u32(0); b.u32(0); b.u32(0x7fff_ffff); b.u32(0x7fff_ffff)
        let file = try TempFile(b.bytes)
        let reader = try TraceReader(path: file.path)
        #expect(try reader.next() != nil)
        do {
            _ = try reader.next()
            Issue.record("expected an error")
        } catch let e as TraceError {
            #expect(e.file == file.path)
            #expect(e.offset == Int64(offset + 8))
            #expect(e.description.contains("captured length"))
        }
    }

    @Test("garbage and empty files are refused with a clear error")
    func notATrace() throws {
        let garbage = try TempFile(Array("hello world, not a capture".utf8))
        #expect(throws: TraceError.self) { try TraceReader(path: garbage.path) }
        let empty = try TempFile([])
        do {
            _ = try TraceReader(path: empty.path)
            Issue.record("expected an error")
        } catch let e as TraceError {
            #expect(e.description.contains("empty"))
        }
        #expect(throws: TraceError.self) { try TraceReader(path: "/nonexistent/netprobe.pcap") }
    }
}
