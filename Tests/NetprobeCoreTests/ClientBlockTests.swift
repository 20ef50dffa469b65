import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

/// `client-requests` blocks are read by a strict fast reader; whatever it accepts must decode
/// exactly as JSONDecoder does, and whatever it declines still decodes through JSONDecoder.
@Suite("client-requests blocks")
struct ClientBlockTests {
    static func random(_ g: inout some RandomNumberGenerator) -> ClientRequests {
        let n = Int.random(in: 0...40, using: &g)
        return ClientRequests(
            client: "10.0.0.\(Int.random(in: 1...254, using: &g)):\(Int.random(in: 1024...65535, using: &g))",
            server: Bool.random(using: &g) ? "10.0.0.2:6379" : "[fd00::2]:6379",
            requestOffsets: (0..<n).map { _ in UInt64.random(in: 0 ... (Bool.random(using: &g) ? 1 << 20 : .max), using: &g) },
            commands: (0..<n).map { _ in ["GET", "SET", "CONFIG GET", "?", "ÉTÉ"].randomElement(using: &g)! },
            sendNs: (0..<n).map { _ in Int64.random(in: .min ... .max, using: &g) },
            receiveNs: (0..<n).map { _ in Int64.random(in: 0...(1 << 62), using: &g) })
    }

    @Test("what the fast reader accepts, JSONDecoder reads the same; netprobe's own blocks are all accepted")
    func sameAsJSONDecoder() throws {
        var g = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let c = Self.random(&g)
            let payload = try NetprobeBlock.clientRequests(c).payload()
            let fast = payload.withUnsafeBytes { ClientRequests.fastDecode(UnsafeRawBufferPointer(rebasing: $0[4...])) }
            #expect(fast == c)
            #expect(NetprobeBlock.decodeWithJSONDecoder(payload[4...]) == .clientRequests(c))
        }
    }

    @Test("it declines other shapes, which JSONDecoder then decides", arguments: [
        #"{"kind":"client-requests","value":{"client":"a","commands":["G\"T"],"receiveNs":[1],"requestOffsets":[0],"sendNs":[1],"server":"b"}}"#,
        #"{"kind":"client-requests","value":{"client":"a","commands":["GET"],"receiveNs":[1.5],"requestOffsets":[0],"sendNs":[1],"server":"b"}}"#,
        #"{"kind":"client-requests","value":{"client":"a","commands":["GET"],"receiveNs":[01],"requestOffsets":[0],"sendNs":[1],"server":"b"}}"#,
        #"{"kind":"client-requests","value":{"client":"a","commands":["GET"],"receiveNs":[1],"requestOffsets":[-1],"sendNs":[1],"server":"b"}}"#,
        #"{"kind":"client-requests","value":{"client":"a","commands":["GET"],"receiveNs":[9223372036854775808],"requestOffsets":[0],"sendNs":[1],"server":"b"}}"#,
        #"{"kind":"client-requests","value":{"client":"a","extra":1,"commands":["GET"],"receiveNs":[1],"requestOffsets":[0],"sendNs":[1],"server":"b"}}"#,
        #"{"kind":"client-requests","value":{"client":"a","client":"c","commands":[],"receiveNs":[],"requestOffsets":[],"sendNs":[],"server":"b"}}"#,
        #"{"kind":"client-requests","value":{"client":"a","commands":["GET"],"receiveNs":[1],"requestOffsets":[0],"sendNs":[1]}}"#,
        #"{"kind":"netlink","value":{}}"#,
        #"{"kind":"client-requests","value":{"client":"a","commands":["GET"],"receiveNs":[1],"requestOffsets":[0],"sendNs":[1],"server":"b"}} x"#,
    ])
    func declines(json: String) {
        let bytes = Array(json.utf8)
        let fast = bytes.withUnsafeBytes { ClientRequests.fastDecode($0) }
        #expect(fast == nil)
        // Through the public entry point the answer is JSONDecoder's.
        let payload = NetprobeBlock.magic + bytes
        #expect(NetprobeBlock.decode(enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: payload)
            == NetprobeBlock.decodeWithJSONDecoder(payload[4...]))
    }

    @Test("whitespace and key order do not matter; an escape-free valid block is read fast")
    func layout() {
        let json = #" { "value" : { "server":"10.0.0.2:6379" , "sendNs":[ -5 , 7 ], "receiveNs":[8,9], "requestOffsets":[0, 12], "commands":["GET","SET"], "client":"10.0.0.1:40000" }, "kind":"client-requests" } "#
        let fast = Array(json.utf8).withUnsafeBytes { ClientRequests.fastDecode($0) }
        #expect(fast == ClientRequests(client: "10.0.0.1:40000", server: "10.0.0.2:6379", requestOffsets: [0, 12],
                                       commands: ["GET", "SET"], sendNs: [-5, 7], receiveNs: [8, 9]))
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

    /// A pcapng in memory: a note, two client-requests blocks the fast reader takes, one it declines
    /// (an escaped quote), a block of another enterprise, and a packet between them.
    static func traceWithClientBlocks() throws -> (bytes: [UInt8], records: Int) {
        let e = PcapngEncoder(swapped: false)
        var out: [UInt8] = []
        e.appendSectionHeader(to: &out)
        e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 256, name: "lo")
        let note = try NetprobeBlock.vantageNote(VantageNote(timeNs: 1, interface: "lo", note: "n")).payload()
        e.appendCustom(to: &out, enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: note)
        var g = SystemRandomNumberGenerator()
        var records = 0
        for k in 0..<2 {
            var c = Self.random(&g)
            c.commands = c.commands.map { _ in "GET" }
            records += c.sendNs.count
            e.appendCustom(to: &out, enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: try NetprobeBlock.clientRequests(c).payload())
            if k == 0 {
                let frame = PcapngReaderTests.frame
                frame.withUnsafeBytes { e.appendEnhancedPacket(to: &out, interface: 0, ticks: 5, data: $0, originalLength: frame.count) }
            }
        }
        let declined = #"{"kind":"client-requests","value":{"client":"10.0.0.1:40000","commands":["G\"T","SET"],"receiveNs":[5,6],"requestOffsets":[0,10],"sendNs":[1,2],"server":"10.0.0.2:6379"}}"#
        e.appendCustom(to: &out, enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: NetprobeBlock.magic + Array(declined.utf8))
        e.appendCustom(to: &out, enterpriseNumber: 12345, payload: [1, 2, 3, 4])
        return (out, records + 2)
    }

    @Test("report takes client records while the trace is read; declined ones and other blocks still count")
    func takenWhileReading() throws {
        let (bytes, records) = try Self.traceWithClientBlocks()
        // The reader keeps only what the hook leaves.
        let reader = try TraceReader(bytes: bytes)
        var taken = 0
        reader.onCustomBlock = { pen, payload in
            guard let r = NetprobeBlock.fastClientRequests(enterpriseNumber: pen, payload: payload) else { return false }
            taken += r.sendNs.count
            return true
        }
        while try reader.next() != nil {}
        #expect(taken == records - 2)
        #expect(reader.customBlocks.count == 3) // the note, the declined block, the other enterprise's
        // The report counts every record, through the hook or JSONDecoder, on one thread or with
        // the read-ahead thread.
        let (report, _) = ReportBuilder.build(reader: try TraceReader(bytes: bytes))
        #expect(report.capture?.clientRequests == records)
        #expect(report.capture?.notes == ["lo: n"])
    }
}
