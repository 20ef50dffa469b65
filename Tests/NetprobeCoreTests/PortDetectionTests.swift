import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeReport

/// Issue 16, item 15: Redis found by the content of the connections on a port nobody named, and
/// other protocols not taken for it (the real capture is in `RedisSemanticsTests`).
@Suite("Redis port detection by content")
struct PortDetectionTests {
    /// A connection between 10.0.0.1:`clientPort` and 10.0.0.2:`serverPort`, written into `pcap`.
    struct Flow {
        var clientPort: UInt16
        var serverPort: UInt16
        var clientSeq: UInt32 = 1000
        var serverSeq: UInt32 = 9000
        static let client = FrameBuilder.ipv4(10, 0, 0, 1)
        static let server = FrameBuilder.ipv4(10, 0, 0, 2)

        mutating func open(_ pcap: inout PcapBuilder, at ns: Int64) {
            pcap.add(FrameBuilder.tcp(src: Self.client, dst: Self.server, sport: clientPort, dport: serverPort, seq: clientSeq, flags: 0x02), ns: ns)
            pcap.add(FrameBuilder.tcp(src: Self.server, dst: Self.client, sport: serverPort, dport: clientPort, seq: serverSeq,
                                      ack: clientSeq + 1, flags: 0x12), ns: ns + 10)
            clientSeq += 1
            serverSeq += 1
        }
        mutating func send(_ text: String, _ pcap: inout PcapBuilder, at ns: Int64) {
            let b = Array(text.utf8)
            pcap.add(FrameBuilder.tcp(src: Self.client, dst: Self.server, sport: clientPort, dport: serverPort, seq: clientSeq,
                                      ack: serverSeq, payload: b), ns: ns)
            clientSeq &+= UInt32(b.count)
        }
        mutating func reply(_ text: String, _ pcap: inout PcapBuilder, at ns: Int64) {
            let b = Array(text.utf8)
            pcap.add(FrameBuilder.tcp(src: Self.server, dst: Self.client, sport: serverPort, dport: clientPort, seq: serverSeq,
                                      ack: clientSeq, payload: b), ns: ns)
            serverSeq &+= UInt32(b.count)
        }
    }

    static func request(_ text: String) -> RESPFirstBytes.Request {
        Array(text.utf8).withUnsafeBytes { RESPFirstBytes.request($0) }
    }

    static func reply(_ text: String) -> Bool? {
        Array(text.utf8).withUnsafeBytes { RESPFirstBytes.reply($0) }
    }

    @Test("a client's first bytes: RESP arrays and inline commands, not HTTP, TLS or anything else")
    func clientBytes() {
        #expect(Self.request("*1\r\n$4\r\nPING\r\n") == .array)
        #expect(Self.request("*3\r\n$3\r\nSET\r\n$1\r\nk") == .array) // cut by the segment's end
        #expect(Self.request("*2\r\n") == .array)
        #expect(Self.request("*3\r") == .unknown)
        #expect(Self.request("PING\r\n") == .inline)
        #expect(Self.request("set k v\n") == .inline)
        #expect(Self.request("PING") == .unknown) // no end of line yet
        #expect(Self.request("*0\r\n") == .notRESP)
        #expect(Self.request("*x\r\n") == .notRESP)
        #expect(Self.request("*2\r\n:1\r\n") == .notRESP)
        #expect(Self.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == .notRESP)
        #expect(Self.request("Host: x\r\n") == .notRESP)
        #expect(Self.request("\u{16}\u{03}\u{01}\u{00}\u{a5}\u{01}") == .notRESP)
        #expect(Self.request("SSH-2.0-OpenSSH_9.2\r\n") == .notRESP)
        #expect(Self.request("get\u{01}key\r\n") == .notRESP)
    }

    @Test("a server's first bytes: a RESP value's first line, not a greeting in another protocol")
    func serverBytes() {
        for text in ["+OK\r\n", "-ERR unknown command\r\n", ":1\r\n", "$5\r\nhello\r\n", "$-1\r\n", "*2\r\n$1\r\na\r\n", "%7\r\n",
                     ">3\r\n", "_\r\n", "#t\r\n", ",1.5\r\n", "(12345\r\n", "|1\r\n", "$?\r\n"] {
            #expect(Self.reply(text) == true, "\(text.debugDescription)")
        }
        for text in ["HTTP/1.1 200 OK\r\n", "220 mail.example ESMTP\r\n", ":irc.example.net NOTICE * :hi\r\n", "END\r\n",
                     "VALUE k 0 1\r\n", "\u{16}\u{03}\u{03}", "*abc\r\n", "+\u{01}\r\n", "_x\r\n"] {
            #expect(Self.reply(text) == false, "\(text.debugDescription)")
        }
        #expect(Self.reply("+OK gre") == nil)
        #expect(Self.reply("$12") == nil)
    }

    /// Two connections to Redis on 7000, HTTP on 80, a POP3-like greeter on 110 ("+OK" first, a
    /// valid RESP simple string: only the order tells it apart), memcached's text protocol on
    /// 11211, and a connection to Redis on 7001 already open when the capture began (no SYN).
    static func mixedTrace() -> PcapBuilder {
        var pcap = PcapBuilder()
        var t: Int64 = 1_000_000_000
        func tick() -> Int64 { t += 1000; return t }
        for k in 0..<2 {
            var redis = Flow(clientPort: 40000 + UInt16(k), serverPort: 7000)
            redis.open(&pcap, at: tick())
            redis.send("*2\r\n$3\r\nGET\r\n$1\r\na\r\n", &pcap, at: tick())
            redis.reply("$1\r\n1\r\n", &pcap, at: tick())
            redis.send("PING\r\n", &pcap, at: tick())
            redis.reply("+PONG\r\n", &pcap, at: tick())
        }
        var http = Flow(clientPort: 40010, serverPort: 80)
        http.open(&pcap, at: tick())
        http.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &pcap, at: tick())
        http.reply("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &pcap, at: tick())
        var pop = Flow(clientPort: 40011, serverPort: 110)
        pop.open(&pcap, at: tick())
        pop.reply("+OK POP3 ready\r\n", &pcap, at: tick())
        pop.send("USER bob\r\n", &pcap, at: tick())
        pop.reply("+OK\r\n", &pcap, at: tick())
        var memcached = Flow(clientPort: 40012, serverPort: 11211)
        memcached.open(&pcap, at: tick())
        memcached.send("get k\r\n", &pcap, at: tick())
        memcached.reply("END\r\n", &pcap, at: tick())
        var midStream = Flow(clientPort: 40013, serverPort: 7001)
        midStream.send("*1\r\n$4\r\nPING\r\n", &pcap, at: tick())
        midStream.reply("+PONG\r\n", &pcap, at: tick())
        return pcap
    }

    @Test("per port: Redis on 7000 (SYN seen) and 7001 (joined mid-stream) look like Redis; HTTP, a +OK greeter and memcached do not")
    func evidence() throws {
        let file = try TempFile(Self.mixedTrace().bytes)
        let a = TraceAnalyzer().analyze(try TraceReader(path: file.path))
        let e = a.portEvidence
        #expect(e[7000] == { var x = PortEvidence(); x.requestArrays = 2; x.answeredInRESP = 2; return x }())
        #expect(e[7001]?.looksLikeRedis == true)
        for port: UInt16 in [80, 110, 11211] {
            #expect(e[port]?.notRESP == 1 && e[port]?.looksLikeRedis == false, "port \(port): \(String(describing: e[port]))")
        }
        #expect(e.keys.allSatisfy { $0 < 40000 }) // the clients' ports are never taken for servers
    }

    @Test("report: 6379 carried nothing, so Redis is taken on 7000 and 7001, said so, and their requests pair")
    func detected() throws {
        let file = try TempFile(Self.mixedTrace().bytes)
        var pairs: [RequestTiming] = []
        let (report, analysis) = try ReportBuilder.build(path: file.path) { pairs.append($0) }
        #expect(report.redisPorts?.ports == [7000, 7001])
        #expect(report.redisPorts?.chosenBy == "detected")
        #expect(report.redisPorts?.reasons.first?.hasPrefix("port 7000: client streams begin with RESP arrays (2 of 2 connections)") == true)
        #expect(analysis.vantages[0].requests == 5)
        #expect(pairs.count == 5) // the mid-stream one too: its reply starts at its acknowledgement number
        #expect(!report.vantages[0].notes.contains { $0.contains("use --port") })
    }

    @Test("with Redis on 6379, 6379 is kept; the other Redis-like ports are named, not analysed")
    func defaultKept() throws {
        var pcap = Self.mixedTrace()
        var redis = Flow(clientPort: 40020, serverPort: 6379)
        redis.open(&pcap, at: 2_000_000_000)
        redis.send("*1\r\n$4\r\nPING\r\n", &pcap, at: 2_000_001_000)
        redis.reply("+PONG\r\n", &pcap, at: 2_000_002_000)
        let file = try TempFile(pcap.bytes)
        let (report, analysis) = try ReportBuilder.build(path: file.path)
        #expect(analysis.vantages[0].requests == 1)
        let ports = try #require(report.redisPorts)
        #expect(ports.ports == [6379] && ports.chosenBy == "default")
        #expect(ports.notes == ["ports 7000, 7001 also look like Redis (port 7000: client streams begin with RESP arrays (2 of 2 connections) and the server answers in RESP on 2; port 7001: client streams begin with RESP arrays (1 of 1 connection) and the server answers in RESP on 1) and were not analysed: --port 6379 --port 7000 --port 7001 analyses all"])
    }

    @Test("nothing like Redis anywhere: the default port stays, with the hint of the ports seen")
    func nothingFound() throws {
        var pcap = PcapBuilder()
        var http = Flow(clientPort: 40010, serverPort: 8080)
        http.open(&pcap, at: 1_000_000_000)
        http.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &pcap, at: 1_000_001_000)
        http.reply("HTTP/1.1 200 OK\r\n\r\n", &pcap, at: 1_000_002_000)
        let file = try TempFile(pcap.bytes)
        let (report, _) = try ReportBuilder.build(path: file.path)
        #expect(report.redisPorts == nil)
        #expect(report.vantages[0].notes.contains { $0.contains("TCP traffic was seen on ports 8080") })
    }
}
