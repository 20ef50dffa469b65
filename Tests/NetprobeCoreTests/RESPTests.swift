import Testing
@testable import NetprobeCore

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
}
