import Testing
import NetprobeTrace

@Suite("what a file's first bytes say it is")
struct TraceFormatTests {
    @Test("pcap in both byte orders and its variants, pcapng; text and short files are not traces")
    func magics() {
        #expect(TraceReader.format(ofFileStart: [0xd4, 0xc3, 0xb2, 0xa1]) == .pcap)
        #expect(TraceReader.format(ofFileStart: [0xa1, 0xb2, 0x3c, 0x4d]) == .pcap)
        #expect(TraceReader.format(ofFileStart: [0x34, 0xcd, 0xb2, 0xa1, 2, 0]) == .pcap)
        #expect(TraceReader.format(ofFileStart: [0x0A, 0x0D, 0x0D, 0x0A, 0x1C, 0, 0, 0]) == .pcapng)
        #expect(TraceReader.format(ofFileStart: Array("{\n  ".utf8)) == nil)
        #expect(TraceReader.format(ofFileStart: [0x0A, 0x0D]) == nil)
    }
}
