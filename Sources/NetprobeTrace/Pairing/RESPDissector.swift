import NetprobeModel

/// What the dissector finds, handed on as it is found. `TraceAnalyzer` implements it: it feeds
/// each connection's `RequestPairer` and the vantage point's `VantageTap`.
///
/// Per connection, the calls come in stream order: a request is reported before any reply that
/// could answer it (replies wait while the request stream waits behind a hole).
protocol DissectorOutput: AnyObject {
    /// A packet that did not decode to TCP (or to a fragment netprobe reads).
    func decodeFailed(_ outcome: DecodeOutcome, vantage: Int)
    /// A TCP segment on no server port; `port`: the lower of its two.
    func otherTCPSegment(port: UInt16, vantage: Int)
    /// A connection seen for the first time; returns its number at the vantage point.
    func connectionOpened(vantage: Int) -> Int
    /// A complete request: where it lies, its command (`RESPMessage.command`, `.commandKey`, `.shape`),
    /// and `acknowledgement`, that of the latest request segment with data.
    func request(_ span: MessageSpan, command: String?, commandKey: UInt64, shape: RequestShape, acknowledgement: UInt32,
                 on c: Connection, vantage: Int)
    /// A reply begins (`acknowledgement`: the server's, unless the reply begins in missed bytes).
    func responseStarted(at ns: Int64, sequence: UInt32, acknowledgement: UInt32?, on c: Connection, vantage: Int)
    /// A complete reply (`pubSub`: `RESPMessage.pubSub`).
    func response(_ span: MessageSpan, isError: Bool, isPush: Bool, pubSub: PubSubFrame, on c: Connection, vantage: Int)
    /// Requests are decoded again, from a segment that begins a command.
    func requestsResumed(on c: Connection, vantage: Int)
    /// A stream stopped decoding (bytes lost, or not RESP); `failure` says where and why.
    func streamLost(_ direction: StreamDirection, failure: RESPStreamDecoder.Failure?, on c: Connection, vantage: Int)
    /// The reply stream must resume where a reply is known to begin: given a piece of it that
    /// starts at `sequence` and holds `length` bytes, the offset in it to resume at, or nil to
    /// skip the piece.
    func alignResponses(on c: Connection, at sequence: UInt32, length: Int, vantage: Int) -> Int?
    /// The connection ended (FIN both ways, RST, a new SYN on its 4-tuple, idle, end of trace):
    /// every byte it held has been handed on.
    func connectionEnded(_ c: Connection, reason: UnpairedReason, vantage: Int)
}

/// The two directions of a connection.
enum StreamDirection: String {
    case requests = "client->server"
    case responses = "server->client"
}

/// Packets in, per-connection RESP events out: link, IP and TCP decoding, the connection table,
/// bounded TCP reassembly, the RESP decoders, and where each stream resumes after a loss. It
/// knows nothing of pairing or statistics: what it finds goes to a `DissectorOutput`.
///
/// Speed: this is the per-packet path, and the tricks live here.
/// - Connections are found in `FlowTable` (open addressing, keyed hash) and used through
///   guaranteed references (`_withUnsafeGuaranteedRef`): each strong copy cost an atomic retain
///   and release per packet. Valid because a connection leaves the table only in `sweep`,
///   `finishAll` or a new SYN, never while one of its packets is handled.
/// - The reassembler's delivery closures capture the dissector, the connection and the output
///   `unowned(unsafe)`: all three outlive the call that runs the closure (the caller holds them).
/// - In-order segments skip the reassembler's closures altogether (`takeInOrder`).
/// - The output is a generic parameter, specialised: its calls are direct.
/// - Decoder events are read as plain bytes (`RESPStreamDecoder.plainEvent`, `MessageSpan`:
///   `BitwiseCopyable`); a request's command name is the one String handed on.
final class RESPDissector {
    /// Replies kept aside per connection while its request stream waits behind a hole.
    static let maximumDeferredBytes = 4 << 20

    struct ConnectionKey: Hashable {
        var vantage: Int
        var client: Endpoint
        var server: Endpoint
    }

    private let decoder = PacketDecoder()
    let budget: ReassemblyBudget
    private let idleTimeoutNs: Int64
    /// Every open connection of every vantage point, in one table.
    private var flows = FlowTable()
    /// Connections that ended, by 4-tuple, with when: `sweep` moves them here from `flows` (a few
    /// bytes instead of the connection) for the rest of their 10 s, so that late segments (a
    /// retransmitted FIN, the last ACKs) are still known as such. Under many short connections
    /// the ended ones outnumber the open ones by far.
    private var ended: [ConnectionKey: Int64] = [:]
    static let endedKeptNs: Int64 = 10_000_000_000
    private var packetsSinceSweep = 0
    /// The usual single server port is compared directly (a Set lookup hashes every time).
    private let onlyServerPort: Int
    private let serverPorts: Set<UInt16>
    /// The first bytes of connections on other ports: where else Redis might be.
    private var sniffer = PortSniffer()

    /// Per port that is not a server port: how its connections began (after `finishAll`).
    var portEvidence: [UInt16: PortEvidence] { sniffer.evidence }

    init(options: AnalysisOptions) {
        budget = ReassemblyBudget(limit: options.reassemblyBudgetBytes)
        idleTimeoutNs = options.idleTimeoutNs
        serverPorts = options.serverPorts
        onlyServerPort = options.serverPorts.count == 1 ? Int(options.serverPorts.first!) : -1
    }

    private func isServerPort(_ port: UInt16) -> Bool {
        if onlyServerPort >= 0 { return Int(port) == onlyServerPort }
        return serverPorts.contains(port)
    }

    /// Dissects one packet of vantage point `v`.
    func dissect<Out: DissectorOutput>(_ packet: PacketRecord, linkType: LinkType, vantage v: Int, into out: Out) {
        segment(packet, linkType: linkType, vantage: v, out: out)
        packetsSinceSweep += 1
        if packetsSinceSweep >= 65_536 {
            packetsSinceSweep = 0
            sweep(now: packet.timestampNs, out: out)
        }
    }

    private func segment<Out: DissectorOutput>(_ packet: PacketRecord, linkType: LinkType, vantage v: Int, out: Out) {
        let ts = packet.timestampNs
        let segment: TCPSegment
        switch decoder.decode(packet.data, linkType: linkType) {
        case let .success(s): segment = s
        case let .failure(f):
            out.decodeFailed(f.outcome, vantage: v)
            return
        }
        let key: ConnectionKey
        if isServerPort(segment.destination.port) {
            key = ConnectionKey(vantage: v, client: segment.source, server: segment.destination)
        } else if isServerPort(segment.source.port) {
            key = ConnectionKey(vantage: v, client: segment.destination, server: segment.source)
        } else {
            out.otherTCPSegment(port: min(segment.source.port, segment.destination.port), vantage: v)
            sniffer.segment(segment, vantage: v)
            return
        }
        let fromClient = segment.source == key.client
        let flags = segment.flags
        if !flags.contains(.syn), let known = flows.unretained(key) {
            // The usual packet: an open connection's next segment.
            known._withUnsafeGuaranteedRef { c in
                c.lastSeenNs = ts
                if c.closedAtNs == nil {
                    segmentArrived(segment, connection: c, fromClient: fromClient, vantage: v, timestampNs: ts, out: out)
                }
            }
            return
        }
        var connection = flows[key]
        if connection == nil, ended[key] != nil {
            // A new SYN on the 4-tuple of an ended connection starts a new one; anything else is
            // a late segment of the ended one.
            guard flags.contains(.syn), !flags.contains(.ack), fromClient else { return }
            ended[key] = nil
        }
        // A new SYN on a closed (or reused) 4-tuple starts a new connection.
        if let c = connection, flags.contains(.syn), !flags.contains(.ack), fromClient,
           c.closedAtNs != nil || c.toServer.nextSequence.map({ seqDistance(segment.sequence &+ 1, $0) != 0 }) ?? false {
            finish(c, vantage: v, reason: .connectionClosed, out: out)
            flows[key] = nil
            connection = nil
        }
        if let c = connection, c.closedAtNs != nil {
            c.lastSeenNs = ts
            return // late segments of a finished connection (retransmitted FIN, ACKs)
        }
        let c: Connection
        if let existing = connection {
            c = existing
        } else {
            if !flags.contains(.syn) && segment.payloadLength == 0 && flags.contains(.rst) { return }
            // Without its SYN, neither direction is known to be at a message boundary.
            c = Connection(id: out.connectionOpened(vantage: v), client: key.client, server: key.server, now: ts,
                           joinedMidStream: !flags.contains(.syn))
            flows[key] = c
        }
        c.lastSeenNs = ts
        if flags.contains(.syn) {
            c.sawSyn = true
            if fromClient { c.clientISN = segment.sequence }
        }
        segmentArrived(segment, connection: c, fromClient: fromClient, vantage: v, timestampNs: ts, out: out)
    }

    /// A segment of an open connection: reassembly, RESP; FIN and RST.
    @inline(__always)
    private func segmentArrived<Out: DissectorOutput>(_ segment: TCPSegment, connection c: Connection, fromClient: Bool,
                                                      vantage v: Int, timestampNs ts: Int64, out: Out) {
        let flags = segment.flags
        let syn = flags.contains(.syn)
        if fromClient {
            if c.toServer.takeInOrder(sequence: segment.sequence, syn: syn, captured: segment.payload.count,
                                      wireLength: segment.payloadLength) {
                requestChunk(.data(segment.payload, sequence: segment.sequence, timestampNs: ts,
                                   acknowledgement: segment.acknowledgement), connection: c, vantage: v, out: out)
            } else {
                c.toServer.accept(sequence: segment.sequence, acknowledgement: segment.acknowledgement,
                                  syn: syn, payload: segment.payload,
                                  wireLength: segment.payloadLength, timestampNs: ts, budget: budget) { [unowned(unsafe) self, unowned(unsafe) c, unowned(unsafe) out] chunk in
                    self.requestChunk(chunk, connection: c, vantage: v, out: out)
                }
            }
            replayDeferredResponses(c, vantage: v, out: out)
        } else {
            if c.toClient.takeInOrder(sequence: segment.sequence, syn: syn, captured: segment.payload.count,
                                      wireLength: segment.payloadLength) {
                responseOrDefer(.data(segment.payload, sequence: segment.sequence, timestampNs: ts,
                                      acknowledgement: segment.acknowledgement), connection: c, vantage: v, out: out)
            } else {
                c.toClient.accept(sequence: segment.sequence, acknowledgement: segment.acknowledgement,
                                  syn: syn, payload: segment.payload,
                                  wireLength: segment.payloadLength, timestampNs: ts, budget: budget) { [unowned(unsafe) self, unowned(unsafe) c, unowned(unsafe) out] chunk in
                    self.responseOrDefer(chunk, connection: c, vantage: v, out: out)
                }
            }
            if c.deferredBytes > Self.maximumDeferredBytes {
                // The request stream has waited too long behind its hole: give the hole up.
                c.toServer.finish(budget: budget) { self.requestChunk($0, connection: c, vantage: v, out: out) }
                replayDeferredResponses(c, vantage: v, out: out)
            }
        }

        if flags.contains(.rst) {
            finish(c, vantage: v, reason: .connectionClosed, out: out)
            c.closedAtNs = ts
        } else if flags.contains(.fin) {
            if fromClient { c.finFromClient = true } else { c.finFromServer = true }
            if c.finFromClient && c.finFromServer {
                finish(c, vantage: v, reason: .connectionClosed, out: out)
                c.closedAtNs = ts
            }
        }
    }

    @inline(__always)
    private func requestChunk<Out: DissectorOutput>(_ chunk: StreamChunk, connection c: Connection, vantage v: Int, out: Out) {
        if case let .data(bytes, _, _, ack) = chunk {
            if c.requestsNeedBoundary {
                // Wait for a segment that starts a command: a RESP array or an inline command
                // (never again once the client was seen to speak another protocol).
                guard !c.requestsNotRESP, let first = bytes.first,
                      first == UInt8(ascii: "*") || (first | 0x20 >= UInt8(ascii: "a") && first | 0x20 <= UInt8(ascii: "z"))
                else { return }
                c.requestsNeedBoundary = false
                c.requests = RESPStreamDecoder(role: .requests)
                out.requestsResumed(on: c, vantage: v)
            }
            c.currentRequestAck = ack
        } else if c.requestsNeedBoundary {
            return
        }
        let ok = c.requests.feed(chunk)
        // By index: a for-in loop retained the array for its duration.
        var k = 0
        while k < c.requests.eventCount {
            if case let .message(span, _, _, _) = c.requests.plainEvent(k) {
                let (command, key, shape) = c.requests.command(ofEvent: k)
                out.request(span, command: command, commandKey: key, shape: shape,
                            acknowledgement: c.currentRequestAck, on: c, vantage: v)
            }
            k += 1
        }
        c.requests.clearEvents()
        if !ok {
            // Requests restart at the next command boundary; those already complete stay valid.
            // A client that speaks another protocol (HTTP to the Redis port) is not read again,
            // nor are its server's replies, which answer no Redis command.
            out.streamLost(.requests, failure: c.requests.failure, on: c, vantage: v)
            c.requestsNeedBoundary = true
            if c.requests.failure?.isNotRESP == true {
                c.requestsNotRESP = true
                c.responsesNeedAlignment = true
            }
        }
    }

    /// Replies are decoded in step with the requests they answer. While the request stream waits
    /// behind a hole, the requests it holds (or lost) are not known yet, so replies wait too:
    /// otherwise a reply to a request in the hole would be taken for the reply of a held one.
    @inline(__always)
    private func responseOrDefer<Out: DissectorOutput>(_ chunk: StreamChunk, connection c: Connection, vantage v: Int, out: Out) {
        guard c.toServer.heldByteCount > 0 || !c.deferredResponses.isEmpty else {
            responseChunk(chunk, connection: c, vantage: v, out: out)
            return
        }
        switch chunk {
        case let .data(bytes, sequence, ts, ack):
            c.deferredResponses.append(.data(Array(bytes), sequence: sequence, timestampNs: ts, acknowledgement: ack))
            c.deferredBytes += bytes.count
        case let .missing(count, sequence, ts, cut):
            c.deferredResponses.append(.missing(count: count, sequence: sequence, timestampNs: ts, cutBySnaplen: cut))
        }
    }

    /// Decodes the replies kept aside, once the request stream has no hole left.
    private func replayDeferredResponses<Out: DissectorOutput>(_ c: Connection, vantage v: Int, out: Out) {
        guard !c.deferredResponses.isEmpty, c.toServer.heldByteCount == 0 else { return }
        let chunks = c.deferredResponses
        c.deferredResponses.removeAll()
        c.deferredBytes = 0
        for chunk in chunks {
            switch chunk {
            case let .data(bytes, sequence, ts, ack):
                bytes.withUnsafeBytes { raw in
                    responseChunk(.data(raw, sequence: sequence, timestampNs: ts, acknowledgement: ack), connection: c, vantage: v, out: out)
                }
            case let .missing(count, sequence, ts, cut):
                responseChunk(.missing(count: count, sequence: sequence, timestampNs: ts, cutBySnaplen: cut), connection: c, vantage: v, out: out)
            }
        }
    }

    @inline(__always)
    private func responseChunk<Out: DissectorOutput>(_ chunk: StreamChunk, connection c: Connection, vantage v: Int, out: Out) {
        var chunk = chunk
        var ack: UInt32?
        if case let .data(bytes, sequence, ts, acknowledgement) = chunk {
            ack = acknowledgement
            if c.responsesNeedAlignment {
                // Restart where the output says a reply begins.
                guard !c.requestsNotRESP,
                      let offset = out.alignResponses(on: c, at: sequence, length: bytes.count, vantage: v) else { return }
                let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
                c.responsesNeedAlignment = false
                c.responses = RESPStreamDecoder(role: .responses)
                c.responses.readsPubSubArrays = c.readsPubSub
                chunk = .data(rest, sequence: sequence &+ UInt32(truncatingIfNeeded: offset), timestampNs: ts,
                              acknowledgement: acknowledgement)
            }
        } else if c.responsesNeedAlignment {
            return
        }
        let ok = c.responses.feed(chunk)
        var k = 0
        while k < c.responses.eventCount {
            switch c.responses.plainEvent(k) {
            case let .started(ts, sequence):
                out.responseStarted(at: ts, sequence: sequence, acknowledgement: ack, on: c, vantage: v)
            case let .message(span, isError, isPush, pubSub):
                out.response(span, isError: isError, isPush: isPush, pubSub: pubSub, on: c, vantage: v)
            }
            k += 1
        }
        c.responses.clearEvents()
        if !ok {
            out.streamLost(.responses, failure: c.responses.failure, on: c, vantage: v)
            c.responsesNeedAlignment = true
        }
    }

    /// Ends a connection: hands on what its streams held, then tells the output.
    private func finish<Out: DissectorOutput>(_ c: Connection, vantage v: Int, reason: UnpairedReason, out: Out) {
        guard c.closedAtNs == nil else { return }
        c.toServer.finish(budget: budget) { self.requestChunk($0, connection: c, vantage: v, out: out) }
        replayDeferredResponses(c, vantage: v, out: out)
        c.toClient.finish(budget: budget) { self.responseChunk($0, connection: c, vantage: v, out: out) }
        out.connectionEnded(c, reason: reason, vantage: v)
        c.closedAtNs = c.lastSeenNs
        c.dropStreams()
    }

    /// Forgets connections closed a while ago and ends idle ones.
    private func sweep<Out: DissectorOutput>(now: Int64, out: Out) {
        ended = ended.filter { now - $0.value <= Self.endedKeptNs }
        for (key, c) in flows.entries {
            if let closed = c.closedAtNs {
                flows[key] = nil
                if now - closed <= Self.endedKeptNs { ended[key] = closed }
            } else if now - c.lastSeenNs > idleTimeoutNs {
                finish(c, vantage: key.vantage, reason: .idleTimeout, out: out)
                flows[key] = nil
            }
        }
    }

    /// Ends every connection (the trace ended): in order of first sight per vantage point, so
    /// that the result does not depend on hashing.
    func finishAll<Out: DissectorOutput>(reason: UnpairedReason, into out: Out) {
        for (key, c) in flows.entries.sorted(by: { ($0.key.vantage, $0.connection.id) < ($1.key.vantage, $1.connection.id) }) {
            finish(c, vantage: key.vantage, reason: reason, out: out)
        }
        flows.removeAll()
        ended.removeAll()
        sniffer.finish()
    }
}
