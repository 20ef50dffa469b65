import Testing
@testable import NetprobeModel

@Suite("client record format: entries and blocks")
struct ClientRecordFormatTests {
    typealias F = ClientRecordFormat

    static let v4 = F.Address(isIPv6: false, high: 0, low: 0x0A00_0001)
    static let v4Server = F.Address(isIPv6: false, high: 0, low: 0x0A00_0002)
    static let v6 = F.Address(isIPv6: true, high: 0xFD00_0000_0000_0000, low: 0x0000_0000_0000_0002)

    static func connection(_ index: UInt16, port: UInt16 = 40000, v6: Bool = false) -> F.Connection {
        F.Connection(index: index, client: v6 ? Self.v6 : v4, clientPort: port &+ index, server: v6 ? Self.v6 : v4Server,
                     serverPort: 6379, connectedNs: 1_700_000_000_000_000_000 + Int64(index))
    }

    static func request(_ connection: UInt16, _ k: Int) -> F.Request {
        F.Request(connection: connection, command: UInt8(1 + k % 2), flags: k % 7 == 0 ? 1 : 0, clientPort: 40000 &+ connection,
                  requestOffset: UInt64(k) * 40 + (k == 3 ? 1 << 40 : 0), requestLength: 40, replyOffset: UInt64(k) * 5,
                  sendNs: 1_700_000_000_000_000_000 + Int64(k) * 1000, receiveNs: 1_700_000_000_000_000_000 + Int64(k) * 1000 + 50_000)
    }

    @Test("entries round-trip; the bytes sit where the layout says")
    func entries() {
        for c in [Self.connection(3), Self.connection(65535, v6: true)] {
            let bytes = F.encode(c)
            #expect(bytes.count == F.entryLength)
            #expect(bytes.withUnsafeBytes { F.decode($0) } == .connection(c))
        }
        let v6 = F.encode(Self.connection(1, v6: true))
        #expect(v6[0] == 1 && v6[1] == 6)
        #expect(Array(v6[8..<24]) == [0xFD] + [UInt8](repeating: 0, count: 14) + [2])
        let v4 = F.encode(Self.connection(1))
        #expect(v4[1] == 4 && Array(v4[8..<12]) == [10, 0, 0, 1] && v4[12..<24].allSatisfy { $0 == 0 })
        let r = Self.request(7, 3)
        let bytes = F.encode(r)
        #expect(bytes.withUnsafeBytes { F.decode($0) } == .request(r))
        #expect(bytes[0] == 2 && bytes[2] == 7 && bytes[3] == 0)
        // Little-endian request offset (1 << 40 | 120) at byte 8.
        #expect(Array(bytes[8..<16]) == [120, 0, 0, 0, 0, 1, 0, 0])
        var unknown = bytes
        unknown[0] = 9
        #expect(unknown.withUnsafeBytes { F.decode($0) } == .unknown(kind: 9))
        #expect(Array(F.header()) == Array("NPLOADTS".utf8) + [1, 0, 48, 0, 0, 0, 0, 0])
    }

    /// A file's entries: connections declared as they open, requests of all of them interleaved.
    static func fileEntries(connections n: UInt16, requests: Int) -> (entries: [[UInt8]], requests: [F.Request]) {
        var entries: [[UInt8]] = []
        var all: [F.Request] = []
        for c in 0..<n { entries.append(F.encode(Self.connection(c))) }
        for k in 0..<requests {
            let r = Self.request(UInt16(k % Int(n)), k)
            all.append(r)
            entries.append(F.encode(r))
        }
        return (entries, all)
    }

    static func read(_ block: [UInt8]) -> (reading: F.BlockReading?, connections: [F.Connection], requests: [F.Request]) {
        var connections: [F.Connection] = []
        var requests: [F.Request] = []
        let reading = block.withUnsafeBytes { F.readBlock($0, connection: { connections.append($0) }, request: { requests.append($0) }) }
        return (reading, connections, requests)
    }

    @Test("a file cut into blocks: each block self-contained, every request once, in order", arguments: [1, 7, 100, 1000])
    func blocks(maximum: Int) {
        let (entries, requests) = Self.fileEntries(connections: 5, requests: 250)
        var builder = F.BlockBuilder(maximumRequests: maximum)
        var blocks: [[UInt8]] = []
        for e in entries { e.withUnsafeBytes { if let b = builder.add($0) { blocks.append(b) } } }
        if let b = builder.finish() { blocks.append(b) }
        #expect(builder.finish() == nil)
        #expect(blocks.count == (250 + maximum - 1) / maximum)
        var seen: [F.Request] = []
        for b in blocks {
            #expect((b.count - F.headerLength) % F.entryLength == 0)
            let (reading, connections, got) = Self.read(b)
            #expect(reading == F.BlockReading())
            #expect(got.count <= maximum)
            // Only the connections the block uses, each once.
            #expect(Set(connections.map(\.index)) == Set(got.map(\.connection)))
            #expect(connections.count == Set(connections.map(\.index)).count)
            seen += got
        }
        #expect(seen == requests)
    }

    @Test("requests of undeclared connections are left out and counted; a redeclared index takes the new connection")
    func undeclaredAndRedeclared() {
        var builder = F.BlockBuilder()
        var blocks: [[UInt8]] = []
        func add(_ e: [UInt8]) { e.withUnsafeBytes { if let b = builder.add($0) { blocks.append(b) } } }
        add(F.encode(Self.request(4, 0))) // connection 4 never declared
        add(F.encode(Self.connection(0)))
        add(F.encode(Self.request(0, 1)))
        add(F.encode(Self.connection(0, port: 50000)))
        add(F.encode(Self.request(0, 2)))
        if let b = builder.finish() { blocks.append(b) }
        #expect(builder.undeclaredRequests == 1)
        #expect(blocks.count == 1)
        let (reading, connections, requests) = Self.read(blocks[0])
        #expect(reading == F.BlockReading())
        #expect(connections.map(\.clientPort) == [40000, 50000])
        #expect(requests == [Self.request(0, 1), Self.request(0, 2)])
    }

    @Test("a block read on its own: damage is counted, other headers are refused")
    func damage() {
        var block = F.header() + F.encode(Self.request(1, 0)) + F.encode(Self.connection(1)) + F.encode(Self.request(1, 1))
        var odd = F.encode(Self.request(1, 2))
        odd[0] = 77
        block += odd + [0, 0, 0]
        var (reading, _, requests) = Self.read(block)
        #expect(requests == [Self.request(1, 1)])
        #expect(reading?.undeclaredRequests == 1)
        #expect(reading?.unknownEntries == 1)
        #expect(reading?.trailingBytes == 0) // pcapng padding
        (reading, _, requests) = Self.read(block + [1, 2, 3, 4, 5])
        #expect(reading?.trailingBytes == 8)
        var otherVersion = block
        otherVersion[8] = 2
        #expect(Self.read(otherVersion).reading == nil)
        #expect(Self.read(Array("NPRB{}".utf8)).reading == nil)
        #expect(Self.read([]).reading == nil)
    }
}
