/// One Redis connection at one vantage point: two reassembled streams, two RESP decoders and the
/// queue of requests waiting for their responses.
final class Connection {
    struct Pending {
        var command: String
        var sequence: UInt32
        var endSequence: UInt32
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
    /// Alignment of requests and responses. When netprobe cannot be sure which reply answers which
    /// request (the capture joined the connection mid-stream, or bytes were lost), it waits for a
    /// point where it can: requests restart at a segment that begins a command, and responses at a
    /// segment whose acknowledgement shows the server had received that request.
    var requestsNeedBoundary = false
    var responsesNeedAlignment = false
    /// Requests that start before this sequence number are not paired (their replies may be lost).
    var pairFromSequence: UInt32?
    /// Where in the response stream the reply to the request at `pairFromSequence` starts: the
    /// acknowledgement number the client sent with that request (all it had received of the
    /// replies by then). nil until that request is seen.
    var alignResponsesAt: UInt32?
    /// The acknowledgement number of the segment carrying the current response's first byte.
    var responseStartAck: UInt32?
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

    /// Marks the oldest unanswered request as receiving its response's first byte now, unless the
    /// acknowledgement number proves the server had not yet received that request.
    func responseStarted(at ns: Int64, acknowledgement: UInt32?) {
        responseRejected = false
        guard head < queue.count else { return }
        if let ack = acknowledgement, seqDistance(ack, queue[head].endSequence) < 0 {
            responseRejected = true
            return
        }
        if queue[head].responseFirstByteNs == nil { queue[head].responseFirstByteNs = ns }
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
