import NetprobeModel

/// One Redis connection at one vantage point, as the dissector keeps it: two reassembled
/// streams, two RESP decoders and where each may resume after a loss; and the connection's
/// `RequestPairer`, which only `TraceAnalyzer` reads and changes.
final class Connection {
    /// A response chunk kept aside while the request stream waits behind a hole (see
    /// `RESPDissector`): a copy, since the packet's bytes do not outlive the packet.
    enum DeferredChunk {
        case data([UInt8], sequence: UInt32, timestampNs: Int64, acknowledgement: UInt32)
        case missing(count: Int, sequence: UInt32, timestampNs: Int64, cutBySnaplen: Bool)
    }

    /// The connection's number at its vantage point (in order of first sight).
    let id: Int
    let client: Endpoint
    let server: Endpoint
    var toServer = StreamReassembler()
    var toClient = StreamReassembler()
    var requests = RESPStreamDecoder(role: .requests)
    var responses = RESPStreamDecoder(role: .responses)
    var deferredResponses: [DeferredChunk] = []
    var deferredBytes = 0
    var sawSyn = false
    /// The client's initial sequence number, when its SYN was seen.
    var clientISN: UInt32?
    /// Where decoding resumes when the capture joined mid-stream or a stream lost bytes: requests
    /// at a segment that begins a command; replies where the pairer says the reply to an aligned
    /// request begins (`DissectorOutput.alignResponses`).
    var requestsNeedBoundary = false
    var responsesNeedAlignment = false
    /// The client sent something that is not RESP (`RESPStreamDecoder.Failure.isNotRESP`): the
    /// connection is not read any further.
    var requestsNotRESP = false
    /// The client sent a pub/sub command: replies are read for pub/sub frames
    /// (`RESPStreamDecoder.readsPubSubArrays`), also by a reply decoder made anew after a loss.
    var readsPubSub = false
    /// The acknowledgement number of the latest request segment with data: the one a request
    /// completed now was sent with.
    var currentRequestAck: UInt32 = 0
    var finFromClient = false
    var finFromServer = false
    var closedAtNs: Int64?
    var lastSeenNs: Int64
    /// The pairing state (`TraceAnalyzer`'s, not the dissector's).
    var pairer: RequestPairer

    /// After the connection ended only its number, endpoints and times are read again (late
    /// segments, a new SYN on its 4-tuple): its streams' state goes, shared with every other
    /// ended connection. A closed connection stays in the table until the dissector's next sweep
    /// (then only its 4-tuple is kept, `RESPDissector.ended`); with its decoders, buffers and
    /// pairer it held over a kilobyte (several under pipelining).
    func dropStreams() {
        toServer = StreamReassembler()
        toClient = StreamReassembler()
        requests = Self.ended.requests
        responses = Self.ended.responses
        deferredResponses = []
        pairer = Self.ended.pairer
    }

    /// The state an ended connection shares: made once, never changed (only copied).
    private nonisolated(unsafe) static let ended = (requests: RESPStreamDecoder(role: .requests),
                                                    responses: RESPStreamDecoder(role: .responses),
                                                    pairer: RequestPairer())

    init(id: Int, client: Endpoint, server: Endpoint, now: Int64, joinedMidStream: Bool) {
        self.id = id
        self.client = client
        self.server = server
        lastSeenNs = now
        requestsNeedBoundary = joinedMidStream
        responsesNeedAlignment = joinedMidStream
        pairer = RequestPairer(joinedMidStream: joinedMidStream)
    }
}
