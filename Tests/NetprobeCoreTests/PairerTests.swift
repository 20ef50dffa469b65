import Testing
@testable import NetprobeTrace

/// The pairing rules alone: a `RequestPairer` fed requests, reply starts and ends, and gaps, as
/// the dissector would, with no packets.
@Suite("request pairer")
struct PairerTests {
    /// One connection's events, written as a client and a server exchange them.
    struct Script {
        var pairer: RequestPairer
        /// Sequence numbers of the next request byte and the next reply byte.
        var requestSeq: UInt32 = 1000
        var replySeq: UInt32 = 5000
        var now: Int64 = 0
        var pairs: [RequestPairer.Pair] = []
        var unpaired: [UnpairedReason: Int] = [:]
        var unexpected = 0
        var ignored = 0
        var pushes = 0
        var confirmations = 0
        var noReply = 0

        init(joinedMidStream: Bool = false) { pairer = RequestPairer(joinedMidStream: joinedMidStream) }

        mutating func note(_ u: RequestPairer.Unpaired?) {
            if let u { unpaired[u.reason, default: 0] += u.count }
        }

        /// A request of `length` bytes sent with acknowledgement `ack` (default: every reply so far).
        @discardableResult
        mutating func request(_ command: Int = 0, length: UInt32 = 20, ack: UInt32? = nil, rule: ReplyRule = .ordinary,
                              shape: RequestShape = .none) -> RequestPairer.Request {
            now += 100
            let r = RequestPairer.Request(command: command, sequence: requestSeq, endSequence: requestSeq &+ length,
                                          firstByteNs: now, lastByteNs: now + 10, acknowledgement: ack ?? replySeq)
            requestSeq &+= length
            switch pairer.request(r, rule: rule, shape: shape) {
            case .awaitsReply: break
            case .noReply: noReply += 1
            case let .unpaired(u): note(u)
            }
            return r
        }

        /// A reply of `length` bytes at the current reply position; `serverAck`: the server's
        /// acknowledgement (default: every request so far).
        mutating func reply(length: UInt32 = 5, serverAck: UInt32? = nil, isError: Bool = false, isPush: Bool = false,
                            pubSub: PubSubFrame = .none) {
            now += 1000
            note(pairer.responseStarted(at: now, sequence: replySeq, acknowledgement: serverAck ?? requestSeq))
            replySeq &+= length
            switch pairer.response(firstByteNs: now, lastByteNs: now + 5, isError: isError, isPush: isPush, pubSub: pubSub) {
            case let .paired(p): pairs.append(p)
            case .unexpected: unexpected += 1
            case .push: pushes += 1
            case .confirmation: confirmations += 1
            case .ignored: ignored += 1
            }
        }

        /// A reply the capture lost (its bytes never reach the pairer).
        mutating func lostReply(length: UInt32 = 5) { replySeq &+= length }

        /// The reply stream lost bytes, then resumes with a piece starting at `sequence`.
        mutating func realign(at sequence: UInt32, length: Int) -> Int? {
            let (offset, u) = pairer.alignResponses(at: sequence, length: length)
            note(u)
            return offset
        }
    }

    @Test("one request at a time: each reply answers the request before it, timed from its first byte")
    func inOrder() {
        var s = Script()
        let a = s.request(1)
        s.reply(isError: true)
        let b = s.request(2)
        s.reply()
        #expect(s.pairs.map(\.request) == [a, b])
        #expect(s.pairs.map(\.isError) == [true, false])
        #expect(s.pairs[0].responseFirstByteNs == 1100 && s.pairs[0].responseLastByteNs == 1105)
        #expect(s.unpaired.isEmpty && s.unexpected == 0)
        #expect(!s.pairer.pipelined && s.pairer.pendingCount == 0)
    }

    @Test("pipelined: replies pair in order; a reply with nothing pending answers nothing seen; pushes are not replies")
    func pipelined() {
        var s = Script()
        let sent = (0..<5).map { s.request($0) }
        #expect(s.pairer.pipelined)
        for _ in 0..<5 { s.reply() }
        s.reply(isPush: true)
        s.reply()
        #expect(s.pairs.map(\.request) == sent)
        #expect(s.unexpected == 1)
        #expect(s.pushes == 1)
    }

    @Test("a reply the server sent before it had the whole request answers one never seen")
    func serverAckRejects() {
        var s = Script()
        let a = s.request(length: 20)
        s.reply(serverAck: a.sequence) // acknowledges none of the request
        #expect(s.unexpected == 1 && s.pairs.isEmpty)
        s.reply()
        #expect(s.pairs.map(\.request) == [a])
    }

    @Test("MONITOR (or replication) stops pairing: it and every later request are unpaired, replies ignored")
    func replyModeChanged() {
        var s = Script()
        s.request(0)
        s.request(1, rule: .stops)
        #expect(s.pairer.stopped == .replyModeChanged)
        #expect(s.unpaired == [.replyModeChanged: 2])
        s.reply()
        s.request(0)
        #expect(s.unpaired == [.replyModeChanged: 3])
        #expect(s.ignored == 1 && s.pairs.isEmpty)
    }

    @Test("the end of a connection gives up its pending requests with the reason given")
    func end() {
        var s = Script()
        s.request()
        s.request()
        s.reply()
        #expect(s.pairer.end(.connectionClosed) == RequestPairer.Unpaired(reason: .connectionClosed, count: 1))
        #expect(s.pairer.end(.traceEnded) == nil)
    }

    @Test("a lost reply on a connection that waits for each: replies resume at the next request's acknowledgement")
    func lostReplyWaitingClient() {
        var s = Script()
        s.request()
        s.reply()
        s.request() // its reply is lost
        s.lostReply()
        #expect(s.pairer.responsesLost() == nil) // not pipelined: pairing goes on
        let c = s.request()
        // The capture picks the reply stream up 3 bytes before c's reply begins.
        #expect(s.realign(at: c.acknowledgement &- 3, length: 20) == 3)
        #expect(s.unpaired == [.streamDesynchronised: 1]) // b: its reply was never seen
        s.reply()
        #expect(s.pairs.map(\.request.sequence) == [1000, c.sequence])
    }

    @Test("realigning: a piece before any aligned reply is skipped, a piece without one too, the next request aligns")
    func realignSkips() {
        var s = Script()
        s.request()
        s.reply()
        #expect(s.pairer.responsesLost() == nil)
        // Nothing pending: nothing to align on yet.
        #expect(s.realign(at: s.replySeq, length: 10) == nil)
        let b = s.request(ack: s.replySeq + 7)
        // A piece that ends before b's reply begins.
        #expect(s.realign(at: s.replySeq, length: 7) == nil)
        #expect(s.pairer.responsesNeedAlignment)
        #expect(s.realign(at: s.replySeq, length: 8) == 7)
        #expect(!s.pairer.responsesNeedAlignment)
        s.replySeq += 7
        s.reply()
        #expect(s.pairs.last?.request == b)
        #expect(s.unpaired.isEmpty)
    }

    @Test("a gap in the reply stream of a pipelined connection stops pairing there (the count may be 0)")
    func lostReplyPipelined() {
        var s = Script()
        s.request()
        s.request()
        s.request()
        #expect(s.pairer.pipelined)
        s.reply()
        s.note(s.pairer.responsesLost())
        #expect(s.pairer.stopped == .streamDesynchronised)
        #expect(s.unpaired == [.streamDesynchronised: 2])
        s.request()
        s.reply()
        #expect(s.unpaired == [.streamDesynchronised: 3])
        #expect(s.pairs.count == 1 && s.ignored == 1)

        var t = Script()
        t.request()
        t.request()
        t.reply()
        t.reply()
        #expect(t.pairer.responsesLost() == RequestPairer.Unpaired(reason: .streamDesynchronised, count: 0))
    }

    @Test("a gap in the request stream: the first request after it pairs only when it starts a new flight")
    func lostRequest() {
        var s = Script()
        s.request()
        s.reply()
        s.pairer.requestsLost()
        s.pairer.requestsResumed()
        // Sent in the same flight as the previous request (same acknowledgement): its reply
        // cannot be placed.
        s.request(ack: s.pairs[0].request.acknowledgement)
        #expect(s.unpaired == [.streamDesynchronised: 1])
        s.pairer.requestsResumed()
        let b = s.request()
        // A reply that begins before b's acknowledgement answers a request in the gap.
        s.replySeq -= 5
        s.reply()
        #expect(s.unexpected == 1)
        s.reply()
        #expect(s.pairs.last?.request == b)
    }

    @Test("joined mid-stream: requests count from the first command boundary, replies from its acknowledgement")
    func joinedMidStream() {
        var s = Script(joinedMidStream: true)
        #expect(s.pairer.responsesNeedAlignment)
        s.pairer.requestsResumed()
        let a = s.request()
        // The reply stream is picked up in the middle of an earlier reply, 12 bytes before a's.
        #expect(s.realign(at: a.acknowledgement &- 12, length: 40) == 12)
        s.reply()
        s.request()
        s.reply()
        #expect(s.pairs.count == 2 && s.pairs[0].request == a)
        #expect(s.unpaired.isEmpty)
    }

    @Test("sequence numbers wrap: pairing does not notice")
    func wrap() {
        var s = Script()
        s.requestSeq = UInt32.max - 30
        s.replySeq = UInt32.max - 3
        s.request()
        s.reply(length: 10)
        s.pairer.requestsLost()
        s.pairer.requestsResumed()
        let b = s.request()
        s.reply()
        #expect(s.pairs.last?.request == b)
        #expect(s.unpaired.isEmpty)
    }
}
