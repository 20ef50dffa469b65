import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

@Suite("RESP decoding")
struct RESPTests {
    struct Event: Equatable {
        var command: String?
        var isError: Bool
        var isPush: Bool
        var sequence: UInt32
    }

    /// Feeds `bytes` split at `cuts`; returns the messages or the failure.
    static func decode(_ bytes: [UInt8], role: RESPStreamDecoder.Role, cuts: [Int]) -> ([Event], RESPStreamDecoder.Failure?) {
        var d = RESPStreamDecoder(role: role)
        var events: [Event] = []
        var start = 0
        for end in (cuts + [bytes.count]).sorted() where end >= start {
            let part = Array(bytes[start..<end])
            part.withUnsafeBytes { raw in
                _ = d.feed(.data(raw, sequence: UInt32(start), timestampNs: Int64(start), acknowledgement: 0)) { m in
                    events.append(Event(command: m.command, isError: m.isError, isPush: m.isPush, sequence: m.sequence))
                }
            }
            start = end
        }
        return (events, d.failure)
    }

    static let requests: [UInt8] = resp("SET", "key:1", "value") + resp("get", "key:1") + Array("PING\r\n\r\nping x\r\n".utf8)
        + resp("CONFIG", "get", "save") + Array("*0\r\n".utf8) + resp("EVAL", "return 1", "0")
    static let expectedRequests = ["SET", "GET", "PING", "PING", "CONFIG GET", "EVAL"]

    static let responses: [UInt8] = Array(("+OK\r\n$5\r\nvalue\r\n$-1\r\n-ERR unknown\r\n:42\r\n*2\r\n$1\r\na\r\n*1\r\n:1\r\n"
        + "_\r\n#t\r\n,3.14\r\n(123456789012345678901\r\n%1\r\n+k\r\n+v\r\n~2\r\n+a\r\n+b\r\n"
        + "=15\r\ntxt:Some string\r\n!9\r\nERR oops!\r\n>2\r\n+message\r\n+x\r\n|1\r\n+ttl\r\n:3\r\n+after-attribute\r\n"
        + "*?\r\n:1\r\n:2\r\n.\r\n$?\r\n;3\r\nabc\r\n;0\r\n*-1\r\n").utf8)
    static let expectedResponses = 19

    @Test("every split of a request stream gives the same commands")
    func requestChunkings() {
        let (whole, failure) = Self.decode(Self.requests, role: .requests, cuts: [])
        #expect(failure == nil)
        #expect(whole.map(\.command) == Self.expectedRequests)
        for cut in 0...Self.requests.count {
            let (events, f) = Self.decode(Self.requests, role: .requests, cuts: [cut])
            #expect(events == whole, "split at \(cut)")
            #expect(f == nil)
        }
        // Byte by byte.
        let (single, _) = Self.decode(Self.requests, role: .requests, cuts: Array(0...Self.requests.count))
        #expect(single == whole)
    }

    @Test("every split of a RESP2 + RESP3 response stream gives the same replies")
    func responseChunkings() {
        let (whole, failure) = Self.decode(Self.responses, role: .responses, cuts: [])
        #expect(failure == nil)
        #expect(whole.count == Self.expectedResponses)
        #expect(whole.filter(\.isError).count == 2)
        #expect(whole.filter(\.isPush).count == 1)
        for cut in 0...Self.responses.count {
            #expect(Self.decode(Self.responses, role: .responses, cuts: [cut]).0 == whole, "split at \(cut)")
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let cuts = (0..<8).map { _ in Int.random(in: 0...Self.responses.count, using: &generator) }
            #expect(Self.decode(Self.responses, role: .responses, cuts: cuts).0 == whole, "cuts \(cuts)")
        }
    }

    @Test("message sequence numbers point at each message's first byte")
    func sequences() {
        let (events, _) = Self.decode(resp("GET", "a") + resp("GET", "b"), role: .requests, cuts: [3])
        #expect(events.map(\.sequence) == [0, UInt32(resp("GET", "a").count)])
    }

    @Test("malformed input fails with a reason, never crashes", arguments: [
        "!garbage\r\n", "*x\r\n", "$abc\r\n", "*1\r\n$3\r\nGETXX", ".\r\n", ";5\r\n",
    ])
    func malformed(text: String) {
        let (_, failure) = Self.decode(Array(text.utf8), role: .responses, cuts: [])
        #expect(failure != nil)
    }

    @Test("a billion-element header and deep nesting are bounded")
    func hostile() {
        // The header is just a counter: nothing is allocated for the elements.
        let (events, failure) = Self.decode(Array("*1000000000\r\n:1\r\n:2\r\n".utf8), role: .responses, cuts: [])
        #expect(events.isEmpty)
        #expect(failure == nil)
        let deep = Array((String(repeating: "*1\r\n", count: 5000) + ":1\r\n").utf8)
        let (_, f2) = Self.decode(deep, role: .responses, cuts: [])
        #expect(f2?.reason.contains("nested deeper") == true)
        let longLine = Array(("+" + String(repeating: "a", count: 100)).utf8)
        #expect(Self.decode(longLine, role: .responses, cuts: []).1 == nil) // waits for CRLF
        let longNumber = Array(("*" + String(repeating: "9", count: 100) + "\r\n").utf8)
        #expect(Self.decode(longNumber, role: .responses, cuts: []).1 != nil)
    }

    @Test("missing bytes inside a bulk body are skipped; in framing they desynchronise")
    func missing() {
        var d = RESPStreamDecoder(role: .requests)
        var names: [String?] = []
        let head = Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nab".utf8)
        head.withUnsafeBytes { raw in
            _ = d.feed(.data(raw, sequence: 0, timestampNs: 1, acknowledgement: 0)) { names.append($0.command) }
        }
        d.feed(.missing(count: 10, sequence: UInt32(head.count), timestampNs: 2, cutBySnaplen: true)) { names.append($0.command) }
        #expect(names == ["SET"])
        #expect(d.failure == nil)
        d.feed(.missing(count: 3, sequence: 100, timestampNs: 3, cutBySnaplen: false)) { names.append($0.command) }
        #expect(d.failure != nil)
    }
    /// Feeds `bytes` in the pieces `cuts` gives with the fast path on or off; returns every
    /// message whole, every start, and the failure.
    static func trace(_ bytes: [UInt8], role: RESPStreamDecoder.Role, cuts: [Int], fast: Bool, pubSub: Bool = false)
        -> ([RESPMessage], [Int64], RESPStreamDecoder.Failure?, Int) {
        var d = RESPStreamDecoder(role: role)
        d.usesFastPath = fast
        d.readsPubSubArrays = pubSub
        var messages: [RESPMessage] = []
        var starts: [Int64] = []
        var start = 0
        for end in (cuts + [bytes.count]).sorted() where end >= start {
            let part = Array(bytes[start..<end])
            let ok = part.withUnsafeBytes { raw in
                d.feed(.data(raw, sequence: UInt32(start) &+ 4_294_967_000, timestampNs: Int64(start), acknowledgement: 0),
                       started: { ts, seq in starts.append(ts * 1_000_000 + Int64(seq)) }) { messages.append($0) }
            }
            if !ok { break }
            start = end
        }
        return (messages, starts, d.failure, d.messagesReadWhole)
    }

    /// Messages of the shapes the fast path reads, and of every shape it must leave to the state
    /// machine, next to each other.
    static func mixedStream(role: RESPStreamDecoder.Role, using g: inout some RandomNumberGenerator) -> [UInt8] {
        var out: [UInt8] = []
        let names = ["GET", "set", "CONFIG", "client", "x", "", String(repeating: "A", count: 31),
                     String(repeating: "b", count: 32), "ge t", "HSET", "\r\n", "REPLY", "off", "Skip", "3", "abcdefghi"]
        for _ in 0..<40 {
            switch (role, Int.random(in: 0..<13, using: &g)) {
            case (.requests, 0...6):
                let words = (0..<Int.random(in: 1...4, using: &g)).map { _ in names.randomElement(using: &g)! }
                out += Array(("*\(words.count)\r\n" + words.map { "$\($0.utf8.count)\r\n\($0)\r\n" }.joined()).utf8)
            case (.requests, 7): out += Array("PING\r\n\r\n".utf8)
            case (.requests, 8): out += Array("*0\r\n*1\r\n:5\r\n".utf8)
            case (.requests, 9): out += Array("*2\r\n$-1\r\n$3\r\nabc\r\n*01\r\n$003\r\nGET\r\n*-0\r\n*1\r\n$-0\r\n\r\n".utf8)
            case (.requests, _): out += Array("*1\r\n$3\r\nGETX\r\n".utf8) // a lying length: both must fail alike
            case (.responses, 0...5):
                out += Array(["+OK\r\n", "-ERR x\r\n", ":12\r\n", "$5\r\nhello\r\n", "$-1\r\n", "$0\r\n\r\n", "_\r\n",
                              "#t\r\n", ",1.5\r\n", "(12\r\n", "*-1\r\n", "*0\r\n", "+\r\n"].randomElement(using: &g)!.utf8)
            case (.responses, 6...8):
                let n = Int.random(in: 1...5, using: &g)
                out += Array(("*\(n)\r\n" + (0..<n).map { k in k % 2 == 0 ? "$2\r\nab\r\n" : ":\(k)\r\n" }.joined()).utf8)
            case (.responses, 9): out += Array("*2\r\n*1\r\n:1\r\n%1\r\n+a\r\n+b\r\n>1\r\n+m\r\n!3\r\nerr\r\n".utf8)
            case (.responses, 10): out += Array("$-01\r\n*01\r\n$01\r\nz\r\n$?\r\n;1\r\na\r\n;0\r\n*-0\r\n$-0\r\n\r\n*-2\r\n".utf8)
                // 18 digits are read; 19 are not (the state machine's limit).
                out += Array(("$" + String(repeating: "0", count: 17) + "1\r\nz\r\n").utf8)
                if Bool.random(using: &g) { out += Array(("$" + String(repeating: "0", count: 18) + "1\r\nz\r\n").utf8) }
            case (.responses, 11):
                // Pub/sub frames, RESP2 and RESP3, and arrays that only look like them.
                out += Array(["*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n", "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
                              ">3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n", "*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$1\r\nx\r\n",
                              "*2\r\n$4\r\npong\r\n$0\r\n\r\n", "*1\r\n+message\r\n", "*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n:1\r\n",
                              "|1\r\n+a\r\n+b\r\n>2\r\n$10\r\ninvalidate\r\n*0\r\n"].randomElement(using: &g)!.utf8)
            case (.responses, _): out += Array("$2\r\nabc\r\n".utf8) // a lying length
            }
        }
        return out
    }

    @Test("the fast path and the state machine give the same messages, starts and failures")
    func fastPathMatchesStateMachine() {
        var g = SystemRandomNumberGenerator()
        var fastMessages = 0
        for (role, pubSub) in [(RESPStreamDecoder.Role.requests, false), (.responses, false), (.responses, true)] {
            let fixed = role == .requests ? Self.requests : Self.responses
            for round in 0..<300 {
                let bytes = round == 0 ? fixed : Self.mixedStream(role: role, using: &g)
                let cuts = round % 3 == 0 ? [] : (0..<Int.random(in: 1...6, using: &g)).map { _ in Int.random(in: 0...bytes.count, using: &g) }
                let fast = Self.trace(bytes, role: role, cuts: cuts, fast: true, pubSub: pubSub)
                let slow = Self.trace(bytes, role: role, cuts: cuts, fast: false, pubSub: pubSub)
                #expect(fast.0 == slow.0, "\(role) \(String(decoding: bytes, as: UTF8.self).debugDescription) cuts \(cuts)")
                #expect(fast.1 == slow.1)
                #expect(fast.2 == slow.2)
                #expect(slow.3 == 0)
                fastMessages += fast.3
            }
        }
        #expect(fastMessages > 1000)
    }
}

/// Issue 16, item 14: RESP3 attribute maps (`|`) before a reply, in every shape the protocol
/// allows (before a reply, nested inside an aggregate, two in a row, empty), on every chunking.
@Suite("RESP3 attributes")
struct RESPAttributeTests {
    @Test(arguments: [
        "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
        "|1\r\n+ttl\r\n:3600\r\n+OK\r\n",
        "|0\r\n+OK\r\n",
        "*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n",
        "|1\r\n+a\r\n|1\r\n+b\r\n+c\r\n+d\r\n+OK\r\n",
        "|1\r\n+a\r\n+b\r\n$5\r\nvalue\r\n",
        "|1\r\n$3\r\nttl\r\n:10\r\n*1\r\n$2\r\nok\r\n",
    ])
    func anAttributeIsNotAReply(text: String) {
        let bytes = Array(text.utf8)
        for cut in 0...bytes.count {
            let (events, failure) = RESPTests.decode(bytes, role: .responses, cuts: cut == 0 ? [] : [cut])
            #expect(failure == nil, "cut \(cut): \(String(describing: failure))")
            #expect(events.count == 1, "cut \(cut)")
        }
    }
}

/// Issue 16, item 11: inline commands must look like Redis commands; an HTTP request is not RESP.
/// Items 12 and 13: what the pairing rules read of requests (`RequestShape`) and replies
/// (`PubSubFrame`), the same on every chunking.
@Suite("RESP inline commands, request shapes and pub/sub frames")
struct RESPRulesInputTests {
    /// Decodes `text` whole and on every split in two: the messages must not depend on the split.
    static func everySplit(_ text: String, role: RESPStreamDecoder.Role, pubSub: Bool = false)
        -> ([RESPMessage], RESPStreamDecoder.Failure?) {
        let bytes = Array(text.utf8)
        // The times are the chunks' (they differ with the split); everything else must not.
        func untimed(_ m: [RESPMessage]) -> [RESPMessage] {
            m.map { var m = $0; m.firstByteNs = 0; m.lastByteNs = 0; return m }
        }
        let whole = RESPTests.trace(bytes, role: role, cuts: [], fast: true, pubSub: pubSub)
        for cut in 0...bytes.count {
            for fast in [true, false] {
                let split = RESPTests.trace(bytes, role: role, cuts: [cut], fast: fast, pubSub: pubSub)
                #expect(untimed(split.0) == untimed(whole.0), "cut \(cut)")
                #expect(split.2 == whole.2, "cut \(cut)")
            }
        }
        return (whole.0, whole.2)
    }

    @Test("names Redis uses inline are commands", arguments: [
        "PING\r\n", "ping\n", "GEORADIUS_RO k 0 0 1 km\r\n", "RESTORE-ASKING k 0 x\r\n", "FT.SEARCH idx q\r\n",
        "set k \"a b\"\r\n", "GET /index.html\r\n",
    ])
    func inlineCommands(text: String) {
        let (messages, failure) = Self.everySplit(text, role: .requests)
        #expect(failure == nil)
        #expect(messages.count == 1)
    }

    @Test("an HTTP request, a header, TLS or binary bytes are not RESP: the stream fails as not RESP", arguments: [
        ("GET / HTTP/1.1\r\nHost: redis\r\n\r\n", "HTTP request line"),
        ("POST /api/v1/items?page=2&filter=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.0\r\n\r\n", "HTTP request line"),
        ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP request line"),
        ("Host: redis\r\n", "\"Host:\""),
        ("\u{16}\u{03}\u{01}\u{02}\u{00}\u{01}\r\n", "\"\\x16\\x03\\x01\\x02\\x00\\x01\""),
        ("1234 GET\r\n", "\"1234\""),
    ])
    func notRESP(text: String, says: String) {
        let (messages, failure) = Self.everySplit(text, role: .requests)
        #expect(messages.isEmpty)
        #expect(failure?.isNotRESP == true)
        #expect(failure?.sequence == 4_294_967_000)
        #expect(failure?.reason.hasPrefix("not RESP: ") == true)
        #expect(failure?.reason.contains(says) == true, "\(String(describing: failure))")
    }

    @Test("a request's shape: its element count and the argument its reply rule reads, from arrays and inline commands alike")
    func shapes() {
        let array = Self.everySplit("*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\noff\r\n", role: .requests).0
        let inline = Self.everySplit("client REPLY off\r\n", role: .requests).0
        #expect(array.map(\.command) == ["CLIENT REPLY"] && inline.map(\.command) == ["CLIENT REPLY"])
        #expect(array[0].shape == inline[0].shape)
        #expect(array[0].shape.elements == 3 && array[0].shape.argument.equalsIgnoringCase("OFF"))
        let subscribe = Self.everySplit("*4\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", role: .requests).0
        #expect(subscribe[0].shape.elements == 4)
        // A long inline line: its words are counted past the bytes kept of it.
        let channels = (0..<40).map { "channel-\($0)" }
        let long = Self.everySplit("SUBSCRIBE " + channels.joined(separator: " ") + "\r\n", role: .requests).0
        #expect(long[0].shape.elements == 41)
        let hello = Self.everySplit("*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n", role: .requests).0
        #expect(hello[0].shape.argument.equalsIgnoringCase("3"))
        // Other commands' arguments are not read (only those of the commands whose replies depend on one).
        let get = Self.everySplit("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", role: .requests).0
        #expect(get[0].shape == RequestShape(elements: 2, argument: .absent))
    }

    @Test("pub/sub frames: pushes always, RESP2 arrays once asked; a confirmation's count; other arrays are no frame")
    func frames() {
        let stream = "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n" + "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:2\r\n"
            + ">3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n" + "*2\r\n$4\r\npong\r\n$0\r\n\r\n" + "+OK\r\n"
            + "|1\r\n+a\r\n+b\r\n>4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$1\r\nx\r\n"
        let asked = Self.everySplit(stream, role: .responses, pubSub: true).0
        #expect(asked.map(\.pubSub) == [PubSubFrame(kind: .message, count: -1), PubSubFrame(kind: .subscribe, count: 2),
                                        PubSubFrame(kind: .unsubscribe, count: 0), .none, .none, PubSubFrame(kind: .pmessage, count: -1)])
        let notAsked = Self.everySplit(stream, role: .responses).0
        #expect(notAsked.map(\.pubSub.kind) == [.none, .none, .unsubscribe, .none, .none, .pmessage])
        #expect(notAsked.map(\.isPush) == [false, false, true, false, false, true])
    }
}
