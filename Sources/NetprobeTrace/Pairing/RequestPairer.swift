import NetprobeModel

/// Pairs the requests of one connection at one vantage point with their replies: the rules, and
/// nothing else. It is fed what the dissector (`RESPDissector`) finds in the two streams, in
/// stream order: requests, the start and the end of each reply, and the places where a stream
/// lost bytes; it answers with pairs and with the requests it gives up on, and why.
///
/// Redis answers a connection's requests in order, so the n-th reply answers the n-th request,
/// as long as nothing was lost. After a loss, or when the capture joined the connection
/// mid-stream, netprobe waits until it can be sure which reply answers which request: a client
/// that waits for each reply acknowledges exactly the reply stream up to where the next reply
/// starts, so the first request after the loss is *aligned*: its reply is the one that starts at
/// the request's acknowledgement number. On a pipelined connection (requests seen while others
/// were outstanding) acknowledgement numbers say nothing of that, so pairing stops there until a
/// new connection. Nothing is ever guessed: a request that cannot be placed is unpaired, with
/// its reason.
///
/// Where Redis departs from one reply per request, the pairer follows its rules (`ReplyRule`):
/// - CLIENT REPLY: while OFF no command gets a reply (OFF itself neither); SKIP silences its own
///   reply and the next command's; ON (and RESET) answer and turn replies back on. A request that
///   by these rules gets no reply is counted as such (`RequestOutcome.noReply`), never as unpaired.
/// - Pub/sub: (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE are answered by one confirmation per channel:
///   the request pairs with the first, the others follow it. Published messages are not replies:
///   in RESP3 they are pushes (`>`), in RESP2 arrays that arrive while the client is subscribed
///   (it is from its first subscription until its count of subscriptions is back to 0 or RESET is
///   answered). Other RESP3 pushes (client-side caching invalidations) are not replies either.
/// - HELLO 3 switches the replies after its own to RESP3 (HELLO 2 and RESET back to RESP2): in
///   RESP3 any command may be sent while subscribed, and an array is always a reply.
/// - MONITOR and replication (SYNC, PSYNC) turn the reply stream into something else: pairing
///   stops there (`replyModeChanged`).
///
/// A plain value: no references, no callbacks. `TraceAnalyzer` keeps one per connection and
/// hands what it returns to the vantage point's statistics.
struct RequestPairer {
    /// A complete request, as the dissector found it.
    struct Request: Equatable {
        /// The caller's number for the command (a vantage point's command table): carried to the pair.
        var command: Int
        /// Sequence numbers of its first byte and just past its last.
        var sequence: UInt32
        var endSequence: UInt32
        var firstByteNs: Int64
        var lastByteNs: Int64
        /// The acknowledgement number of the segment that carried it (the latest one with data
        /// when it ended in bytes the capture missed): how much of the reply stream the client had.
        var acknowledgement: UInt32
    }

    /// What became of a complete request.
    enum RequestOutcome: Equatable {
        /// It waits for its reply.
        case awaitsReply
        /// By the protocol it gets no reply (CLIENT REPLY OFF or SKIP): not unpaired.
        case noReply
        /// Given up on: this request, or (`replyModeChanged`) every pending one.
        case unpaired(Unpaired)
    }

    /// A request and the reply that answers it.
    struct Pair: Equatable {
        var request: Request
        var responseFirstByteNs: Int64
        var responseLastByteNs: Int64
        var isError: Bool
    }

    /// Requests given up on.
    struct Unpaired: Equatable {
        var reason: UnpairedReason
        var count: Int
    }

    /// What became of a complete reply.
    enum ResponseOutcome: Equatable {
        case paired(Pair)
        /// It answers no request seen here (one the capture missed, or sent before the capture).
        case unexpected
        /// A push or a published message: not a reply.
        case push
        /// A further confirmation of a (P|S)(UN)SUBSCRIBE already paired with its first.
        case confirmation
        /// A reply after pairing stopped: not counted.
        case ignored
    }

    private struct Pending {
        var request: Request
        /// Pairing must start exactly at the request's acknowledgement number: requests before it
        /// (or their replies) were lost, so the reply stream position is only known through it.
        var align: Bool
        var rule: ReplyRule = .ordinary
        /// Pub/sub commands: the confirmations that answer it (-1: as many as the client had
        /// channels, which only the replies tell); 0 for the others.
        var confirmations: Int32 = 0
        /// HELLO: the protocol version it asks for (0: none named).
        var protocolVersion: UInt8 = 0
    }

    /// Requests sent and not yet answered, oldest first (`head` is the oldest).
    private var queue: [Pending] = []
    private var head = 0
    /// Set when pairing stopped (desynchronised pipelined stream, SUBSCRIBE ...): the reason.
    private(set) var stopped: UnpairedReason?
    /// The reply stream's position is unknown (joined mid-stream, or it lost bytes): replies
    /// resume where an aligned request's reply starts (`alignResponses`).
    private(set) var responsesNeedAlignment: Bool
    /// The next request is the first after a loss of the request stream: it must be aligned.
    private var alignNextRequest = false
    /// The acknowledgement number of the last request.
    private var lastRequestAck: UInt32?
    /// Seen with more than one request outstanding: after a loss, replies cannot be placed by
    /// acknowledgement numbers.
    private(set) var pipelined = false
    /// Bytes were lost on this connection (from then on, an old request may wait for a reply
    /// that will never be seen, so pending requests no longer prove pipelining).
    private var lossSeen = false
    /// The current reply cannot answer the oldest pending request (it started before the server
    /// had that request): it answers one that was never seen.
    private var responseRejected = false

    // The reply rules (`ReplyRule`), on the request side: whether the server answers the next
    // command, as CLIENT REPLY left it.
    /// CLIENT REPLY OFF is in force.
    private var repliesOff = false
    /// The previous command was CLIENT REPLY SKIP: this one gets no reply.
    private var skipNext = false

    // On the reply side: the protocol and the subscriptions as the replies so far left them.
    /// HELLO 3 was answered (and neither HELLO 2 nor RESET since).
    private(set) var resp3 = false
    /// Channels and patterns, and shard channels, the client is subscribed to (the counts the
    /// last confirmations carried): in RESP2 the client is in subscribed mode while either is > 0.
    private var subscriptions: Int64 = 0
    private var shardSubscriptions: Int64 = 0
    /// Confirmations still due to the request paired with the first of them: their kind, and
    /// how many (-1: until one says no subscription is left, or a reply of another kind comes).
    private var confirmationsDue: PubSubKind = .none
    private var confirmationsLeft: Int32 = 0

    /// In RESP2, whether the client is in subscribed mode.
    var subscribed: Bool { subscriptions > 0 || shardSubscriptions > 0 }

    /// `joinedMidStream`: the capture did not see the connection open, so neither stream is
    /// known to be at a message boundary.
    init(joinedMidStream: Bool = false) {
        responsesNeedAlignment = joinedMidStream
        queue.reserveCapacity(16)
    }

    /// Requests waiting for their replies.
    var pendingCount: Int { queue.count - head }

    // MARK: Events, in stream order

    /// A complete request: `rule`, `ReplyRule.of(its command)` (callers cache it), and its shape
    /// (read for the commands whose rule is not `.ordinary`).
    @inline(__always)
    mutating func request(_ r: Request, rule: ReplyRule = .ordinary, shape: RequestShape = .none) -> RequestOutcome {
        if let stopped { return .unpaired(Unpaired(reason: stopped, count: 1)) }
        // Whether the server will answer it, as Redis decides it command by command.
        var answered = !(repliesOff || skipNext)
        skipNext = false
        var pending = Pending(request: r, align: false, rule: rule)
        if rule != .ordinary {
            switch rule {
            case .clientReply where shape.elements == 3:
                if shape.argument.equalsIgnoringCase("ON") {
                    repliesOff = false
                    answered = true
                } else if shape.argument.equalsIgnoringCase("OFF") {
                    repliesOff = true
                    answered = false
                } else if shape.argument.equalsIgnoringCase("SKIP") {
                    if !repliesOff { skipNext = true }
                    answered = false
                } // else a syntax error, answered as any command is
            case .reset:
                repliesOff = false
                answered = true
            case .hello where shape.elements >= 2:
                pending.protocolVersion = shape.argument.equalsIgnoringCase("3") ? 3 : shape.argument.equalsIgnoringCase("2") ? 2 : 0
            case .subscribe, .psubscribe, .ssubscribe:
                pending.confirmations = max(shape.elements - 1, 0) // none named: an error reply
            case .unsubscribe, .punsubscribe, .sunsubscribe:
                pending.confirmations = shape.elements > 1 ? shape.elements - 1 : -1
            default:
                break
            }
        }
        if !answered { return .noReply }
        let previousAck = lastRequestAck
        lastRequestAck = r.acknowledgement
        if pendingCount > 0 && !lossSeen && !responsesNeedAlignment { pipelined = true }
        var align = false
        if responsesNeedAlignment && !alignNextRequest && !pipelined {
            // Replies are being realigned: any request that starts a new flight is a candidate.
            align = previousAck != r.acknowledgement
        } else if alignNextRequest {
            // The first request after a loss. Its reply starts at its acknowledgement number only
            // if the client waited for every earlier reply: not on pipelined connections, and not
            // when it was sent in the same flight as the request before it.
            if pipelined || previousAck == r.acknowledgement {
                return .unpaired(Unpaired(reason: .streamDesynchronised, count: 1))
            }
            align = true
            alignNextRequest = false
        }
        pending.align = align
        enqueue(pending)
        if rule == .stops {
            stopped = .replyModeChanged
            return .unpaired(Unpaired(reason: .replyModeChanged, count: dropPending()))
        }
        return .awaitsReply
    }

    /// The request stream lost bytes (or could not be decoded): requests resume at a command
    /// boundary, after `requestsResumed`.
    mutating func requestsLost() {
        lossSeen = true
    }

    /// Requests are decoded again from a command boundary: the next one is the first after a loss
    /// (or the first seen of a connection joined mid-stream).
    mutating func requestsResumed() {
        alignNextRequest = true
    }

    /// Where replies resume in a piece of the reply stream that starts at `sequence` and holds
    /// `length` bytes, while `responsesNeedAlignment`: the offset of the reply to the oldest
    /// aligned request, when it lies in this piece. Requests before it, whose replies cannot be
    /// placed, are given up on. nil: not in this piece (replies to requests the capture missed,
    /// or no request to align on yet: the next one will be).
    mutating func alignResponses(at sequence: UInt32, length: Int) -> (offset: Int?, unpaired: Unpaired?) {
        var dropped = 0
        var offset: Int64 = -1
        while head < queue.count {
            let d = seqDistance(queue[head].request.acknowledgement, sequence)
            if queue[head].align && d >= 0 {
                offset = d
                break
            }
            _ = dequeue()
            dropped += 1
        }
        let unpaired = dropped > 0 ? Unpaired(reason: .streamDesynchronised, count: dropped) : nil
        guard offset >= 0 else {
            alignNextRequest = true
            return (nil, unpaired)
        }
        guard offset < Int64(length) else { return (nil, unpaired) }
        responsesNeedAlignment = false
        return (Int(offset), unpaired)
    }

    /// A reply begins at `sequence` at time `ns`; `acknowledgement`: the server's, when the
    /// segment carried one (not when the reply begins in bytes the capture missed). Returns the
    /// requests whose replies were missed.
    @inline(__always)
    mutating func responseStarted(at ns: Int64, sequence: UInt32, acknowledgement: UInt32?) -> Unpaired? {
        guard stopped == nil else { return nil }
        responseRejected = false
        // Most likely a further confirmation of the request paired last, not the next one's reply.
        if confirmationsLeft != 0 { return nil }
        var dropped = 0
        while head < queue.count && queue[head].align {
            let d = seqDistance(sequence, queue[head].request.acknowledgement)
            if d < 0 {
                responseRejected = true
                return dropped > 0 ? Unpaired(reason: .streamDesynchronised, count: dropped) : nil
            }
            if d == 0 {
                queue[head].align = false
                break
            }
            _ = dequeue() // its reply started where no message began: it was missed
            dropped += 1
        }
        let unpaired = dropped > 0 ? Unpaired(reason: .streamDesynchronised, count: dropped) : nil
        guard head < queue.count else { return unpaired }
        if let ack = acknowledgement, seqDistance(ack, queue[head].request.endSequence) < 0 {
            // The server had not received the whole request when it sent this.
            responseRejected = true
            return unpaired
        }
        return unpaired
    }

    /// A complete reply (its first and last byte's times; whether it is an error, a RESP3 push;
    /// its pub/sub kind, read for pushes and, once the connection used pub/sub, for arrays).
    @inline(__always)
    mutating func response(firstByteNs: Int64, lastByteNs: Int64, isError: Bool, isPush: Bool,
                           pubSub: PubSubFrame = .none) -> ResponseOutcome {
        if stopped != nil { return .ignored }
        if pubSub.kind != .none || isPush || confirmationsLeft != 0 {
            // In RESP3 an array is a reply whatever its first element; pub/sub frames are pushes.
            let kind = isPush || !resp3 ? pubSub.kind : .none
            if let outcome = pubSubFrame(kind, count: pubSub.count, isPush: isPush, firstByteNs: firstByteNs,
                                         lastByteNs: lastByteNs) { return outcome }
        }
        if responseRejected {
            responseRejected = false
            return .unexpected
        }
        guard let p = dequeue() else { return .unexpected }
        if p.rule != .ordinary && !isError { replyAnswered(p) }
        return .paired(Pair(request: p.request, responseFirstByteNs: firstByteNs, responseLastByteNs: lastByteNs,
                            isError: isError))
    }

    /// A reply that may be a pub/sub frame or a push: what it is, or nil when it is an ordinary
    /// reply after all.
    private mutating func pubSubFrame(_ kind: PubSubKind, count: Int32, isPush: Bool, firstByteNs: Int64,
                                      lastByteNs: Int64) -> ResponseOutcome? {
        if confirmationsLeft != 0 {
            if kind == confirmationsDue {
                noteSubscriptions(kind, count: count)
                if confirmationsLeft > 0 { confirmationsLeft -= 1 } else if count == 0 { confirmationsLeft = 0 }
                return .confirmation
            }
            if kind.isMessage && (isPush || subscribed) { return .push }
            confirmationsLeft = 0 // an open-ended UNSUBSCRIBE's confirmations are over
        }
        if kind.isMessage && (isPush || subscribed) { return .push }
        guard kind.isConfirmation else { return isPush ? .push : nil }
        guard head < queue.count, queue[head].rule.confirmation == kind, queue[head].confirmations != 0,
              !responseRejected else {
            // Nobody waits for it (its command got no reply by CLIENT REPLY, or was sent before
            // the capture): Redis sends confirmations as pushes.
            noteSubscriptions(kind, count: count)
            return .push
        }
        let p = dequeue()!
        noteSubscriptions(kind, count: count)
        if p.confirmations > 1 || (p.confirmations < 0 && count != 0) {
            confirmationsDue = kind
            confirmationsLeft = p.confirmations > 1 ? p.confirmations - 1 : -1
        }
        // The request's reply is its first confirmation.
        return .paired(Pair(request: p.request, responseFirstByteNs: firstByteNs, responseLastByteNs: lastByteNs, isError: false))
    }

    /// A confirmation's count of the subscriptions left (of its kind: shard channels are apart).
    private mutating func noteSubscriptions(_ kind: PubSubKind, count: Int32) {
        guard count >= 0 else { return }
        if kind.isShard { shardSubscriptions = Int64(count) } else { subscriptions = Int64(count) }
    }

    /// A command whose rule is not `.ordinary` was answered (not with an error): its effect on
    /// the replies that follow.
    private mutating func replyAnswered(_ p: Pending) {
        switch p.rule {
        case .hello:
            if p.protocolVersion != 0 { resp3 = p.protocolVersion == 3 }
        case .reset:
            resp3 = false
            subscriptions = 0
            shardSubscriptions = 0
            confirmationsLeft = 0
        default:
            break
        }
    }

    /// The reply stream lost bytes (or could not be decoded): replies resume at an aligned
    /// request's reply. On a pipelined connection they cannot: pairing stops, and the pending
    /// requests are given up on (the count may be 0: the reason is reported all the same).
    mutating func responsesLost() -> Unpaired? {
        lossSeen = true
        responsesNeedAlignment = true
        responseRejected = false
        confirmationsLeft = 0
        // On a connection that waits for each reply, every pending request's reply starts at its
        // acknowledgement number, so each may be aligned on (one per flight).
        var previous: UInt32?
        for i in head..<queue.count {
            queue[i].align = queue[i].request.acknowledgement != previous
            previous = queue[i].request.acknowledgement
        }
        guard pipelined else { return nil }
        stopped = .streamDesynchronised
        return Unpaired(reason: .streamDesynchronised, count: dropPending())
    }

    /// The connection ended (or the trace did): every pending request is given up on.
    mutating func end(_ reason: UnpairedReason) -> Unpaired? {
        let left = dropPending()
        return left > 0 ? Unpaired(reason: reason, count: left) : nil
    }

    // MARK: The queue

    @inline(__always)
    private mutating func enqueue(_ p: Pending) {
        if head > 64 && head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        queue.append(p)
    }

    @inline(__always)
    private mutating func dequeue() -> Pending? {
        guard head < queue.count else { return nil }
        let p = queue[head]
        head += 1
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        }
        return p
    }

    private mutating func dropPending() -> Int {
        let n = pendingCount
        queue.removeAll(keepingCapacity: false)
        head = 0
        return n
    }
}
