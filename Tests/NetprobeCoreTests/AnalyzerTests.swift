import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

/// End-to-end analysis of small synthetic conversations written as pcap files.
@Suite("request/response pairing")
struct AnalyzerTests {
    /// A client (port `sport`) talking to Redis; tracks sequence numbers for both sides.
    struct Conversation {
        var pcap = PcapBuilder()
        var clientSeq: UInt32 = 1000
        var serverSeq: UInt32 = 5000
        var sport: UInt16 = 40000
        var now: Int64 = 1_000_000_000

        mutating func handshake() {
            pcap.add(FrameBuilder.tcp(sport: sport, seq: clientSeq, flags: 0x02), ns: now)
            pcap.add(FrameBuilder.tcp(src: FrameBuilder.ipv4(10, 0, 0, 2), dst: FrameBuilder.ipv4(10, 0, 0, 1), sport: 6379, dport: sport,
                                      seq: serverSeq, ack: clientSeq + 1, flags: 0x12), ns: now + 10)
            clientSeq += 1
            serverSeq += 1
            now += 1000
        }
        mutating func send(_ bytes: [UInt8], after: Int64 = 1000, caplen: Int? = nil) {
            now += after
            pcap.add(FrameBuilder.tcp(sport: sport, seq: clientSeq, ack: serverSeq, payload: bytes), ns: now, caplen: caplen)
            clientSeq &+= UInt32(bytes.count)
        }
        mutating func reply(_ bytes: [UInt8], after: Int64 = 1000) {
            now += after
            pcap.add(FrameBuilder.tcp(src: FrameBuilder.ipv4(10, 0, 0, 2), dst: FrameBuilder.ipv4(10, 0, 0, 1), sport: 6379, dport: sport,
                                      seq: serverSeq, ack: clientSeq, payload: bytes), ns: now)
            serverSeq &+= UInt32(bytes.count)
        }
        /// FIN from the client, then from the server: the connection ends.
        mutating func closeBothWays() {
            now += 100
            pcap.add(FrameBuilder.tcp(sport: sport, seq: clientSeq, ack: serverSeq, flags: 0x11), ns: now)
            now += 100
            pcap.add(FrameBuilder.tcp(src: FrameBuilder.ipv4(10, 0, 0, 2), dst: FrameBuilder.ipv4(10, 0, 0, 1), sport: 6379, dport: sport,
                                      seq: serverSeq, ack: clientSeq + 1, flags: 0x11), ns: now)
        }
        mutating func reset() {
            now += 10
            pcap.add(FrameBuilder.tcp(sport: sport, seq: clientSeq, flags: 0x04), ns: now)
        }
    }

    func analyze(_ c: Conversation) throws -> (TraceAnalysis, [RequestTiming]) {
        let file = try TempFile(c.pcap.bytes)
        var timings: [RequestTiming] = []
        let reader = try TraceReader(path: file.path)
        let a = TraceAnalyzer().analyze(reader) { timings.append($0) }
        return (a, timings)
    }

    @Test("one request at a time: latency is request's last byte to response's first byte")
    func simple() throws {
        var c = Conversation()
        c.handshake()
        c.send(resp("SET", "a", "1"))
        c.reply(Array("+OK\r\n".utf8), after: 7_000)
        c.send(resp("GET", "a"))
        c.reply(Array("$1\r\n1\r\n".utf8), after: 3_000)
        let (a, t) = try analyze(c)
        #expect(a.vantages.count == 1)
        let v = a.vantages[0]
        #expect(v.requests == 2)
        #expect(v.requestsByCommand == ["SET": 1, "GET": 1])
        #expect(t.map(\.latencyNs) == [7_000, 3_000])
        #expect(v.unpairedTotal == 0)
        #expect(v.latency.maxNs == 7_000)
    }

    @Test("pipelined requests pair in order, even when responses span segments")
    func pipelined() throws {
        var c = Conversation()
        c.handshake()
        var batch: [UInt8] = []
        for i in 0..<16 { batch += resp("GET", "k\(i)") }
        c.send(Array(batch[0..<50]))
        c.send(Array(batch[50...]), after: 100)
        var replies: [UInt8] = []
        for i in 0..<16 { replies += Array("$2\r\nv\(i % 10)\r\n".utf8) }
        c.reply(Array(replies[0..<30]), after: 5_000)
        c.reply(Array(replies[30...]), after: 200)
        let (a, t) = try analyze(c)
        #expect(a.vantages[0].requests == 16)
        #expect(t.count == 16)
        // Requests wholly in the first segment ended at its time; the one split across both, later.
        #expect(t[0].requestLastByteNs < t[15].requestLastByteNs)
        // The first three responses started in the first reply segment (30 bytes / 8 per reply).
        #expect(t[0].responseFirstByteNs == t[3].responseFirstByteNs)
        #expect(t[4].responseFirstByteNs == t[15].responseFirstByteNs)
        #expect(t.allSatisfy { $0.latencyNs > 0 })
    }

    @Test("an ended connection, forgotten but its 4-tuple after a sweep: a late ACK is not a new connection, a new SYN is")
    func endedConnectionAfterSweep() throws {
        var c = Conversation()
        c.handshake()
        c.send(resp("GET", "a"))
        c.reply(Array("$-1\r\n".utf8))
        c.closeBothWays()
        // Another connection, long enough for the dissector to sweep its table (65,536 packets).
        var d = c
        d.sport = 40001
        d.clientSeq = 9000
        d.handshake()
        for _ in 0..<33_000 {
            d.send(resp("PING"), after: 100)
            d.reply(Array("+PONG\r\n".utf8), after: 100)
        }
        // The first connection's last ACK, late, then a new connection on the same 4-tuple.
        d.now += 100
        d.pcap.add(FrameBuilder.tcp(sport: c.sport, seq: c.clientSeq + 1, ack: c.serverSeq + 1, flags: 0x10), ns: d.now)
        var e = d
        e.sport = c.sport
        e.clientSeq = 70_000
        e.handshake()
        e.send(resp("SET", "k", "v"))
        e.reply(Array("+OK\r\n".utf8))
        let (a, t) = try analyze(e)
        #expect(a.vantages[0].connections == 3)
        #expect(a.vantages[0].connectionsJoinedMidStream == 0)
        #expect(t.count == 33_002)
        #expect(t.last?.command == "SET")
        #expect(a.vantages[0].unpaired.values.reduce(0, +) == 0)
    }

    @Test("a reset leaves unanswered requests unpaired, never matched to another reply")
    func resetUnpaired() throws {
        var c = Conversation()
        c.handshake()
        c.send(resp("GET", "a"))
        c.reply(Array("$-1\r\n".utf8))
        c.send(resp("BLPOP", "q", "0"))
        c.reset()
        // A new connection on another port must not take the old request's reply.
        var d = c
        d.sport = 40001
        d.clientSeq = 9000
        d.handshake()
        d.send(resp("PING"))
        d.reply(Array("+PONG\r\n".utf8))
        let (a, t) = try analyze(d)
        #expect(a.vantages[0].requests == 3)
        #expect(t.map(\.command) == ["GET", "PING"])
        #expect(a.vantages[0].unpaired[.connectionClosed] == 1)
    }

    @Test("a lost request segment is reported; pairing resumes only where the reply is certain")
    func lostSegment() throws {
        var c = Conversation()
        c.handshake()
        c.send(resp("GET", "a"))
        c.reply(Array("$-1\r\n".utf8))
        let lost = resp("GET", "b")
        c.clientSeq &+= UInt32(lost.count) // this segment never reached the capture
        c.reply(Array("$-1\r\n".utf8))
        c.send(resp("GET", "c"))
        c.reply(Array("$-1\r\n".utf8))
        let (a, t) = try analyze(c)
        // GET a before the loss, GET c after it (aligned by the client's acknowledgement number);
        // the reply to the lost GET b is never given to anybody.
        #expect(t.map(\.command) == ["GET", "GET"])
        #expect(t.map(\.latencyNs) == [1000, 1000])
        #expect(a.vantages[0].desynchronisedStreams >= 1)
        #expect(a.vantages[0].reassembly.gaps == 1)
        #expect(a.vantages[0].requests == 2)
    }

    @Test("SUBSCRIBE pairs with its confirmation; a published message is not a reply; PING after it pairs")
    func subscribe() throws {
        var c = Conversation()
        c.handshake()
        c.send(resp("SUBSCRIBE", "news"))
        c.reply(Array("*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n".utf8))
        c.reply(Array("*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n".utf8))
        c.send(resp("PING"))
        c.reply(Array("*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nho\r\n".utf8), after: 500)
        c.reply(Array("*2\r\n$4\r\npong\r\n$0\r\n\r\n".utf8), after: 1500)
        let (a, t) = try analyze(c)
        #expect(t.map(\.command) == ["SUBSCRIBE", "PING"])
        #expect(t.map(\.latencyNs) == [1000, 2000]) // PING's reply, not the message before it
        #expect(a.vantages[0].unpaired.isEmpty)
        #expect(a.vantages[0].pushes == 2)
        #expect(a.vantages[0].unexpectedResponses == 0)
    }

    @Test("traffic on other ports is counted, not decoded; --port moves the server")
    func ports() throws {
        var c = Conversation()
        c.handshake()
        c.send(resp("PING"))
        c.reply(Array("+PONG\r\n".utf8))
        let file = try TempFile(c.pcap.bytes)
        var options = AnalysisOptions()
        options.serverPorts = [6380]
        let a = TraceAnalyzer(options: options).analyze(try TraceReader(path: file.path))
        #expect(a.vantages[0].requests == 0)
        #expect(a.vantages[0].otherTCPSegments == 4)
        let r = Report(analysis: a, file: file.path, format: "pcap")
        #expect(r.vantages[0].notes.contains { $0.contains("6379") })
    }
}
