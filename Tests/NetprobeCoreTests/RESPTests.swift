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
    static func trace(_ bytes: [UInt8], role: RESPStreamDecoder.Role, cuts: [Int], fast: Bool)
        -> ([RESPMessage], [Int64], RESPStreamDecoder.Failure?, Int) {
        var d = RESPStreamDecoder(role: role)
        d.usesFastPath = fast
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
                     String(repeating: "b", count: 32), "ge t", "HSET", "\r\n"]
        for _ in 0..<40 {
            switch (role, Int.random(in: 0..<12, using: &g)) {
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
            case (.responses, _): out += Array("$2\r\nabc\r\n".utf8) // a lying length
            }
        }
        return out
    }

    @Test("the fast path and the state machine give the same messages, starts and failures")
    func fastPathMatchesStateMachine() {
        var g = SystemRandomNumberGenerator()
        var fastMessages = 0
        for role in [RESPStreamDecoder.Role.requests, .responses] {
            let fixed = role == .requests ? Self.requests : Self.responses
            for round in 0..<300 {
                let bytes = round == 0 ? fixed : Self.mixedStream(role: role, using: &g)
                let cuts = round % 3 == 0 ? [] : (0..<Int.random(in: 1...6, using: &g)).map { _ in Int.random(in: 0...bytes.count, using: &g) }
                let fast = Self.trace(bytes, role: role, cuts: cuts, fast: true)
                let slow = Self.trace(bytes, role: role, cuts: cuts, fast: false)
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
