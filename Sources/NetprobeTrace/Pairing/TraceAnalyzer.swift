import NetprobeModel
/// Options for `TraceAnalyzer`.
public struct AnalysisOptions: Sendable {
    /// TCP ports on which a Redis server listens. Flows on other ports are counted, not decoded.
    public var serverPorts: Set<UInt16> = [6379]
    /// Analyse only these vantage points (interface names); nil = all.
    public var vantages: Set<String>?
    /// A connection silent this long (capture time) is dropped and its pending requests counted.
    public var idleTimeoutNs: Int64 = 300_000_000_000
    /// Bytes held out of order, across every stream.
    public var reassemblyBudgetBytes = 64 << 20

    public init() {}
}

/// What one vantage point saw.
public struct VantageAnalysis: Sendable {
    public var name: String
    public var interfaces: [Int]
    public var packets = 0
    public var bytes: Int64 = 0
    public var firstPacketNs: Int64?
    public var lastPacketNs: Int64?
    public var packetsWithoutTimestamp = 0
    /// Packets that were not decoded to TCP, by reason.
    public var decodeOutcomes: [DecodeOutcome: Int] = [:]
    /// TCP segments on ports other than the server ports, and the busiest such ports.
    public var otherTCPSegments = 0
    public var otherTCPPorts: [UInt16: Int] = [:]
    public var connections = 0
    public var connectionsJoinedMidStream = 0
    public var reassembly = ReassemblyCounters()
    public var requests = 0
    public var requestsByCommand: [String: Int] = [:]
    public var latency = LatencyRecorder()
    public var latencyByCommand: [String: LatencyRecorder] = [:]
    public var unpaired: [UnpairedReason: Int] = [:]
    public var unexpectedResponses = 0
    public var errorReplies = 0
    public var negativeLatencies = 0
    /// Streams that stopped decoding, with the first few reasons.
    public var desynchronisedStreams = 0
    public var desyncExamples: [String] = []
    public var firstRequestNs: Int64?
    public var lastRequestNs: Int64?

    public var unpairedTotal: Int { unpaired.values.reduce(0, +) }

    /// Requests per second between the first and the last request seen here.
    public var requestsPerSecond: Double? {
        guard let a = firstRequestNs, let b = lastRequestNs, b > a, requests > 1 else { return nil }
        return Double(requests - 1) / (Double(b - a) / 1e9)
    }
}

/// The result of analysing a trace.
public struct TraceAnalysis: Sendable {
    public var interfaces: [TraceInterface]
    public var vantages: [VantageAnalysis]
    public var packets = 0
    /// Packets read per interface (index as in `interfaces`), whether or not analysed.
    public var packetsPerInterface: [Int] = []
    public var warnings: [TraceWarning]
    /// The error that stopped reading, if any: everything before it was analysed.
    public var error: TraceError?
    public var peakHeldBytes = 0
}

/// Pairs every Redis request with its response at every vantage point of a trace.
///
/// One pass, streaming: memory holds the open connections and their unanswered requests, never
/// the packets. Each vantage point is analysed on its own (its own connections and clocks); the
/// cross-vantage work happens later, on the `RequestTiming`s this emits.
public final class TraceAnalyzer {
    /// Most distinct commands tracked per vantage point; the rest are counted as "(other)".
    public static let maximumCommands = 64
    static let maximumDesyncExamples = 5
    /// Replies kept aside per connection while its request stream waits behind a hole.
    static let maximumDeferredBytes = 4 << 20

    private let options: AnalysisOptions
    private let decoder = PacketDecoder()
    private let budget: ReassemblyBudget
    /// Per vantage point, in a box: the per-packet path updates fields in place (reading a field
    /// of a struct inside an array copied the whole struct, dictionaries and histograms included).
    private final class VantageBox {
        var a: VantageAnalysis
        /// Per command (by number, in order of first sight): requests and latencies. Folded into
        /// `a.requestsByCommand` / `a.latencyByCommand` at the end (a String-keyed dictionary
        /// per request cost three hashes).
        var commandIds: [String: Int] = [:]
        var commandNames: [String] = []
        var commandCounts: [Int] = []
        var commandLatency: [LatencyRecorder] = []
        /// Per command: after it, replies no longer answer requests one to one.
        var commandStopsPairing: [Bool] = []
        /// A direct-mapped cache from `RESPMessage.commandKey` to the command's number, checked
        /// against the name (equal small strings compare in one step; a miss goes to `commandIds`).
        var cacheKeys = [UInt64](repeating: 0, count: 64)
        var cacheIds = [Int](repeating: -1, count: 64)
        init(_ a: VantageAnalysis) { self.a = a }

        /// The command's number; past `maximumCommands` distinct names, that of "(other)".
        func commandId(_ name: String, key: UInt64) -> Int {
            let slot = Int(truncatingIfNeeded: key & 63)
            let cached = cacheIds[slot]
            if cached >= 0 && cacheKeys[slot] == key && commandNames[cached] == name { return cached }
            let id = commandId(name)
            cacheKeys[slot] = key
            cacheIds[slot] = id
            return id
        }

        func commandId(_ name: String) -> Int {
            if let known = commandIds[name] { return known }
            if commandNames.count < TraceAnalyzer.maximumCommands || name == "(other)" {
                let id = commandNames.count
                commandIds[name] = id
                commandNames.append(name)
                commandCounts.append(0)
                commandLatency.append(LatencyRecorder())
                switch name {
                case "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR", "CLIENT REPLY", "SYNC", "PSYNC":
                    commandStopsPairing.append(true)
                default:
                    commandStopsPairing.append(false)
                }
                return id
            }
            return commandId("(other)")
        }

        func fold() {
            // The vantage point's latency is the sum of its commands' (histograms add exactly):
            // one record per request instead of two.
            a.latency = LatencyRecorder()
            for (id, name) in commandNames.enumerated() {
                if commandCounts[id] > 0 { a.requestsByCommand[name] = commandCounts[id] }
                if commandLatency[id].count > 0 { a.latencyByCommand[name] = commandLatency[id] }
                a.latency.add(commandLatency[id])
            }
        }
    }
    private var vs: [VantageBox] = []
    private var vantageOfInterface: [Int?] = []
    /// Every open connection of every vantage point, in one table (a dictionary per vantage point
    /// in an array was read through a copy of the inner dictionary on every packet).
    private var flows = FlowTable()
    /// Where paired requests go (`analyze`'s `onRequest`), in a box that is called through a
    /// guaranteed reference: a closure stored in a `var` was retained and released per request.
    private final class Sink {
        let body: (RequestTiming) -> Void
        init(_ body: @escaping (RequestTiming) -> Void) { self.body = body }
    }
    private var sink = Sink { _ in }
    private var packetsSinceSweep = 0

    struct ConnectionKey: Equatable {
        var vantage: Int
        var client: Endpoint
        var server: Endpoint
    }

    public init(options: AnalysisOptions = AnalysisOptions()) {
        self.options = options
        budget = ReassemblyBudget(limit: options.reassemblyBudgetBytes)
        serverPorts = options.serverPorts
        onlyServerPort = options.serverPorts.count == 1 ? Int(options.serverPorts.first!) : -1
    }

    /// Reads `source` to its end (or first unreadable damage) and returns what each vantage point
    /// saw. `onRequest` receives every paired request as it completes.
    public func analyze(_ source: some PacketSource, onRequest: @escaping (RequestTiming) -> Void = { _ in }) -> TraceAnalysis {
        sink = Sink(onRequest)
        var packets = 0
        var perInterface: [Int] = []
        var error: TraceError?
        do {
            var linkTypes: [LinkType] = []
            while let packet = try source.next() {
                packets += 1
                if packet.interface >= linkTypes.count {
                    // A new interface: fetch the list (asking for it per packet cost a copy each time).
                    let interfaces = source.interfaces
                    linkTypes = interfaces.map(\.linkType)
                    while perInterface.count < interfaces.count { perInterface.append(0) }
                    for i in interfaces.indices { _ = vantage(for: i, interfaces: interfaces) }
                    guard packet.interface < linkTypes.count else { continue } // the reader guarantees it
                }
                perInterface[packet.interface] += 1
                process(packet, linkType: linkTypes[packet.interface])
            }
        } catch let e as TraceError {
            error = e
        } catch {
            fatalError("PacketSource threw a non-TraceError: \(error)")
        }
        finishAll(reason: .traceEnded)
        while perInterface.count < source.interfaces.count { perInterface.append(0) }
        return TraceAnalysis(interfaces: source.interfaces, vantages: vs.map { $0.fold(); return $0.a }, packets: packets,
                             packetsPerInterface: perInterface, warnings: source.warnings, error: error,
                             peakHeldBytes: budget.peak)
    }

    /// The vantage index for an interface, creating it on first sight (grouped by name: the same
    /// name in two pcapng sections is one vantage point).
    private func vantage(for interface: Int, interfaces: [TraceInterface]) -> Int? {
        if interface < vantageOfInterface.count, let known = vantageOfInterface[interface] { return known }
        while vantageOfInterface.count <= interface { vantageOfInterface.append(nil) }
        let name = interfaces[interface].name
        if let wanted = options.vantages, !wanted.contains(name) { return nil }
        let index: Int
        if let existing = vs.firstIndex(where: { $0.a.name == name }) {
            index = existing
            vs[index].a.interfaces.append(interface)
        } else {
            index = vs.count
            vs.append(VantageBox(VantageAnalysis(name: name, interfaces: [interface])))
        }
        vantageOfInterface[interface] = index
        return index
    }

    /// The usual single server port is compared directly (a Set lookup hashes every time).
    private let onlyServerPort: Int
    private let serverPorts: Set<UInt16>
    private func isServerPort(_ port: UInt16) -> Bool {
        if onlyServerPort >= 0 { return Int(port) == onlyServerPort }
        return serverPorts.contains(port)
    }

    private func process(_ packet: PacketRecord, linkType: LinkType) {
        guard let v = vantageOfInterface[packet.interface] else { return }
        // The box and the connection are used through guaranteed references: each strong copy
        // cost an atomic retain and release per packet, a third of the analysis's time.
        vs.withUnsafeBufferPointer { Unmanaged.passUnretained($0[v]) }._withUnsafeGuaranteedRef { box in
            process(packet, linkType: linkType, vantage: v, box: box)
        }
        packetsSinceSweep += 1
        if packetsSinceSweep >= 65_536 {
            packetsSinceSweep = 0
            sweep(now: packet.timestampNs)
        }
    }

    private func process(_ packet: PacketRecord, linkType: LinkType, vantage v: Int, box: VantageBox) {
        let ts = packet.timestampNs
        box.a.packets += 1
        box.a.bytes += Int64(packet.originalLength)
        if ts == 0 { box.a.packetsWithoutTimestamp += 1 }
        if box.a.firstPacketNs == nil { box.a.firstPacketNs = ts }
        box.a.lastPacketNs = max(box.a.lastPacketNs ?? ts, ts)

        let segment: TCPSegment
        switch decoder.decode(packet.data, linkType: linkType) {
        case let .success(s): segment = s
        case let .failure(f):
            box.a.decodeOutcomes[f.outcome, default: 0] += 1
            return
        }
        let key: ConnectionKey
        if isServerPort(segment.destination.port) {
            key = ConnectionKey(vantage: v, client: segment.source, server: segment.destination)
        } else if isServerPort(segment.source.port) {
            key = ConnectionKey(vantage: v, client: segment.destination, server: segment.source)
        } else {
            box.a.otherTCPSegments += 1
            let port = min(segment.source.port, segment.destination.port)
            if box.a.otherTCPPorts.count < 1024 || box.a.otherTCPPorts[port] != nil {
                box.a.otherTCPPorts[port, default: 0] += 1
            }
            return
        }
        let fromClient = segment.source == key.client
        let flags = segment.flags
        if !flags.contains(.syn), let known = flows.unretained(key) {
            // The usual packet: an open connection's next segment.
            known._withUnsafeGuaranteedRef { c in
                c.lastSeenNs = ts
                if c.closedAtNs == nil {
                    segmentArrived(segment, connection: c, fromClient: fromClient, vantage: v, box: box, timestampNs: ts)
                }
            }
            return
        }
        var connection = flows[key]
        // A new SYN on a closed (or reused) 4-tuple starts a new connection.
        if let c = connection, flags.contains(.syn), !flags.contains(.ack), fromClient,
           c.closedAtNs != nil || c.toServer.nextSequence.map({ seqDistance(segment.sequence &+ 1, $0) != 0 }) ?? false {
            finish(c, vantage: v, reason: .connectionClosed)
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
            c = Connection(id: box.a.connections, client: key.client, server: key.server, now: ts)
            box.a.connections += 1
            flows[key] = c
            if !flags.contains(.syn) {
                // Joined mid-stream: neither direction is known to be at a message boundary.
                c.requestsNeedBoundary = true
                c.responsesNeedAlignment = true
            }
        }
        c.lastSeenNs = ts
        if flags.contains(.syn) {
            c.sawSyn = true
            if fromClient { c.clientISN = segment.sequence }
        }
        segmentArrived(segment, connection: c, fromClient: fromClient, vantage: v, box: box, timestampNs: ts)
    }

    /// A segment of an open connection: reassembly, RESP, pairing; FIN and RST.
    @inline(__always)
    private func segmentArrived(_ segment: TCPSegment, connection c: Connection, fromClient: Bool, vantage v: Int, box: VantageBox,
                                timestampNs ts: Int64) {
        let flags = segment.flags
        // Closures here capture `unowned(unsafe)`: `c` and `self` outlive every call (the caller
        // holds them), and a strong capture cost a retain and a release per packet.
        let syn = flags.contains(.syn)
        if fromClient {
            if c.toServer.takeInOrder(sequence: segment.sequence, syn: syn, captured: segment.payload.count,
                                      wireLength: segment.payloadLength) {
                requestChunk(.data(segment.payload, sequence: segment.sequence, timestampNs: ts,
                                   acknowledgement: segment.acknowledgement), connection: c, vantage: v, box: box)
            } else {
                c.toServer.accept(sequence: segment.sequence, acknowledgement: segment.acknowledgement,
                                  syn: syn, payload: segment.payload,
                                  wireLength: segment.payloadLength, timestampNs: ts, budget: budget) { [unowned(unsafe) self, unowned(unsafe) c, unowned(unsafe) box] chunk in
                    self.requestChunk(chunk, connection: c, vantage: v, box: box)
                }
            }
            replayDeferredResponses(c, vantage: v, box: box)
        } else {
            if c.toClient.takeInOrder(sequence: segment.sequence, syn: syn, captured: segment.payload.count,
                                      wireLength: segment.payloadLength) {
                responseOrDefer(.data(segment.payload, sequence: segment.sequence, timestampNs: ts,
                                      acknowledgement: segment.acknowledgement), connection: c, vantage: v, box: box)
            } else {
                c.toClient.accept(sequence: segment.sequence, acknowledgement: segment.acknowledgement,
                                  syn: syn, payload: segment.payload,
                                  wireLength: segment.payloadLength, timestampNs: ts, budget: budget) { [unowned(unsafe) self, unowned(unsafe) c, unowned(unsafe) box] chunk in
                    self.responseOrDefer(chunk, connection: c, vantage: v, box: box)
                }
            }
            if c.deferredBytes > Self.maximumDeferredBytes {
                // The request stream has waited too long behind its hole: give the hole up.
                c.toServer.finish(budget: budget) { self.requestChunk($0, connection: c, vantage: v, box: box) }
                replayDeferredResponses(c, vantage: v, box: box)
            }
        }

        if flags.contains(.rst) {
            finish(c, vantage: v, reason: .connectionClosed)
            c.closedAtNs = ts
        } else if flags.contains(.fin) {
            if fromClient { c.finFromClient = true } else { c.finFromServer = true }
            if c.finFromClient && c.finFromServer {
                finish(c, vantage: v, reason: .connectionClosed)
                c.closedAtNs = ts
            }
        }
    }

    @inline(__always) private func requestChunk(_ chunk: StreamChunk, connection c: Connection, vantage v: Int, box: VantageBox) {
        if case let .data(bytes, _, _, ack) = chunk {
            if c.requestsNeedBoundary {
                // Wait for a segment that starts a command: a RESP array or an inline command.
                guard let first = bytes.first,
                      first == UInt8(ascii: "*") || (first | 0x20 >= UInt8(ascii: "a") && first | 0x20 <= UInt8(ascii: "z"))
                else { return }
                c.requestsNeedBoundary = false
                c.requests = RESPStreamDecoder(role: .requests)
                c.alignNextRequest = true
            }
            c.currentRequestAck = ack
        } else if c.requestsNeedBoundary {
            return
        }
        let ok = c.requests.feed(chunk)
        // By index: a for-in loop retained the array for its duration.
        var k = 0
        while k < c.requests.eventCount {
            if case let .message(m) = c.requests.event(k) { requestCompleted(m, connection: c, vantage: v, box: box) }
            k += 1
        }
        c.requests.clearEvents()
        if !ok {
            // Requests restart at the next command boundary; those already complete stay valid.
            noteDesync(c, vantage: v, failure: c.requests.failure, direction: "client->server")
            c.lossSeen = true
            c.requestsNeedBoundary = true
        }
    }

    /// Replies are decoded in step with the requests they answer. While the request stream waits
    /// behind a hole, the requests it holds (or lost) are not known yet, so replies wait too:
    /// otherwise a reply to a request in the hole would be taken for the reply of a held one.
    @inline(__always) private func responseOrDefer(_ chunk: StreamChunk, connection c: Connection, vantage v: Int, box: VantageBox) {
        guard c.toServer.heldByteCount > 0 || !c.deferredResponses.isEmpty else {
            responseChunk(chunk, connection: c, vantage: v, box: box)
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
    private func replayDeferredResponses(_ c: Connection, vantage v: Int, box: VantageBox) {
        guard !c.deferredResponses.isEmpty, c.toServer.heldByteCount == 0 else { return }
        let chunks = c.deferredResponses
        c.deferredResponses.removeAll()
        c.deferredBytes = 0
        for chunk in chunks {
            switch chunk {
            case let .data(bytes, sequence, ts, ack):
                bytes.withUnsafeBytes { raw in
                    responseChunk(.data(raw, sequence: sequence, timestampNs: ts, acknowledgement: ack), connection: c, vantage: v, box: box)
                }
            case let .missing(count, sequence, ts, cut):
                responseChunk(.missing(count: count, sequence: sequence, timestampNs: ts, cutBySnaplen: cut), connection: c, vantage: v, box: box)
            }
        }
    }

    @inline(__always) private func responseChunk(_ chunk: StreamChunk, connection c: Connection, vantage v: Int, box: VantageBox) {
        var chunk = chunk
        var ack: UInt32?
        if case let .data(bytes, sequence, ts, acknowledgement) = chunk {
            ack = acknowledgement
            if c.responsesNeedAlignment {
                // Restart where the reply to the first aligned request begins; requests whose
                // reply position is unknown, or already past, cannot be paired.
                var offset: Int64 = -1
                while let f = c.front {
                    let d = seqDistance(f.clientAck, sequence)
                    if f.align && d >= 0 {
                        offset = d
                        break
                    }
                    _ = c.dequeue()
                    box.a.unpaired[.streamDesynchronised, default: 0] += 1
                }
                guard offset >= 0 else {
                    c.alignNextRequest = true
                    return
                }
                guard offset < Int64(bytes.count) else { return } // replies to lost requests
                let rest = UnsafeRawBufferPointer(rebasing: bytes[Int(offset)...])
                c.responsesNeedAlignment = false
                c.responses = RESPStreamDecoder(role: .responses)
                chunk = .data(rest, sequence: sequence &+ UInt32(truncatingIfNeeded: offset), timestampNs: ts,
                              acknowledgement: acknowledgement)
            }
        } else if c.responsesNeedAlignment {
            return
        }
        let ok = c.responses.feed(chunk)
        var k = 0
        while k < c.responses.eventCount {
            defer { k += 1 }
            switch c.responses.event(k) {
            case let .started(ts, sequence):
                guard c.pairingStopped == nil else { continue }
                let missed = c.responseStarted(at: ts, sequence: sequence, acknowledgement: ack)
                if missed > 0 { box.a.unpaired[.streamDesynchronised, default: 0] += missed }
            case let .message(m):
                responseCompleted(m, connection: c, vantage: v, box: box)
            }
        }
        c.responses.clearEvents()
        if !ok {
            noteDesync(c, vantage: v, failure: c.responses.failure, direction: "server->client")
            c.lossSeen = true
            c.responsesNeedAlignment = true
            c.responseRejected = false
            c.markPendingForAlignment()
            if c.pipelined {
                // Replies of a pipelined connection cannot be placed by acknowledgement numbers.
                c.pairingStopped = .streamDesynchronised
                box.a.unpaired[.streamDesynchronised, default: 0] += c.dropPending()
            }
        }
    }

    private func noteDesync(_ c: Connection, vantage v: Int, failure: RESPStreamDecoder.Failure?, direction: String) {
        let box = vs[v]
        box.a.desynchronisedStreams += 1
        if box.a.desyncExamples.count < Self.maximumDesyncExamples, let failure {
            box.a.desyncExamples.append("\(c.client) -> \(c.server) \(direction) \(failure)")
        }
    }

    @inline(__always) private func requestCompleted(_ m: RESPMessage, connection c: Connection, vantage v: Int, box: VantageBox) {
        let commandId = m.command.map { box.commandId($0, key: m.commandKey) } ?? box.commandId("?")
        box.a.requests += 1
        box.commandCounts[commandId] += 1
        if box.a.firstRequestNs == nil { box.a.firstRequestNs = m.firstByteNs }
        box.a.lastRequestNs = max(box.a.lastRequestNs ?? m.firstByteNs, m.firstByteNs)
        if let stopped = c.pairingStopped {
            box.a.unpaired[stopped, default: 0] += 1
            return
        }
        let ack = c.currentRequestAck
        let previousAck = c.lastRequestAck
        c.lastRequestAck = ack
        if c.pendingCount > 0 && !c.lossSeen && !c.responsesNeedAlignment { c.pipelined = true }
        var align = false
        if c.responsesNeedAlignment && !c.alignNextRequest && !c.pipelined {
            // Replies are being realigned: any request that starts a new flight is a candidate.
            align = previousAck != ack
        } else if c.alignNextRequest {
            // The first request after a loss. Its reply starts at its acknowledgement number only
            // if the client waited for every earlier reply: not on pipelined connections, and not
            // when it was sent in the same flight as the request before it.
            if c.pipelined || previousAck == ack {
                box.a.unpaired[.streamDesynchronised, default: 0] += 1
                return
            }
            align = true
            c.alignNextRequest = false
        }
        c.enqueue(Connection.Pending(commandId: commandId, sequence: m.sequence, endSequence: m.endSequence,
                                     clientAck: ack, align: align, firstByteNs: m.firstByteNs, lastByteNs: m.lastByteNs))
        if box.commandStopsPairing[commandId] {
            c.pairingStopped = .replyModeChanged
            box.a.unpaired[.replyModeChanged, default: 0] += c.dropPending()
        }
    }

    @inline(__always) private func responseCompleted(_ m: RESPMessage, connection c: Connection, vantage v: Int, box: VantageBox) {
        if m.isPush || c.pairingStopped != nil { return }
        if c.responseRejected {
            // The server sent this before it had the oldest pending request: it answers a request
            // this vantage point never saw.
            c.responseRejected = false
            box.a.unexpectedResponses += 1
            return
        }
        guard let p = c.dequeue() else {
            box.a.unexpectedResponses += 1
            return
        }
        let timing = RequestTiming(
            vantage: v, connection: c.id, client: c.client, server: c.server, command: box.commandNames[p.commandId],
            requestSequence: p.sequence, requestFirstByteNs: p.firstByteNs, requestLastByteNs: p.lastByteNs,
            responseFirstByteNs: p.responseFirstByteNs ?? m.firstByteNs, responseLastByteNs: m.lastByteNs,
            isError: m.isError,
            requestOffset: c.clientISN.map { p.sequence &- $0 &- 1 })
        if m.isError { box.a.errorReplies += 1 }
        let latency = timing.latencyNs
        if latency < 0 {
            box.a.negativeLatencies += 1
        } else {
            box.commandLatency[p.commandId].record(latency)
        }
        Unmanaged.passUnretained(sink)._withUnsafeGuaranteedRef { $0.body(timing) }
    }

    /// Ends a connection: flushes held bytes, counts what stayed unanswered.
    private func finish(_ c: Connection, vantage v: Int, reason: UnpairedReason) {
        let box = vs[v]
        guard c.closedAtNs == nil else { return }
        c.toServer.finish(budget: budget) { self.requestChunk($0, connection: c, vantage: v, box: box) }
        replayDeferredResponses(c, vantage: v, box: box)
        c.toClient.finish(budget: budget) { self.responseChunk($0, connection: c, vantage: v, box: box) }
        box.a.reassembly += c.toServer.counters
        box.a.reassembly += c.toClient.counters
        if c.toServer.joinedMidStream && !c.sawSyn { box.a.connectionsJoinedMidStream += 1 }
        let left = c.dropPending()
        if left > 0 { box.a.unpaired[reason, default: 0] += left }
        c.closedAtNs = c.lastSeenNs
    }

    /// Forgets connections closed a while ago and drops idle ones.
    private func sweep(now: Int64) {
        for (key, c) in flows.entries {
            if let closed = c.closedAtNs {
                if now - closed > 10_000_000_000 { flows[key] = nil }
            } else if now - c.lastSeenNs > options.idleTimeoutNs {
                finish(c, vantage: key.vantage, reason: .idleTimeout)
                flows[key] = nil
            }
        }
    }

    private func finishAll(reason: UnpairedReason) {
        // In order of first sight per vantage point, so that the result does not depend on hashing.
        for (key, c) in flows.entries.sorted(by: { ($0.key.vantage, $0.connection.id) < ($1.key.vantage, $1.connection.id) }) {
            finish(c, vantage: key.vantage, reason: reason)
        }
        flows.removeAll()
    }
}
