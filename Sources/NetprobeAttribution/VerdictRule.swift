import NetprobeModel
import NetprobeTrace
/// Stage 6: the answer to the seed's claim, "the bottleneck is the virtual network", as enums and
/// numbers. The report module puts it into words.
public struct VerdictOutcome: Sendable, Equatable {
    public enum Answer: Sendable, Equatable {
        /// No request could be placed on the path.
        case noRequests
        /// One vantage point: nothing between the client side and the server can be resolved.
        case oneVantagePoint
        /// No segment could be resolved.
        case nothingResolved
        /// The typical request's largest share is (or is not) a virtual-network segment.
        case decided(networkIsBottleneck: Bool)
    }

    public struct Top: Sendable, Equatable {
        public var segment: SegmentName
        public var share: Double
    }

    public var answer: Answer
    /// The resolved segment with the largest share of the typical request / of the slowest 1 %.
    public var typicalTop: Top?
    public var tailTop: Top?
    /// The virtual network's (bridge, and tap where resolved) share of the typical request.
    public var networkShare: Double

    /// true, false, or nil when inconclusive.
    public var networkIsBottleneck: Bool? {
        if case let .decided(yes) = answer { return yes }
        return nil
    }
}

enum VerdictRule {
    /// The largest resolved share; on a tie the segment nearest the client.
    static func top(_ shares: [SegmentName: Double], _ resolution: SegmentResolution) -> VerdictOutcome.Top? {
        var best: VerdictOutcome.Top?
        for s in SegmentName.allCases where resolution.isResolved(s) {
            guard let share = shares[s] else { continue }
            if best == nil || share > best!.share { best = .init(segment: s, share: share) }
        }
        return best
    }

    static func decide(typical: GroupShares, tail: GroupShares, resolution: SegmentResolution) -> VerdictOutcome {
        let typicalTop = top(typical.shares, resolution)
        let networkShare = SegmentName.allCases
            .filter { $0.isVirtualNetwork && ($0 != .tap || resolution.tapQueue) }
            .reduce(0) { $0 + (typical.shares[$1] ?? 0) }
        let answer: VerdictOutcome.Answer
        if resolution.requests == 0 {
            answer = .noRequests
        } else if !resolution.twoSides {
            answer = .oneVantagePoint
        } else if let typicalTop {
            answer = .decided(networkIsBottleneck: typicalTop.segment.isVirtualNetwork)
        } else {
            answer = .nothingResolved
        }
        return VerdictOutcome(answer: answer, typicalTop: typicalTop, tailTop: top(tail.shares, resolution),
                              networkShare: networkShare)
    }
}
