import NetprobeModel
import NetprobeTrace
import NetprobeAttribution
/// netprobe's version, written into reports and traces.
public enum NetprobeVersion {
    public static let string = "0.1.0"
}

/// Latency percentiles in microseconds. Every field is null when no request was paired.
public struct LatencySummary: Codable, Sendable, Equatable {
    public var count: Int
    public var p50: Double?
    public var p90: Double?
    public var p99: Double?
    public var p999: Double?
    public var max: Double?
    public var min: Double?
    public var mean: Double?

    public init(_ r: LatencyRecorder) {
        func us(_ ns: Int64?) -> Double? { ns.map { Double($0) / 1000 } }
        count = r.count
        p50 = us(r.valueNs(atPercentile: 50))
        p90 = us(r.valueNs(atPercentile: 90))
        p99 = us(r.valueNs(atPercentile: 99))
        p999 = us(r.valueNs(atPercentile: 99.9))
        max = us(r.count > 0 ? r.maxNs : nil)
        min = us(r.count > 0 ? r.minNs : nil)
        mean = r.meanNs.map { $0 / 1000 }
    }

    enum CodingKeys: String, CodingKey { case count, p50, p90, p99, p999, max, min, mean }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(count, forKey: .count)
        try c.encode(p50, forKey: .p50) // Optional: encodes null when unknown
        try c.encode(p90, forKey: .p90)
        try c.encode(p99, forKey: .p99)
        try c.encode(p999, forKey: .p999)
        try c.encode(max, forKey: .max)
        try c.encode(min, forKey: .min)
        try c.encode(mean, forKey: .mean)
    }
}

/// One interface of the trace, with the capture's own counters.
public struct VantagePointSummary: Codable, Sendable, Equatable {
    public var name: String
    public var description: String?
    public var linkType: String
    public var snapLength: UInt32
    public var packets: Int
    /// Packets the capture lost (isb_ifdrop + isb_osdrop); null when the trace does not say.
    public var dropped: UInt64?
    public var interfaceDropped: UInt64?
    public var osDropped: UInt64?
    public var received: UInt64?

    enum CodingKeys: String, CodingKey {
        case name, description, linkType, snapLength, packets, dropped, interfaceDropped, osDropped, received
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encodeIfPresent(description, forKey: .description)
        try c.encode(linkType, forKey: .linkType)
        try c.encode(snapLength, forKey: .snapLength)
        try c.encode(packets, forKey: .packets)
        try c.encode(dropped, forKey: .dropped)
        try c.encode(interfaceDropped, forKey: .interfaceDropped)
        try c.encode(osDropped, forKey: .osDropped)
        try c.encode(received, forKey: .received)
    }
}

public struct TraceSummary: Codable, Sendable, Equatable {
    public var file: String
    public var format: String
    public var packets: Int
    public var vantagePoints: [VantagePointSummary]
    /// pcapng section metadata (hardware, os, application).
    public var sections: [[String: String]]
    public var warnings: [String]
    /// The damage that stopped reading; the report covers everything before it.
    public var error: String?
}

public struct RequestCounts: Codable, Sendable, Equatable {
    public var total: Int
    public var byCommand: [String: Int]
    /// Requests per second between the first and last request seen at this vantage point.
    public var perSecond: Double?
}

/// One point of a latency distribution: `fraction` of requests took at most `us`.
public struct CDFPoint: Codable, Sendable, Equatable {
    public var us: Double
    public var fraction: Double
}

public struct CommandLatency: Codable, Sendable, Equatable {
    public var command: String
    public var count: Int
    public var latencyUs: LatencySummary
}

public struct TCPSummary: Codable, Sendable, Equatable {
    public var connections: Int
    public var connectionsJoinedMidStream: Int
    public var retransmittedSegments: Int
    public var outOfOrderSegments: Int
    public var gaps: Int
    public var gapBytes: Int
    public var snaplenCutBytes: Int
    public var desynchronisedStreams: Int
    public var otherTCPSegments: Int
}

/// What one vantage point saw.
public struct VantageReport: Codable, Sendable, Equatable {
    public var name: String
    public var packets: Int
    public var durationSeconds: Double?
    public var requests: RequestCounts
    /// Request's last byte -> response's first byte, at this vantage point.
    public var latencyUs: LatencySummary
    /// The latency distribution (for CDF plots), at fixed fractions.
    public var latencyCDF: [CDFPoint]
    public var byCommand: [CommandLatency]
    public var unpairedRequests: Int
    public var unpairedByReason: [String: Int]
    /// Requests that by the protocol get no reply (CLIENT REPLY OFF or SKIP): neither paired nor
    /// unpaired. Absent when there are none.
    public var requestsWithoutReply: Int?
    /// Pushes and pub/sub messages the server sent (not replies). Absent when there are none.
    public var pushes: Int?
    public var unexpectedResponses: Int
    public var errorReplies: Int
    public var tcp: TCPSummary
    /// Packets that were damaged or cut (by reason).
    public var decodeProblems: [String: Int]
    /// Packets that are not TCP/IP (ARP, UDP, fragments ...), by kind.
    public var otherTraffic: [String: Int]
    /// Plain-language remarks: what could not be measured and why.
    public var notes: [String]
}

/// The report of one trace: the model behind `netprobe report`'s text and JSON.
public struct Report: Codable, Sendable, Equatable {
    public var netprobe: String
    public var latencyDefinition: String
    public var trace: TraceSummary
    public var vantages: [VantageReport]
    /// What a netprobe capture stored beside the packets (nil for traces from other tools).
    public var capture: CaptureContext?
    /// Where the time goes, segment by segment, across the vantage points.
    public var segments: [SegmentSummary] = []
    /// The answer to "is the virtual network the bottleneck?", with its evidence.
    public var verdict: Verdict?
    public var attribution: AttributionDetails?
    /// The load generator's own summary (report --load-json).
    public var loadClient: LoadClientSummary?
    /// Which TCP ports were analysed as Redis and why, unless simply the default port.
    public var redisPorts: RedisPortsSummary?

    public static let latencyDefinitionText =
        "per vantage point: time from the packet carrying a request's last byte to the packet carrying its response's first byte"

    public init(analysis a: TraceAnalysis, file: String, format: String, sections: [[String: String]] = [],
                context: CaptureContext? = nil) {
        capture = context.flatMap { $0.isEmpty ? nil : $0 }
        netprobe = NetprobeVersion.string
        latencyDefinition = Self.latencyDefinitionText
        trace = TraceSummary(
            file: file, format: format, packets: a.packets,
            vantagePoints: a.interfaces.enumerated().map { i, interface in
                VantagePointSummary(
                    name: interface.name, description: interface.description,
                    linkType: interface.linkType.description, snapLength: interface.snapLength,
                    packets: a.packetsPerInterface[i], dropped: interface.dropped,
                    interfaceDropped: interface.interfaceDropped, osDropped: interface.osDropped,
                    received: interface.received)
            },
            sections: sections,
            warnings: a.warnings.map(\.description),
            error: a.error?.description)
        vantages = a.vantages.map { Self.vantageReport($0, interfaces: a.interfaces) }
    }

    static let cdfFractions: [Double] = [0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1]

    static func cdf(_ r: LatencyRecorder) -> [CDFPoint] {
        guard r.count > 0 else { return [] }
        return cdfFractions.map { f in
            let ns = f == 0 ? r.minNs : r.valueNs(atPercentile: f * 100) ?? 0
            return CDFPoint(us: Double(ns) / 1000, fraction: f)
        }
    }

    static func vantageReport(_ v: VantageAnalysis, interfaces: [TraceInterface]) -> VantageReport {
        var problems: [String: Int] = [:]
        var other: [String: Int] = [:]
        for (outcome, n) in v.decodeOutcomes {
            if outcome.isProblem { problems[outcome.rawValue] = n } else { other[outcome.rawValue] = n }
        }
        if v.otherTCPSegments > 0 { other["tcp-other-ports"] = v.otherTCPSegments }
        let byCommand = v.requestsByCommand.keys.sorted {
            (v.requestsByCommand[$0]!, $1) > (v.requestsByCommand[$1]!, $0)
        }.map { name in
            CommandLatency(command: name, count: v.requestsByCommand[name]!,
                           latencyUs: LatencySummary(v.latencyByCommand[name] ?? LatencyRecorder()))
        }
        var notes: [String] = []
        if v.requests == 0 {
            if v.otherTCPSegments > 0 {
                let ports = v.otherTCPPorts.sorted { $0.value > $1.value }.prefix(5).map { "\($0.key)" }
                notes.append("no Redis requests on the server ports; TCP traffic was seen on ports \(ports.joined(separator: ", ")) (use --port to name the Redis port)")
            } else {
                notes.append("no Redis requests were seen at this vantage point")
            }
        }
        if v.packetsWithoutTimestamp > 0 {
            notes.append("\(v.packetsWithoutTimestamp) packets carry no timestamp (pcapng Simple Packet Blocks): latencies that involve them are not meaningful")
        }
        if v.connectionsJoinedMidStream > 0 {
            notes.append("\(v.connectionsJoinedMidStream) connections were already open when the capture started: their first messages may be cut and were decoded from the first complete one")
        }
        if v.negativeLatencies > 0 {
            notes.append("\(v.negativeLatencies) responses were stamped before their request's last byte (timestamps out of order at this vantage point); they are left out of the latency figures")
        }
        for e in v.desyncExamples { notes.append("stream stopped decoding: \(e)") }
        if v.latency.clamped > 0 {
            notes.append("\(v.latency.clamped) latencies exceeded one hour and were recorded as one hour")
        }
        if interfaces.indices.contains(v.interfaces.first ?? -1), interfaces[v.interfaces[0]].dropped == nil {
            notes.append("the trace does not record how many packets the capture dropped here")
        }
        let duration = v.firstPacketNs.flatMap { a in v.lastPacketNs.map { b in Double(b - a) / 1e9 } }
        return VantageReport(
            name: v.name, packets: v.packets, durationSeconds: duration,
            requests: RequestCounts(total: v.requests, byCommand: v.requestsByCommand, perSecond: v.requestsPerSecond),
            latencyUs: LatencySummary(v.latency), latencyCDF: cdf(v.latency), byCommand: byCommand,
            unpairedRequests: v.unpairedTotal,
            unpairedByReason: Dictionary(uniqueKeysWithValues: v.unpaired.map { ($0.key.rawValue, $0.value) }),
            requestsWithoutReply: v.requestsWithoutReply > 0 ? v.requestsWithoutReply : nil,
            pushes: v.pushes > 0 ? v.pushes : nil,
            unexpectedResponses: v.unexpectedResponses, errorReplies: v.errorReplies,
            tcp: TCPSummary(
                connections: v.connections, connectionsJoinedMidStream: v.connectionsJoinedMidStream,
                retransmittedSegments: v.reassembly.retransmittedSegments,
                outOfOrderSegments: v.reassembly.outOfOrderSegments, gaps: v.reassembly.gaps,
                gapBytes: v.reassembly.gapBytes, snaplenCutBytes: v.reassembly.snaplenCutBytes,
                desynchronisedStreams: v.desynchronisedStreams, otherTCPSegments: v.otherTCPSegments),
            decodeProblems: problems, otherTraffic: other, notes: notes)
    }
}
