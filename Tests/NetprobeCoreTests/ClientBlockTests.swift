import Foundation
import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

/// The load generator's records in a trace: binary blocks (`ClientRecordBlock`), and the JSON
/// `client-requests` blocks of older traces, both into one table.
@Suite("client record blocks")
struct ClientBlockTests {
    typealias F = ClientRecordFormat

    static let client = Endpoint(address: IPAddress(ipv4: 0x0A00_0001), port: 40000)
    static let server = Endpoint(address: IPAddress(ipv4: 0x0A00_0002), port: 6379)
    static let v6Client = Endpoint(address: IPAddress(ipv6High: 0xFD00 << 48, low: 1), port: 40001)
    static let v6Server = Endpoint(address: IPAddress(ipv6High: 0xFD00 << 48, low: 2), port: 6379)

    /// Blocks of records for connections (client, server) with `n` requests each, interleaved,
    /// and the same records as keys.
    static func blocks(_ connections: [(Endpoint, Endpoint)], requests n: Int, perBlock: Int)
        -> (blocks: [[UInt8]], keys: [(ClientKey, Int64, Int64)]) {
        var builder = F.BlockBuilder(maximumRequests: perBlock)
        var blocks: [[UInt8]] = []
        var keys: [(ClientKey, Int64, Int64)] = []
        func add(_ e: [UInt8]) { e.withUnsafeBytes { if let b = builder.add($0) { blocks.append(b) } } }
        for (i, (c, s)) in connections.enumerated() {
            add(F.encode(F.Connection(index: UInt16(i), client: c.address.recordAddress, clientPort: c.port,
                                      server: s.address.recordAddress, serverPort: s.port, connectedNs: 1)))
        }
        for k in 0..<n {
            for (i, (c, s)) in connections.enumerated() {
                // Offsets past 32 bits are matched in 32, as sequence numbers are.
                let offset = UInt64(k) * 31 + (k == 5 ? 1 << 33 : 0)
                let send = Int64(k * 1000 + i), receive = Int64(k * 1000 + i + 500)
                add(F.encode(F.Request(connection: UInt16(i), command: 2, flags: 0, clientPort: c.port, requestOffset: offset,
                                       requestLength: 31, replyOffset: 0, sendNs: send, receiveNs: receive)))
                keys.append((ClientKey(client: c, server: s, offset: UInt32(truncatingIfNeeded: offset)), send, receive))
            }
        }
        if let b = builder.finish() { blocks.append(b) }
        return (blocks, keys)
    }

    @Test("binary blocks go into the table as the same records added one by one would", arguments: [1, 10, 1000])
    func binaryBlocks(perBlock: Int) {
        let (blocks, keys) = Self.blocks([(Self.client, Self.server), (Self.v6Client, Self.v6Server)], requests: 40, perBlock: perBlock)
        var fromBlocks = ClientRecords()
        for b in blocks { #expect(b.withUnsafeBytes { fromBlocks.add(block: $0) }) }
        #expect(fromBlocks.count == keys.count)
        #expect(fromBlocks.skippedEntries == 0)
        fromBlocks.prepare()
        for (key, send, receive) in keys {
            #expect(fromBlocks.lookup(key)! == (send, receive))
        }
        #expect(fromBlocks.lookup(ClientKey(client: Self.server, server: Self.client, offset: 0)) == nil)
        // Not a block: nothing added.
        var other = ClientRecords()
        #expect(!Array("NPRB{}".utf8).withUnsafeBytes { other.add(block: $0) })
        #expect(other.isEmpty)
    }

    @Test("older traces' JSON client-requests blocks decode with JSONDecoder; netprobe's own are recognised as read")
    func jsonBlocks() throws {
        let c = ClientRequests(client: "10.0.0.1:40000", server: "[fd00:0:0:0:0:0:0:2]:6379", requestOffsets: [0, 31],
                               commands: ["GET", "SET"], sendNs: [-5, 7], receiveNs: [8, 9])
        let payload = try NetprobeBlock.clientRequests(c).payload()
        #expect(NetprobeBlock.decode(enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: payload + [0, 0]) == .clientRequests(c))
        #expect(payload.withUnsafeBytes { NetprobeBlock.decodeClientRequests(enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: $0) } == c)
        #expect(payload.withUnsafeBytes { NetprobeBlock.decodeClientRequests(enterpriseNumber: 1, payload: $0) } == nil)
        // Another key order is not recognised while reading; `decode` still reads it.
        let reordered = NetprobeBlock.magic + Array(#"{"value":{"client":"10.0.0.1:40000","commands":[],"receiveNs":[],"requestOffsets":[],"sendNs":[],"server":"10.0.0.2:6379"},"kind":"client-requests"}"#.utf8)
        #expect(reordered.withUnsafeBytes { NetprobeBlock.decodeClientRequests(enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: $0) } == nil)
        guard case .clientRequests? = NetprobeBlock.decode(enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: reordered) else {
            Issue.record("not decoded")
            return
        }
        var records = ClientRecords()
        records.add(c)
        records.prepare()
        #expect(records.lookup(ClientKey(client: Endpoint(parsing: "10.0.0.1:40000")!, server: Endpoint(parsing: "[fd00::2]:6379")!, offset: 31))! == (7, 9))
    }

    @Test("client records: found by connection and offset, out of order sorted, the last of a repeated offset wins")
    func records() {
        let a = Endpoint(address: IPAddress(ipv4: 0x0A00_0001), port: 40000)
        let b = Endpoint(address: IPAddress(ipv4: 0x0A00_0001), port: 40001)
        let s = Endpoint(address: IPAddress(ipv4: 0x0A00_0002), port: 6379)
        var r = ClientRecords()
        #expect(r.isEmpty)
        for (offset, t) in [(0, 1), (30, 2), (10, 3), (30, 4), (20, 5)] {
            r.add(ClientKey(client: a, server: s, offset: UInt32(offset)), sendNs: Int64(t), receiveNs: Int64(t * 10))
        }
        r.add(ClientKey(client: b, server: s, offset: 10), sendNs: 99, receiveNs: 990)
        r.prepare()
        #expect(r.count == 6)
        #expect(r.lookup(ClientKey(client: a, server: s, offset: 10))! == (3, 30))
        #expect(r.lookup(ClientKey(client: a, server: s, offset: 30))! == (4, 40))
        #expect(r.lookup(ClientKey(client: a, server: s, offset: 0))! == (1, 10))
        #expect(r.lookup(ClientKey(client: b, server: s, offset: 10))! == (99, 990))
        #expect(r.lookup(ClientKey(client: a, server: s, offset: 15)) == nil)
        #expect(r.lookup(ClientKey(client: a, server: s, offset: 31)) == nil)
        #expect(r.lookup(ClientKey(client: b, server: a, offset: 10)) == nil)
    }

    /// Real captures of `netprobe capture -- netprobe load` (traces/README.md): one made before the
    /// records went binary (JSON client-requests blocks), one after (binary blocks).
    @Test("real traces with the load generator's records, old JSON and binary, both give the client segment",
          arguments: [("netprobe-host-old-records.pcapng", false), ("netprobe-host-records.pcapng", true)])
    func realTraces(file: String, binary: Bool) throws {
        let path = "\(tracesDirectory)/\(file)"
        let reader = try TraceReader(path: path)
        while try reader.next() != nil {}
        var binaryBlocks = 0, jsonBlocks = 0
        for b in reader.customBlocks {
            if b.payload.withUnsafeBytes({ ClientRecordBlock.isClientRecords(enterpriseNumber: b.pen, payload: $0) }) { binaryBlocks += 1 }
            if case .clientRequests? = NetprobeBlock.decode(enterpriseNumber: b.pen, payload: b.payload) { jsonBlocks += 1 }
        }
        #expect(binary ? binaryBlocks > 0 && jsonBlocks == 0 : binaryBlocks == 0 && jsonBlocks > 0)
        let (report, _) = try ReportBuilder.build(path: path)
        #expect(report.capture?.clientRequests == 1000)
        #expect(report.attribution?.requestsJoined == 1000)
        let client = try #require(report.segments.first { $0.name == "client" })
        #expect(client.resolved)
        #expect((client.p50Us ?? 0) > 0)
    }

    /// A pcapng in memory: a note, binary client-record blocks, an old-style JSON client-requests
    /// block, one in another key order, a block of another enterprise, and a packet between them.
    static func traceWithClientBlocks() throws -> (bytes: [UInt8], records: Int) {
        let e = PcapngEncoder(swapped: false)
        var out: [UInt8] = []
        e.appendSectionHeader(to: &out)
        e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 256, name: "lo")
        let note = try NetprobeBlock.vantageNote(VantageNote(timeNs: 1, interface: "lo", note: "n")).payload()
        e.appendCustom(to: &out, enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: note)
        let (blocks, keys) = Self.blocks([(Self.client, Self.server), (Self.v6Client, Self.v6Server)], requests: 30, perBlock: 25)
        for (k, b) in blocks.enumerated() {
            e.appendCustom(to: &out, enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: b)
            if k == 0 {
                let frame = PcapngReaderTests.frame
                frame.withUnsafeBytes { e.appendEnhancedPacket(to: &out, interface: 0, ticks: 5, data: $0, originalLength: frame.count) }
            }
        }
        let old = ClientRequests(client: "10.0.0.1:40002", server: "10.0.0.2:6379", requestOffsets: [0, 10, 20],
                                 commands: ["GET", "SET", "GET"], sendNs: [1, 2, 3], receiveNs: [5, 6, 7])
        e.appendCustom(to: &out, enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: try NetprobeBlock.clientRequests(old).payload())
        let reordered = #"{"value":{"client":"10.0.0.1:40003","commands":["GET","SET"],"receiveNs":[5,6],"requestOffsets":[0,10],"sendNs":[1,2],"server":"10.0.0.2:6379"},"kind":"client-requests"}"#
        e.appendCustom(to: &out, enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: NetprobeBlock.magic + Array(reordered.utf8))
        e.appendCustom(to: &out, enterpriseNumber: 12345, payload: [1, 2, 3, 4])
        return (out, keys.count + 3 + 2)
    }

    @Test("report takes client records while the trace is read, binary and JSON alike; other blocks still count")
    func takenWhileReading() throws {
        let (bytes, records) = try Self.traceWithClientBlocks()
        // The report counts every record, on one thread or with the read-ahead thread.
        let (report, _) = ReportBuilder.build(reader: try TraceReader(bytes: bytes))
        #expect(report.capture?.clientRequests == records)
        #expect(report.capture?.notes == ["lo: n"])
    }
}
