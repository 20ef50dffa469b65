import NetprobeModel
import NetprobeTrace
import NetprobeAttribution
/// One segment's share of the time.
public struct SegmentSummary: Codable, Sendable, Equatable {
    public var name: String
    public var p50Us: Double?
    public var p99Us: Double?
    public var meanUs: Double?
    /// Share of the end-to-end time of the typical request (the middle half, p25-p75).
    public var share: Double?
    /// Share of the end-to-end time of the slowest 1 %.
    public var tailShare: Double?
    public var resolved: Bool
    /// What the segment contains here, or why it could not be measured.
    public var note: String
}

public struct VerdictPart: Codable, Sendable, Equatable {
    /// The segment with the largest share, among the resolved ones.
    public var bottleneck: String?
    public var share: Double?
    /// End-to-end time of this group (mean, us) and how many requests it holds.
    public var endToEndMeanUs: Double?
    public var requests: Int
}

/// The answer to the seed's claim.
public struct Verdict: Codable, Sendable, Equatable {
    public var question: String
    /// true, false, or null (inconclusive: the data cannot say).
    public var networkIsBottleneck: Bool?
    public var answer: String
    public var median: VerdictPart
    public var tail: VerdictPart
    public var evidence: [String]

    enum CodingKeys: String, CodingKey { case question, networkIsBottleneck, answer, median, tail, evidence }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(question, forKey: .question)
        try c.encode(networkIsBottleneck, forKey: .networkIsBottleneck)
        try c.encode(answer, forKey: .answer)
        try c.encode(median, forKey: .median)
        try c.encode(tail, forKey: .tail)
        try c.encode(evidence, forKey: .evidence)
    }
}

/// A vantage point on the attribution path. In JSON one string, `virbr0 (bridge)`.
public struct PathEntry: Codable, Sendable, Equatable, CustomStringConvertible {
    public var interface: String
    public var role: String

    public init(interface: String, role: String) {
        self.interface = interface
        self.role = role
    }

    public var description: String { "\(interface) (\(role))" }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        // Saved reports: NAME (ROLE). An interface name has no spaces (IFNAMSIZ, no blanks).
        if text.hasSuffix(")"), let open = text.lastIndex(of: "("), open > text.startIndex,
           text[text.index(before: open)] == " " {
            interface = String(text[..<text.index(before: open)])
            role = String(text[text.index(after: open)...].dropLast())
        } else {
            interface = text
            role = VantageRole.other.rawValue
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// How the attribution was made: the path, what was joined, what was missing.
public struct AttributionDetails: Codable, Sendable, Equatable {
    /// Vantage points from the client side inwards, with their roles.
    public var path: [PathEntry]
    public var requestsJoined: Int
    /// Requests seen at the innermost vantage point only / at the outermost only.
    public var innerOnly: Int
    public var outerOnly: Int
    /// Requests whose hop came out negative (clocks or stamps out of order): left out.
    public var negativeHops: Int
    public var endToEndDefinition: String
    public var notes: [String]
}

