import NetprobeModel
/// One Redis connection at one vantage point: two reassembled streams, two RESP decoders and the
/// queue of requests waiting for their responses.
final class Connection {
    struct Pending {
        /// The command's number at this vantage point (its name: `TraceAnalyzer.VantageBox.commandNames`).
        var commandId: Int
        var sequence: UInt32
        var endSequence: UInt32
        /// The acknowledgement number the client sent with the request: how much of the reply
        /// stream it had received. For a client that waits for each reply, the reply to this
        /// request starts exactly there.
        var clientAck: UInt32
        /// Pairing must start exactly at `clientAck`: requests before this one (or their replies)
        /// were lost, so the reply stream position is only known through `clientAck`.
        var align: Bool
        var firstByteNs: Int64
        var lastByteNs: Int64
        var responseFirstByteNs: Int64?
    }

    /// A response chunk kept aside while the request stream waits behind a hole (see
    /// `TraceAnalyzer`): a copy, since the packet's bytes do not outlive the packet.
    enum DeferredChunk {
        case data([UInt8], sequence: UInt32, timestampNs: Int64, acknowledgement: UInt32)
        case missing(count: Int, sequence: UInt32, timestampNs: Int64, cutBySnaplen: Bool)
    }

    let id: Int
    var deferredResponses: [DeferredChunk] = []
    var deferredBytes = 0
    let client: Endpoint
    let server: Endpoint
    var toServer = StreamReassembler()
    var toClient = StreamReassembler()
    var requests = RESPStreamDecoder(role: .requests)
    var responses = RESPStreamDecoder(role: .responses)
    /// Requests sent and not yet answered, oldest first (a ring: `head` is the oldest).
    private var queue: [Pending] = []
    private var head = 0
    /// Set when pairing stopped (desynchronised stream, SUBSCRIBE ...): the reason.
    var pairingStopped: UnpairedReason?
    var sawSyn = false
    /// The client's initial sequence number, when its SYN was seen.
    var clientISN: UInt32?
    /// Alignment of requests and responses. When netprobe cannot be sure which reply answers which
    /// request (the capture joined the connection mid-stream, or bytes were lost), it waits for a
    /// point where it can: requests restart at a segment that begins a command, and replies at the
    /// position the client's acknowledgement number names for the first request after the loss.
    var requestsNeedBoundary = false
    var responsesNeedAlignment = false
    /// The next request completed is the first after a loss: it must be aligned.
    var alignNextRequest = false
    /// The acknowledgement number of the request segment being decoded, and of the last request.
    var currentRequestAck: UInt32 = 0
    var lastRequestAck: UInt32?
    /// Seen with more than one request outstanding: after a loss, replies cannot be placed by
    /// acknowledgement numbers, so pairing on this connection resumes only after a SYN.
    var pipelined = false
    /// Bytes were lost on this connection (from then on, an old request may wait for a reply
    /// that will never be seen, so pending requests no longer prove pipelining).
    var lossSeen = false

    /// After the reply stream lost bytes: on a connection that waits for each reply, every
    /// pending request's reply starts at its acknowledgement number, so each may be aligned on.
    func markPendingForAlignment() {
        var previous: UInt32?
        for i in head..<queue.count {
            queue[i].align = queue[i].clientAck != previous
            previous = queue[i].clientAck
        }
    }
    /// The current response cannot answer the oldest pending request (it started before the
    /// server had that request): it answers one that was never seen.
    var responseRejected = false
    var finFromClient = false
    var finFromServer = false
    var closedAtNs: Int64?
    var lastSeenNs: Int64

    init(id: Int, client: Endpoint, server: Endpoint, now: Int64) {
        self.id = id
        self.client = client
        self.server = server
        lastSeenNs = now
        queue.reserveCapacity(16)
    }

    var pendingCount: Int { queue.count - head }

    func enqueue(_ p: Pending) {
        if head > 64 && head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        queue.append(p)
    }

    /// The oldest unanswered request.
    var front: Pending? { head < queue.count ? queue[head] : nil }

    /// Marks the oldest unanswered request as receiving the response that starts at `sequence`
    /// now. The response is rejected (it answers a request never seen) when it starts before the
    /// position an aligned request names, or when the server's acknowledgement number proves it
    /// had not yet received the request. Returns the requests dropped because their reply was
    /// missed.
    func responseStarted(at ns: Int64, sequence: UInt32, acknowledgement: UInt32?) -> Int {
        responseRejected = false
        var dropped = 0
        while head < queue.count && queue[head].align {
            let d = seqDistance(sequence, queue[head].clientAck)
            if d < 0 {
                responseRejected = true
                return dropped
            }
            if d == 0 {
                queue[head].align = false
                break
            }
            _ = dequeue() // its reply started where no message began: it was missed
            dropped += 1
        }
        guard head < queue.count else { return dropped }
        if let ack = acknowledgement, seqDistance(ack, queue[head].endSequence) < 0 {
            responseRejected = true
            return dropped
        }
        if queue[head].responseFirstByteNs == nil { queue[head].responseFirstByteNs = ns }
        return dropped
    }

    func dequeue() -> Pending? {
        guard head < queue.count else { return nil }
        let p = queue[head]
        head += 1
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        }
        return p
    }

    /// Drops every pending request; returns how many there were.
    func dropPending() -> Int {
        let n = pendingCount
        queue.removeAll(keepingCapacity: false)
        head = 0
        return n
    }
}
