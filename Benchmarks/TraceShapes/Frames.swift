// The bytes of the synthetic traces: Ethernet + IPv4 + TCP frames, and redis-benchmark's requests.

/// Builds Ethernet/IPv4/TCP frames between one client address and one Redis server. Checksums are
/// left zero, as on loopback and with checksum offload (no reader here checks them).
struct FrameBuilder {
    var clientMAC: [UInt8]
    var serverMAC: [UInt8]
    var clientIP: [UInt8]
    var serverIP: [UInt8]
    var serverPort: UInt16 = 6379

    /// Loopback, as tcpdump and `netprobe capture -i lo` see it: zero MACs, 127.0.0.1 both ways.
    static let loopback = FrameBuilder(clientMAC: [0, 0, 0, 0, 0, 0], serverMAC: [0, 0, 0, 0, 0, 0],
                                       clientIP: [127, 0, 0, 1], serverIP: [127, 0, 0, 1])
    /// A host talking to a guest (libvirt's default network).
    static let guest = FrameBuilder(clientMAC: [0x0e, 0, 0, 0, 0, 1], serverMAC: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
                                    clientIP: [192, 168, 122, 1], serverIP: [192, 168, 122, 10])

    /// One TCP segment of connection `clientPort`, towards the server or back.
    func frame(clientPort: UInt16, toServer: Bool, seq: UInt32, ack: UInt32, flags: UInt8, payload: [UInt8] = []) -> [UInt8] {
        var f: [UInt8] = []
        f.reserveCapacity(54 + payload.count)
        f += toServer ? serverMAC : clientMAC
        f += toServer ? clientMAC : serverMAC
        f += [0x08, 0x00]
        let total = 40 + payload.count
        f += [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 1, 0x40, 0, 64, 6, 0, 0]
        f += toServer ? clientIP : serverIP
        f += toServer ? serverIP : clientIP
        let (sport, dport) = toServer ? (clientPort, serverPort) : (serverPort, clientPort)
        f += [UInt8(sport >> 8), UInt8(sport & 0xff), UInt8(dport >> 8), UInt8(dport & 0xff)]
        f += [UInt8(seq >> 24), UInt8(seq >> 16 & 0xff), UInt8(seq >> 8 & 0xff), UInt8(seq & 0xff)]
        f += [UInt8(ack >> 24), UInt8(ack >> 16 & 0xff), UInt8(ack >> 8 & 0xff), UInt8(ack & 0xff)]
        f += [0x50, flags, 0x01, 0xf5, 0, 0, 0, 0]
        f += payload
        return f
    }
}

/// TCP flags.
enum TCPFlags {
    static let syn: UInt8 = 0x02
    static let synAck: UInt8 = 0x12
    static let ack: UInt8 = 0x10
    static let push: UInt8 = 0x18
    static let finAck: UInt8 = 0x11
}

/// redis-benchmark's default traffic: `SET key:NNNNNNNNNNNN xxx` and `GET key:NNNNNNNNNNNN`
/// (3-byte values, 100,000 keys), alternating.
enum BenchmarkCommands {
    /// Request `n`: its bytes, its reply's bytes, and whether it is a SET.
    static func request(_ n: Int) -> (request: [UInt8], reply: [UInt8], isSet: Bool) {
        var key: [UInt8] = Array("key:".utf8)
        var digits = [UInt8](repeating: 0x30, count: 12)
        var k = (n &* 7) % 100_000
        var i = 11
        while k > 0 { digits[i] = 0x30 + UInt8(k % 10); k /= 10; i -= 1 }
        key += digits
        if n % 2 == 0 {
            return (Array("*3\r\n$3\r\nSET\r\n$16\r\n".utf8) + key + Array("\r\n$3\r\nxxx\r\n".utf8), Array("+OK\r\n".utf8), true)
        }
        return (Array("*2\r\n$3\r\nGET\r\n$16\r\n".utf8) + key + Array("\r\n".utf8), Array("$3\r\nxxx\r\n".utf8), false)
    }
}

/// One client connection's state: its port and the next sequence number each way.
struct SyntheticConnection {
    var port: UInt16
    var clientSeq: UInt32
    var serverSeq: UInt32
    /// Payload bytes each way so far (the client records' stream offsets).
    var sent: UInt64 = 0
    var received: UInt64 = 0

    init(port: UInt16, clientISN: UInt32 = 1000, serverISN: UInt32 = 5000) {
        self.port = port
        clientSeq = clientISN &+ 1
        serverSeq = serverISN &+ 1
    }
}
