import NetprobeModel

/// One vantage point's statistics (Wireshark's "tap"): packets, what did not decode, connections,
/// requests per command, latencies, the pairer's verdicts on the requests it gave up on. It sees
/// what the dissector and the pairers report and decides nothing about them.
struct VantageTap {
    /// Most distinct commands tracked per vantage point; the rest are counted as "(other)".
    static let maximumCommands = 64
    static let maximumDesyncExamples = 5

    private(set) var a: VantageAnalysis
    /// Per command (by number, in order of first sight): requests and latencies. Folded into
    /// `a.requestsByCommand` / `a.latencyByCommand` at the end (a String-keyed dictionary per
    /// request cost three hashes).
    private var commandIds: [String: Int] = [:]
    private(set) var commandNames: [String] = []
    private var commandCounts: [Int] = []
    private var commandLatency: [LatencyRecorder] = []
    /// Per command: `ReplyRule.of(name)`, decided once.
    private var commandRules: [ReplyRule] = []
    /// A direct-mapped cache from `RESPMessage.commandKey` to the command's number, checked
    /// against the name (equal small strings compare in one step; a miss goes to `commandIds`).
    private var cacheKeys = [UInt64](repeating: 0, count: 64)
    private var cacheIds = [Int](repeating: -1, count: 64)

    init(name: String, interface: Int) {
        a = VantageAnalysis(name: name, interfaces: [interface])
    }

    mutating func addInterface(_ interface: Int) { a.interfaces.append(interface) }

    // MARK: Packets

    @inline(__always)
    mutating func packet(originalLength: Int, timestampNs ts: Int64) {
        a.packets += 1
        a.bytes += Int64(originalLength)
        if ts == 0 { a.packetsWithoutTimestamp += 1 }
        if a.firstPacketNs == nil { a.firstPacketNs = ts }
        a.lastPacketNs = max(a.lastPacketNs ?? ts, ts)
    }

    mutating func decodeFailed(_ outcome: DecodeOutcome) {
        a.decodeOutcomes[outcome, default: 0] += 1
    }

    mutating func otherTCPSegment(port: UInt16) {
        a.otherTCPSegments += 1
        if a.otherTCPPorts.count < 1024 || a.otherTCPPorts[port] != nil {
            a.otherTCPPorts[port, default: 0] += 1
        }
    }

    // MARK: Connections

    /// A new connection: its number.
    mutating func connectionOpened() -> Int {
        defer { a.connections += 1 }
        return a.connections
    }

    mutating func connectionEnded(toServer: ReassemblyCounters, toClient: ReassemblyCounters, joinedMidStream: Bool) {
        a.reassembly += toServer
        a.reassembly += toClient
        if joinedMidStream { a.connectionsJoinedMidStream += 1 }
    }

    mutating func streamLost(client: Endpoint, server: Endpoint, direction: StreamDirection, failure: RESPStreamDecoder.Failure?) {
        a.desynchronisedStreams += 1
        if a.desyncExamples.count < Self.maximumDesyncExamples, let failure {
            a.desyncExamples.append("\(client) -> \(server) \(direction.rawValue) \(failure)")
        }
    }

    // MARK: Requests and replies

    /// A complete request (its command's name, `RESPMessage.commandKey` and first byte's time):
    /// counted, and its command's number returned, with the command's reply rule.
    @inline(__always)
    mutating func request(command name: String?, key: UInt64, firstByteNs: Int64) -> (command: Int, rule: ReplyRule) {
        let id: Int
        if let name { id = commandId(name, key: key) } else { id = commandId("?") }
        a.requests += 1
        commandCounts[id] += 1
        if a.firstRequestNs == nil { a.firstRequestNs = firstByteNs }
        a.lastRequestNs = max(a.lastRequestNs ?? firstByteNs, firstByteNs)
        return (id, commandRules[id])
    }

    /// Requests the pairer gave up on.
    @inline(__always)
    mutating func unpaired(_ u: RequestPairer.Unpaired?) {
        if let u { a.unpaired[u.reason, default: 0] += u.count }
    }

    mutating func unexpectedResponse() { a.unexpectedResponses += 1 }

    /// A request that by the protocol gets no reply.
    mutating func noReply() { a.requestsWithoutReply += 1 }

    /// A push or a published message (not a reply).
    mutating func push() { a.pushes += 1 }

    /// A request paired with its reply: its latency.
    @inline(__always)
    mutating func paired(_ p: RequestPairer.Pair) {
        if p.isError { a.errorReplies += 1 }
        let latency = p.responseFirstByteNs - p.request.lastByteNs
        if latency < 0 {
            a.negativeLatencies += 1
        } else {
            commandLatency[p.request.command].record(latency)
        }
    }

    /// The command's number; past `maximumCommands` distinct names, that of "(other)".
    private mutating func commandId(_ name: String, key: UInt64) -> Int {
        let slot = Int(truncatingIfNeeded: key & 63)
        let cached = cacheIds[slot]
        if cached >= 0 && cacheKeys[slot] == key && commandNames[cached] == name { return cached }
        let id = commandId(name)
        cacheKeys[slot] = key
        cacheIds[slot] = id
        return id
    }

    private mutating func commandId(_ name: String) -> Int {
        if let known = commandIds[name] { return known }
        if commandNames.count < Self.maximumCommands || name == "(other)" {
            let id = commandNames.count
            commandIds[name] = id
            commandNames.append(name)
            commandCounts.append(0)
            commandLatency.append(LatencyRecorder())
            commandRules.append(ReplyRule.of(name))
            return id
        }
        return commandId("(other)")
    }

    /// What the vantage point saw, its commands' figures folded in.
    func folded() -> VantageAnalysis {
        var a = self.a
        // The vantage point's latency is the sum of its commands' (histograms add exactly): one
        // record per request instead of two.
        a.latency = LatencyRecorder()
        for (id, name) in commandNames.enumerated() {
            if commandCounts[id] > 0 { a.requestsByCommand[name] = commandCounts[id] }
            if commandLatency[id].count > 0 { a.latencyByCommand[name] = commandLatency[id] }
            a.latency.add(commandLatency[id])
        }
        return a
    }
}

/// The vantage points' taps in one block of memory, changed where they lie: `taps[v].x(...)`
/// mutates tap `v` in place. (A class per vantage point cost an atomic retain and release per
/// packet when read from an array; a struct in an array was copied whole, dictionaries and
/// histograms included, on every change.)
///
/// Invariant: no pointer into the block outlives one access, since `append` may move the block;
/// taps are appended only between packets (when a new interface appears). `~Copyable`: the
/// block has one owner, which frees it.
struct TapTable: ~Copyable {
    private var base: UnsafeMutablePointer<VantageTap>
    private var capacity: Int
    private(set) var count = 0

    init() {
        capacity = 4
        base = .allocate(capacity: capacity)
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    subscript(v: Int) -> VantageTap {
        @inline(__always) unsafeAddress {
            precondition(v >= 0 && v < count)
            return UnsafePointer(base + v)
        }
        @inline(__always) nonmutating unsafeMutableAddress {
            precondition(v >= 0 && v < count)
            return base + v
        }
    }

    mutating func append(_ tap: VantageTap) {
        if count == capacity {
            let bigger = UnsafeMutablePointer<VantageTap>.allocate(capacity: capacity * 2)
            bigger.moveInitialize(from: base, count: count)
            base.deallocate()
            base = bigger
            capacity *= 2
        }
        (base + count).initialize(to: tap)
        count += 1
    }

    /// The index of the tap named `name`, if any.
    func firstIndex(named name: String) -> Int? {
        (0..<count).first { base[$0].a.name == name }
    }
}
