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
/// new connection. SUBSCRIBE, MONITOR, CLIENT REPLY and replication change the reply rules:
/// pairing stops too. Nothing is ever guessed: a request that cannot be placed is unpaired, with
/// its reason.
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
        /// A RESP3 push, or a reply after pairing stopped: not counted.
        case ignored
    }

    private struct Pending {
        var request: Request
        /// Pairing must start exactly at the request's acknowledgement number: requests before it
        /// (or their replies) were lost, so the reply stream position is only known through it.
        var align: Bool
        var responseFirstByteNs: Int64?
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

    /// `joinedMidStream`: the capture did not see the connection open, so neither stream is
    /// known to be at a message boundary.
    init(joinedMidStream: Bool = false) {
        responsesNeedAlignment = joinedMidStream
        queue.reserveCapacity(16)
    }

    /// Requests waiting for their replies.
    var pendingCount: Int { queue.count - head }

    /// Whether replies to `command` stop following requests one to one (the connection
    /// subscribes, monitors, turns replies off or replicates).
    static func changesReplyMode(_ command: String) -> Bool {
        switch command {
        case "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR", "CLIENT REPLY", "SYNC", "PSYNC": true
        default: false
        }
    }

    // MARK: Events, in stream order

    /// A complete request. `changesReplyMode`: `changesReplyMode(its command)` (callers cache it).
    /// Returns the requests given up on because of it: this one, or every pending one.
    @inline(__always)
    mutating func request(_ r: Request, changesReplyMode: Bool) -> Unpaired? {
        if let stopped { return Unpaired(reason: stopped, count: 1) }
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
                return Unpaired(reason: .streamDesynchronised, count: 1)
            }
            align = true
            alignNextRequest = false
        }
        enqueue(Pending(request: r, align: align))
        if changesReplyMode {
            stopped = .replyModeChanged
            return Unpaired(reason: .replyModeChanged, count: dropPending())
        }
        return nil
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
        if queue[head].responseFirstByteNs == nil { queue[head].responseFirstByteNs = ns }
        return unpaired
    }

    /// A complete reply (its first and last byte's times).
    @inline(__always)
    mutating func response(firstByteNs: Int64, lastByteNs: Int64, isError: Bool, isPush: Bool) -> ResponseOutcome {
        if isPush || stopped != nil { return .ignored }
        if responseRejected {
            responseRejected = false
            return .unexpected
        }
        guard let p = dequeue() else { return .unexpected }
        return .paired(Pair(request: p.request, responseFirstByteNs: p.responseFirstByteNs ?? firstByteNs,
                            responseLastByteNs: lastByteNs, isError: isError))
    }

    /// The reply stream lost bytes (or could not be decoded): replies resume at an aligned
    /// request's reply. On a pipelined connection they cannot: pairing stops, and the pending
    /// requests are given up on (the count may be 0: the reason is reported all the same).
    mutating func responsesLost() -> Unpaired? {
        lossSeen = true
        responsesNeedAlignment = true
        responseRejected = false
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
