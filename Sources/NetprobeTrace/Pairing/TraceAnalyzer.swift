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
    /// Requests that by the protocol get no reply (CLIENT REPLY OFF or SKIP): neither paired nor
    /// unpaired.
    public var requestsWithoutReply = 0
    /// Pushes and published messages the server sent (RESP3 `>` frames, RESP2 pub/sub messages):
    /// not replies.
    public var pushes = 0
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
    /// How the connections on the ports not analysed as Redis began, per port (`PortSniffer`):
    /// where else Redis may listen.
    public var portEvidence: [UInt16: PortEvidence] = [:]
}

/// Pairs every Redis request with its response at every vantage point of a trace.
///
/// One pass, streaming: memory holds the open connections and their unanswered requests, never
/// the packets. Each vantage point is analysed on its own (its own connections and clocks); the
/// cross-vantage work happens later, on the `RequestTiming`s this emits.
///
/// Three parts, as in Wireshark: `RESPDissector` turns packets into each connection's RESP
/// events; each connection's `RequestPairer` pairs them (the rules); each vantage point's
/// `VantageTap` counts. This class reads the packets and connects the three.
public final class TraceAnalyzer {
    /// Most distinct commands tracked per vantage point; the rest are counted as "(other)".
    public static let maximumCommands = VantageTap.maximumCommands

    private let options: AnalysisOptions
    private let dissector: RESPDissector
    private var taps = TapTable()
    private var vantageOfInterface: [Int?] = []
    /// Where paired requests go (`analyze`'s `onRequest`), in a box called through a guaranteed
    /// reference (valid: `sink` is replaced only when `analyze` starts): a closure stored in a
    /// `var` was retained and released per request.
    private final class Sink {
        let body: (RequestTiming) -> Void
        init(_ body: @escaping (RequestTiming) -> Void) { self.body = body }
    }
    private var sink = Sink { _ in }

    public init(options: AnalysisOptions = AnalysisOptions()) {
        self.options = options
        dissector = RESPDissector(options: options)
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
                guard let v = vantageOfInterface[packet.interface] else { continue }
                taps[v].packet(originalLength: packet.originalLength, timestampNs: packet.timestampNs)
                dissector.dissect(packet, linkType: linkTypes[packet.interface], vantage: v, into: self)
            }
        } catch let e as TraceError {
            error = e
        } catch {
            fatalError("PacketSource threw a non-TraceError: \(error)")
        }
        dissector.finishAll(reason: .traceEnded, into: self)
        while perInterface.count < source.interfaces.count { perInterface.append(0) }
        return TraceAnalysis(interfaces: source.interfaces, vantages: (0..<taps.count).map { taps[$0].folded() }, packets: packets,
                             packetsPerInterface: perInterface, warnings: source.warnings, error: error,
                             peakHeldBytes: dissector.budget.peak, portEvidence: dissector.portEvidence)
    }

    /// The vantage index for an interface, creating it on first sight (grouped by name: the same
    /// name in two pcapng sections is one vantage point).
    private func vantage(for interface: Int, interfaces: [TraceInterface]) -> Int? {
        if interface < vantageOfInterface.count, let known = vantageOfInterface[interface] { return known }
        while vantageOfInterface.count <= interface { vantageOfInterface.append(nil) }
        let name = interfaces[interface].name
        if let wanted = options.vantages, !wanted.contains(name) { return nil }
        let index: Int
        if let existing = taps.firstIndex(named: name) {
            index = existing
            taps[index].addInterface(interface)
        } else {
            index = taps.count
            taps.append(VantageTap(name: name, interface: interface))
        }
        vantageOfInterface[interface] = index
        return index
    }
}

/// The dissector's events go to the connection's pairer, and what the pairer decides to the
/// vantage point's tap.
extension TraceAnalyzer: DissectorOutput {
    func decodeFailed(_ outcome: DecodeOutcome, vantage v: Int) { taps[v].decodeFailed(outcome) }

    func otherTCPSegment(port: UInt16, vantage v: Int) { taps[v].otherTCPSegment(port: port) }

    func connectionOpened(vantage v: Int) -> Int { taps[v].connectionOpened() }

    @inline(__always)
    func request(_ span: MessageSpan, command name: String?, commandKey: UInt64, shape: RequestShape, acknowledgement: UInt32,
                 on c: Connection, vantage v: Int) {
        let (command, rule) = taps[v].request(command: name, key: commandKey, firstByteNs: span.firstByteNs)
        let r = RequestPairer.Request(command: command, sequence: span.sequence, endSequence: span.endSequence,
                                      firstByteNs: span.firstByteNs, lastByteNs: span.lastByteNs, acknowledgement: acknowledgement)
        if rule != .ordinary && rule.isPubSub && !c.readsPubSub {
            // Its confirmations, and in RESP2 the messages that follow, are arrays to be told apart.
            c.readsPubSub = true
            c.responses.readsPubSubArrays = true
        }
        switch c.pairer.request(r, rule: rule, shape: shape) {
        case .awaitsReply: break
        case .noReply: taps[v].noReply()
        case let .unpaired(u): taps[v].unpaired(u)
        }
    }

    @inline(__always)
    func responseStarted(at ns: Int64, sequence: UInt32, acknowledgement: UInt32?, on c: Connection, vantage v: Int) {
        taps[v].unpaired(c.pairer.responseStarted(at: ns, sequence: sequence, acknowledgement: acknowledgement))
    }

    @inline(__always)
    func response(_ span: MessageSpan, isError: Bool, isPush: Bool, pubSub: PubSubFrame, on c: Connection, vantage v: Int) {
        switch c.pairer.response(firstByteNs: span.firstByteNs, lastByteNs: span.lastByteNs, isError: isError, isPush: isPush,
                                 pubSub: pubSub) {
        case let .paired(p):
            let timing = RequestTiming(
                vantage: v, connection: c.id, client: c.client, server: c.server, command: taps[v].commandNames[p.request.command],
                requestSequence: p.request.sequence, requestFirstByteNs: p.request.firstByteNs,
                requestLastByteNs: p.request.lastByteNs, responseFirstByteNs: p.responseFirstByteNs,
                responseLastByteNs: p.responseLastByteNs, isError: p.isError,
                requestOffset: c.clientISN.map { p.request.sequence &- $0 &- 1 })
            taps[v].paired(p)
            Unmanaged.passUnretained(sink)._withUnsafeGuaranteedRef { $0.body(timing) }
        case .unexpected:
            taps[v].unexpectedResponse()
        case .push:
            taps[v].push()
        case .confirmation, .ignored:
            break
        }
    }

    func requestsResumed(on c: Connection, vantage v: Int) { c.pairer.requestsResumed() }

    func streamLost(_ direction: StreamDirection, failure: RESPStreamDecoder.Failure?, on c: Connection, vantage v: Int) {
        taps[v].streamLost(client: c.client, server: c.server, direction: direction, failure: failure)
        switch direction {
        case .requests: c.pairer.requestsLost()
        case .responses: taps[v].unpaired(c.pairer.responsesLost())
        }
    }

    func alignResponses(on c: Connection, at sequence: UInt32, length: Int, vantage v: Int) -> Int? {
        let (offset, unpaired) = c.pairer.alignResponses(at: sequence, length: length)
        taps[v].unpaired(unpaired)
        return offset
    }

    func connectionEnded(_ c: Connection, reason: UnpairedReason, vantage v: Int) {
        taps[v].connectionEnded(toServer: c.toServer.counters, toClient: c.toClient.counters,
                                joinedMidStream: c.toServer.joinedMidStream && !c.sawSyn)
        taps[v].unpaired(c.pairer.end(reason))
    }
}
