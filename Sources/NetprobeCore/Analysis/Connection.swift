/// One Redis connection at one vantage point: two reassembled streams, two RESP decoders and the
/// queue of requests waiting for their responses.
final class Connection {
    struct Pending {
        var command: String
        var sequence: UInt32
        var firstByteNs: Int64
        var lastByteNs: Int64
        var responseFirstByteNs: Int64?
    }

    let id: Int
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

    /// Marks the oldest unanswered request as receiving its response's first byte now.
    func responseStarted(at ns: Int64) -> Bool {
        guard head < queue.count else { return false }
        if queue[head].responseFirstByteNs == nil { queue[head].responseFirstByteNs = ns }
        return true
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
