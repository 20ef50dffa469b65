import NetprobeModel
import NetprobeTrace

/// Which TCP ports were analysed as Redis and why (`RedisPortChoice` in words). Absent from a
/// report when the default port 6379 was analysed and no other port looked like Redis.
public struct RedisPortsSummary: Codable, Sendable, Equatable {
    public var ports: [UInt16]
    /// "named" (--port), "recorded" (by the netprobe capture), "default" (6379), "detected" (by
    /// the content of the connections).
    public var chosenBy: String
    /// Why, one sentence per port.
    public var reasons: [String]
    /// Other ports whose connections look like Redis but were not analysed, and how to include them.
    public var notes: [String]

    /// nil when there is nothing to say (the default port, nothing else like Redis). `recorded`:
    /// the address the capture recorded; `readOnce`: the trace could not be read a second time
    /// (standard input), so detected ports were not analysed.
    init?(_ choice: RedisPortChoice, recorded: HostPort?, readOnce: Bool) {
        ports = choice.ports
        chosenBy = choice.source.rawValue
        reasons = []
        notes = []
        switch choice.source {
        case .named:
            reasons = choice.ports.map { "port \($0): named with --port (no detection by content)" }
        case .recorded:
            // The default port, recorded: nothing new to say unless another port looks like Redis.
            guard recorded?.port != HostPort.redisPort || !choice.evidence.isEmpty else { return nil }
            let at = recorded.map { " at \($0)" } ?? ""
            reasons = choice.ports.map { "port \($0): the capture recorded Redis\(at)" }
        case .defaultPort:
            guard !choice.evidence.isEmpty else { return nil }
            reasons = choice.ports.map { "port \($0): the default Redis port" }
        case .detected:
            reasons = choice.ports.map { port in
                "port \(port): " + Self.evidenceText(choice.evidence[port] ?? PortEvidence())
                    + "; port \(HostPort.redisPort) carried no Redis requests (--port names the ports instead)"
            }
        }
        let others = choice.otherRedisLikePorts
        if !others.isEmpty {
            let list = others.map { "\($0)" }.joined(separator: ", ")
            let flags = (choice.ports + others).sorted().map { "--port \($0)" }.joined(separator: " ")
            let evidence = others.map { "port \($0): \(Self.evidenceText(choice.evidence[$0] ?? PortEvidence()))" }
            notes.append(readOnce
                ? "\(others.count == 1 ? "port" : "ports") \(list) \(others.count == 1 ? "looks" : "look") like Redis (\(evidence.joined(separator: "; "))), but a trace from standard input is read once: give \(others.map { "--port \($0)" }.joined(separator: " ")) to analyse it"
                : "\(others.count == 1 ? "port" : "ports") \(list) also \(others.count == 1 ? "looks" : "look") like Redis (\(evidence.joined(separator: "; "))) and \(others.count == 1 ? "was" : "were") not analysed: \(flags) analyses all")
        }
    }

    /// What the connections on a port looked like, in words.
    static func evidenceText(_ e: PortEvidence) -> String {
        let how: String
        switch (e.requestArrays > 0, e.inlineCommands > 0) {
        case (true, true): how = "RESP arrays or inline commands"
        case (false, true): how = "Redis inline commands"
        default: how = "RESP arrays"
        }
        let total = e.respConnections + e.notRESP
        return "client streams begin with \(how) (\(e.respConnections) of \(total) connection\(total == 1 ? "" : "s")) and the server answers in RESP on \(e.answeredInRESP)"
    }
}
