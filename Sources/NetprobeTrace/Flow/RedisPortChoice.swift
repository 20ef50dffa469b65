/// Which TCP ports a trace is analysed on as Redis, and on what grounds. The precedence: ports the
/// user names (`--port`; no detection then) > the port a netprobe capture recorded > the default
/// port 6379 when Redis requests were seen on it > ports detected by content (`PortSniffer`: the
/// connections' first bytes are RESP requests and RESP answers).
public struct RedisPortChoice: Sendable, Equatable {
    public enum Source: String, Sendable {
        /// Named by the user (`--port`).
        case named
        /// Recorded by the netprobe capture that made the trace.
        case recorded
        /// The default port, on which Redis requests were seen (or nothing better was found).
        case defaultPort = "default"
        /// Found by the content of the connections on it.
        case detected
    }

    /// The ports analysed as Redis, in increasing order.
    public var ports: [UInt16]
    public var source: Source
    /// For each port that looks like Redis by content, the evidence (detected ports, and ports
    /// that look like Redis but were not taken because one above them in the precedence was).
    public var evidence: [UInt16: PortEvidence]

    public init(ports: [UInt16], source: Source, evidence: [UInt16: PortEvidence] = [:]) {
        self.ports = ports.sorted()
        self.source = source
        self.evidence = evidence
    }

    /// Ports that look like Redis by content but are not among `ports`.
    public var otherRedisLikePorts: [UInt16] {
        evidence.keys.filter { !ports.contains($0) }.sorted()
    }

    /// The choice once the trace was analysed on `analysed` (the default port, or the ports the
    /// user named or the capture recorded, per `source`): `sawRequests`, whether any Redis request
    /// was seen there; `evidence`, how connections on the other ports began
    /// (`TraceAnalysis.portEvidence`). Only the default port gives way to detected ones (all of
    /// them: a cluster listens on several).
    public static func after(analysing analysed: Set<UInt16>, source: Source, sawRequests: Bool,
                             evidence: [UInt16: PortEvidence]) -> RedisPortChoice {
        let redisLike = evidence.filter { $0.value.looksLikeRedis && !analysed.contains($0.key) }
        if source == .defaultPort && !sawRequests && !redisLike.isEmpty {
            return RedisPortChoice(ports: Array(redisLike.keys), source: .detected, evidence: redisLike)
        }
        return RedisPortChoice(ports: Array(analysed), source: source, evidence: redisLike)
    }
}
