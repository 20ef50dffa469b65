import Foundation
import NetprobeCore
import Testing
@testable import NetprobeLoad

@Suite("load: parsing, validation, encoding")
struct LoadUnitTests {
    @Test("targets: HOST:PORT, [IPv6]:PORT, bare host, and the malformed", arguments: [
        ("127.0.0.1:6380", "127.0.0.1", 6380),
        ("localhost", "localhost", 6379),
        ("[::1]:7000", "::1", 7000),
        ("::1", "::1", 6379),
        ("[fe80::1]", "fe80::1", 6379),
    ] as [(String, String, UInt16)])
    func targets(text: String, host: String, port: UInt16) throws {
        let t = try #require(LoadTarget(parsing: text))
        #expect(t.host == host && t.port == port)
    }

    @Test("malformed targets are rejected", arguments: ["", ":6379", "host:", "host:0", "host:70000", "[::1", "[::1]x", "a b:1"])
    func badTargets(text: String) {
        #expect(LoadTarget(parsing: text) == nil)
    }

    @Test("durations: 10s, 500ms, 2m, 1h, 250us, plain seconds")
    func durations() {
        #expect(LoadLimit.parseDuration("10s") == .seconds(10))
        #expect(LoadLimit.parseDuration("500ms") == .milliseconds(500))
        #expect(LoadLimit.parseDuration("2m") == .seconds(120))
        #expect(LoadLimit.parseDuration("1h") == .seconds(3600))
        #expect(LoadLimit.parseDuration("250us") == .microseconds(250))
        #expect(LoadLimit.parseDuration("1.5") == .milliseconds(1500))
        for bad in ["", "s", "ten s", "-1s", "5x", "1e30s"] { #expect(LoadLimit.parseDuration(bad) == nil, "\(bad)") }
    }

    @Test("ratios and the command cycle")
    func ratios() throws {
        let r = try #require(CommandRatio(parsing: "1:10"))
        #expect(r == CommandRatio(set: 1, get: 10))
        #expect((0..<22).filter { r.command(forRequest: $0) == .set } == [0, 11])
        #expect(CommandRatio(parsing: "0:1")?.command(forRequest: 5) == .get)
        #expect(CommandRatio(parsing: "1") == nil && CommandRatio(parsing: "a:b") == nil)
    }

    @Test("configuration problems are listed, each in words")
    func validation() {
        var c = LoadConfiguration(target: LoadTarget(host: "127.0.0.1", port: 6379))
        #expect(c.problems().isEmpty)
        c.connections = 0
        c.pipeline = 0
        c.ratio = CommandRatio(set: 0, get: 0)
        c.limit = .requests(0)
        c.rate = -5
        c.dataSize = -1
        let problems = c.problems()
        #expect(problems.count == 6)
        #expect(problems.contains { $0.contains("connections") })
        #expect(throws: LoadError.self) { try LoadGenerator(configuration: c) }
    }

    @Test("SET and GET requests are RESP2 arrays with a fixed-width key")
    func encoding() throws {
        let e = RequestEncoder(keyPrefix: "key:", keySpace: 10_000, dataSize: 3)
        var buffer = [UInt8](repeating: 0, count: e.maximumLength)
        let n = buffer.withUnsafeMutableBytes { e.encode(.set, key: 42, into: $0.baseAddress!) }
        #expect(String(decoding: buffer[0..<n], as: UTF8.self) == "*3\r\n$3\r\nSET\r\n$8\r\nkey:0042\r\n$3\r\nxxx\r\n")
        let m = buffer.withUnsafeMutableBytes { e.encode(.get, key: 9999, into: $0.baseAddress!) }
        #expect(String(decoding: buffer[0..<m], as: UTF8.self) == "*2\r\n$3\r\nGET\r\n$8\r\nkey:9999\r\n")
        #expect(m == e.length(of: .get))

        // The project's own RESP decoder reads them back as one SET and one GET.
        var bytes = [UInt8]()
        bytes += buffer[0..<m]
        let s = buffer.withUnsafeMutableBytes { e.encode(.set, key: 7, into: $0.baseAddress!) }
        bytes += buffer[0..<s]
        var decoder = RESPStreamDecoder(role: .requests)
        var commands: [String] = []
        bytes.withUnsafeBytes { raw in
            _ = decoder.feed(.data(raw, sequence: 0, timestampNs: 0)) { commands.append($0.command ?? "") }
        }
        #expect(commands == ["GET", "SET"])
    }

    @Test("key numbers stay inside the key space and cover it")
    func keys() {
        var g = KeyGenerator(seed: 1, keySpace: 10)
        var seen = Set<UInt64>()
        for _ in 0..<1000 {
            let k = g.next()
            #expect(k < 10)
            seen.insert(k)
        }
        #expect(seen.count == 10)
    }

    @Test("record entries round-trip, IPv4 and IPv6")
    func recordFormat() throws {
        let v6 = Endpoint(address: IPAddress(ipv6High: 0x2001_0db8_0000_0000, low: 1), port: 6379)
        let c6 = ClientConnection(index: 7, client: Endpoint(address: IPAddress(ipv6High: 0x2001_0db8_0000_0000, low: 2), port: 50123),
                                  server: v6, connectedNs: 1_700_000_000_123_456_789)
        let c4 = ClientConnection(index: 0, client: Endpoint(address: IPAddress(ipv4: 0x7F00_0001), port: 40000),
                                  server: Endpoint(address: IPAddress(ipv4: 0x7F00_0001), port: 6379), connectedNs: 5)
        let r = ClientRequestRecord(connection: 7, client: c6.client, server: v6, command: .get, isErrorReply: true,
                                    requestOffset: 1 << 40, requestLength: 27, replyOffset: 12345,
                                    sendNs: 1_700_000_000_000_000_001, receiveNs: 1_700_000_000_000_050_001)
        var table: [Int: ClientConnection] = [:]
        for c in [c4, c6] {
            let bytes = ClientRecordFormat.encode(c.entry)
            #expect(bytes.count == ClientRecordFormat.entryLength)
            guard case let .connection(e) = bytes.withUnsafeBytes({ ClientRecordFormat.decode($0) }) else {
                Issue.record("not a connection entry")
                continue
            }
            #expect(ClientConnection(e) == c)
            table[c.index] = c
        }
        let bytes = ClientRecordFormat.encode(r.entry)
        guard case let .request(e) = bytes.withUnsafeBytes({ ClientRecordFormat.decode($0) }) else {
            Issue.record("not a request entry")
            return
        }
        #expect(ClientRequestRecord(e, connection: table[Int(e.connection)]!) == r)
        var unknownCommand = e
        unknownCommand.command = 9
        #expect(ClientRequestRecord(unknownCommand, connection: c6) == nil)
        #expect(Array(ClientRecordFormat.header()[0..<8]) == Array("NPLOADTS".utf8))
        #expect(ClientRecordFormat.header().count == ClientRecordFormat.headerLength)
    }

    @Test("a timestamps file cut into trace blocks holds every request once, each block on its own")
    func fileAsBlocks() throws {
        let path = NSTemporaryDirectory() + "netprobe-load-\(UUID().uuidString).npts"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try ClientRecordWriter(path: path)
        let connections = (0..<3).map { i in
            ClientConnection(index: i, client: Endpoint(address: IPAddress(ipv4: 0x7F00_0001), port: UInt16(40000 + i)),
                             server: Endpoint(address: IPAddress(ipv4: 0x7F00_0001), port: 6379), connectedNs: 5)
        }
        connections.forEach(writer.add)
        var records: [ClientRequestRecord] = []
        for k in 0..<50 {
            let c = connections[k % 3]
            let r = ClientRequestRecord(connection: c.index, client: c.client, server: c.server, command: k % 2 == 0 ? .get : .set,
                                        isErrorReply: false, requestOffset: UInt64(k / 3 * 40), requestLength: 40,
                                        replyOffset: UInt64(k / 3 * 5), sendNs: Int64(k), receiveNs: Int64(k + 100))
            records.append(r)
            writer.add(r)
        }
        try writer.finish()
        var read: [ClientRequestRecord] = []
        var blocks = 0
        try ClientRecordReader(path: path).forEachBlock(maximumRequests: 7) { block in
            blocks += 1
            var declared: [Int: ClientConnection] = [:]
            let reading = block.withUnsafeBytes { raw in
                ClientRecordFormat.readBlock(raw, connection: { declared[Int($0.index)] = ClientConnection($0) },
                                             request: { read.append(ClientRequestRecord($0, connection: declared[Int($0.connection)]!)!) })
            }
            #expect(reading == ClientRecordFormat.BlockReading())
        }
        #expect(blocks == 8)
        #expect(read == records)
    }

    @Test("the reader rejects other files and reports a truncated entry")
    func readerErrors() throws {
        let path = NSTemporaryDirectory() + "netprobe-load-\(UUID().uuidString).npts"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("not a timestamps file".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: TraceError.self) { try ClientRecordReader(path: path) }

        let c = ClientConnection(index: 0, client: Endpoint(address: IPAddress(ipv4: 0x7F00_0001), port: 40000),
                                 server: Endpoint(address: IPAddress(ipv4: 0x7F00_0001), port: 6379), connectedNs: 5)
        let r = ClientRequestRecord(connection: 0, client: c.client, server: c.server, command: .set, isErrorReply: false,
                                    requestOffset: 0, requestLength: 40, replyOffset: 0, sendNs: 10, receiveNs: 20)
        let file = ClientRecordFormat.header() + ClientRecordFormat.encode(c.entry) + ClientRecordFormat.encode(r.entry)
            + ClientRecordFormat.encode(r.entry).prefix(20)
        try Data(file).write(to: URL(fileURLWithPath: path))
        let reader = try ClientRecordReader(path: path)
        #expect(try reader.next() == r)
        #expect(throws: TraceError.self) { try reader.next() }
    }
}
