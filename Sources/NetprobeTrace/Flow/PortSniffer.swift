/// What the connections on one TCP port looked like when they began (`PortSniffer`): the
/// evidence for or against Redis listening there.
public struct PortEvidence: Sendable, Equatable {
    /// Connections whose client began with a RESP array of bulk strings, or (when the capture saw
    /// the connection open, so that the client is known to have spoken first) an inline command.
    public var requestArrays = 0
    public var inlineCommands = 0
    /// Of those, the ones whose server answered with a RESP value.
    public var answeredInRESP = 0
    /// Connections that are not RESP: the client's first bytes are something else, the server
    /// spoke first (SMTP, POP3, FTP greet), or its answer is no RESP value.
    public var notRESP = 0

    public init() {}

    /// Connections whose client spoke RESP.
    public var respConnections: Int { requestArrays + inlineCommands }

    /// Redis listens on the port: clients speak RESP on most of its connections, and a server
    /// answered in RESP at least once.
    public var looksLikeRedis: Bool { respConnections > notRESP && answeredInRESP > 0 }

    static func += (a: inout PortEvidence, b: PortEvidence) {
        a.requestArrays += b.requestArrays
        a.inlineCommands += b.inlineCommands
        a.answeredInRESP += b.answeredInRESP
        a.notRESP += b.notRESP
    }
}

/// Looks at the first bytes of each connection on the ports that are not analysed as Redis, to
/// find Redis where nobody said it was (`RedisPortChoice`). It sees only the segments the
/// dissector does not decode, so a trace of Redis traffic on the expected port costs it nothing;
/// each other connection is looked at until both sides have sent their first payload.
struct PortSniffer {
    /// Connections looked at, at most: enough evidence, and flat memory on a busy interface.
    static let maximumConnections = 1 << 16

    private struct Key: Hashable {
        var vantage: Int
        var low: Endpoint
        var high: Endpoint
    }

    /// One direction's first payload.
    private enum First {
        case request(RESPFirstBytes.Request)
        case reply(Bool?)
    }

    private struct Flow {
        /// The server, when the capture saw the SYN (its destination).
        var server: Endpoint?
        /// The first payload from `low` and from `high`, with the order they came in.
        var fromLow: [UInt8]?
        var fromHigh: [UInt8]?
        var lowSpokeFirst: Bool?
        var decided = false
    }

    private var flows: [Key: Flow] = [:]
    private(set) var evidence: [UInt16: PortEvidence] = [:]

    /// A TCP segment on ports that are not analysed.
    mutating func segment(_ s: TCPSegment, vantage: Int) {
        let sourceIsLow = s.source < s.destination
        let key = Key(vantage: vantage, low: sourceIsLow ? s.source : s.destination, high: sourceIsLow ? s.destination : s.source)
        var flow: Flow
        if let known = flows[key] {
            if known.decided { return }
            flow = known
        } else {
            guard flows.count < Self.maximumConnections else { return }
            flow = Flow()
        }
        if s.flags.contains(.syn) {
            flow.server = s.flags.contains(.ack) ? s.source : s.destination
        }
        if !s.payload.isEmpty {
            // A copy: the packet does not outlive the call.
            let copy = Array(s.payload.prefix(RESPFirstBytes.maximumLineLength))
            if sourceIsLow, flow.fromLow == nil {
                flow.fromLow = copy
                if flow.lowSpokeFirst == nil { flow.lowSpokeFirst = true }
            } else if !sourceIsLow, flow.fromHigh == nil {
                flow.fromHigh = copy
                if flow.lowSpokeFirst == nil { flow.lowSpokeFirst = false }
            }
        }
        if flow.fromLow != nil && flow.fromHigh != nil {
            judge(flow, key: key)
            flow.decided = true
            flow.fromLow = nil
            flow.fromHigh = nil
        }
        flows[key] = flow
    }

    /// Judges the connections that sent only one way (the trace ended).
    mutating func finish() {
        for (key, flow) in flows where !flow.decided && (flow.fromLow != nil || flow.fromHigh != nil) {
            judge(flow, key: key)
        }
        flows = [:]
    }

    /// Adds a connection's evidence to its server port's.
    private mutating func judge(_ flow: Flow, key: Key) {
        let low = flow.fromLow.map { $0.withUnsafeBytes(RESPFirstBytes.request) }
        let high = flow.fromHigh.map { $0.withUnsafeBytes(RESPFirstBytes.request) }
        // Which side is the server: the SYN says; else the side the other sent a request array to
        // (when only one side did), else the lower port (services listen below the ephemeral range).
        let serverIsHigh: Bool
        if let server = flow.server {
            serverIsHigh = server == key.high
        } else if (low == .array) != (high == .array) {
            serverIsHigh = low == .array
        } else {
            serverIsHigh = key.high.port < key.low.port
        }
        let server = serverIsHigh ? key.high : key.low
        let request = serverIsHigh ? low : high
        let reply = (serverIsHigh ? flow.fromHigh : flow.fromLow).map { $0.withUnsafeBytes(RESPFirstBytes.reply) }
        let clientSpokeFirst = flow.lowSpokeFirst.map { $0 == serverIsHigh }
        var e = PortEvidence()
        if flow.server != nil && clientSpokeFirst == false {
            e.notRESP = 1 // a server that greets first is not Redis
        } else if reply == .some(false) {
            e.notRESP = 1
        } else {
            switch request {
            case .array?:
                e.requestArrays = 1
            case .inline? where flow.server != nil:
                e.inlineCommands = 1 // only when the client is known to have begun the connection
            case .notRESP?:
                e.notRESP = 1
            case .inline?, .unknown?, nil:
                return // nothing to go by
            }
            if e.notRESP == 0, reply == .some(true) { e.answeredInRESP = 1 }
        }
        evidence[server.port, default: PortEvidence()] += e
    }
}
