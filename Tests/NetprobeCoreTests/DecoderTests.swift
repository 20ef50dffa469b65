import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

@Suite("packet decoding")
struct DecoderTests {
    let decoder = PacketDecoder()

    func decode(_ bytes: [UInt8], _ link: LinkType = .ethernet) -> Result<(TCPSegment, [UInt8]), DecodeError> {
        bytes.withUnsafeBytes { raw in
            decoder.decode(raw, linkType: link).map { ($0, Array($0.payload)) }
        }
    }

    @Test("Ethernet, 802.1Q, IPv4, TCP; Ethernet padding is not payload")
    func ethernet() throws {
        for vlan in [nil, UInt16(42)] as [UInt16?] {
            let f = FrameBuilder.tcp(seq: 100, ack: 5, payload: Array("hi".utf8), ipID: 77, vlan: vlan, padTo: 64)
            let (s, payload) = try decode(f).get()
            #expect(s.source.port == 40000)
            #expect(s.destination.port == 6379)
            #expect(s.sequence == 100)
            #expect(s.acknowledgement == 5)
            #expect(s.ipID == 77)
            #expect(payload == Array("hi".utf8))
            #expect(s.payloadLength == 2)
            #expect(s.source.address.description == "10.0.0.1")
        }
    }

    @Test("Linux cooked v1 and v2, raw IP, BSD loopback")
    func otherLinkTypes() throws {
        let eth = FrameBuilder.tcp(seq: 1, payload: [1, 2, 3])
        let ip = Array(eth[14...])
        let sll: [UInt8] = [0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00] + ip
        let sll2: [UInt8] = [0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0] + ip
        let null: [UInt8] = [2, 0, 0, 0] + ip
        for (bytes, link) in [(sll, LinkType.linuxSLL), (sll2, .linuxSLL2), (ip, .raw), (ip, .ipv4), (null, .null)] {
            let (s, payload) = try decode(bytes, link).get()
            #expect(payload == [1, 2, 3], "link \(link)")
            #expect(s.sequence == 1)
        }
    }

    @Test("IPv6 with a hop-by-hop extension header")
    func ipv6() throws {
        let tcp = FrameBuilder.tcpHeader(sport: 1234, dport: 6379, seq: 9, ack: 0, flags: 0x18) + Array("PING\r\n".utf8)
        let hbh: [UInt8] = [6, 0, 0, 0, 0, 0, 0, 0] // next header TCP, length 8
        var ip: [UInt8] = [0x60, 0, 0, 0] + FrameBuilder.be16(UInt16(hbh.count + tcp.count)) + [0, 64]
        ip += [UInt8](repeating: 0, count: 15) + [1] + [UInt8](repeating: 0, count: 15) + [2]
        let frame: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xDD] + ip + hbh + tcp
        let (s, payload) = try decode(frame).get()
        #expect(payload == Array("PING\r\n".utf8))
        #expect(s.source.address.isIPv6)
        #expect(s.ipID == nil)
    }

    @Test("snaplen-cut payload: wire length from the IP header, captured bytes as present")
    func snaplenCut() throws {
        let f = FrameBuilder.tcp(seq: 1, payload: [UInt8](repeating: 0x61, count: 100))
        let (s, payload) = try decode(Array(f[0..<(54 + 10)])).get()
        #expect(payload.count == 10)
        #expect(s.payloadLength == 100)
    }

    @Test("damaged and foreign packets are counted by reason", arguments: [
        ([UInt8](repeating: 0, count: 10), DecodeOutcome.truncatedLinkHeader),
        ([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x06] + [UInt8](repeating: 0, count: 28), .notIP),
        ([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0], .truncatedIPHeader),
        ([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00] + FrameBuilder.ipv4Header(src: 1, dst: 2, payloadLength: 8, proto: 17) + [UInt8](repeating: 0, count: 8), .notTCP),
        ([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00] + FrameBuilder.ipv4Header(src: 1, dst: 2, payloadLength: 20) + [0, 1, 0, 2], .truncatedTCPHeader),
    ])
    func problems(bytes: [UInt8], expected: DecodeOutcome) {
        switch decode(bytes) {
        case .success: Issue.record("decoded a packet that should have failed")
        case let .failure(e): #expect(e.outcome == expected)
        }
    }

    @Test("a TCP data offset below 5 words is a bad header")
    func badDataOffset() {
        var f = FrameBuilder.tcp(seq: 1)
        f[14 + 20 + 12] = 0x20
        switch decode(f) {
        case .success: Issue.record("accepted a bad TCP header")
        case let .failure(e): #expect(e.outcome == .badTCPHeader)
        }
    }
}
