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
    /// The virtual network's (bridge, and tap and backend where resolved) share of the typical request.
    public var networkShare: Double
    /// What a bypass of the virtual network could save at most; nil without two vantage points.
    public var bypassBound: BypassBound?

    /// true, false, or nil when inconclusive.
    public var networkIsBottleneck: Bool? {
        if case let .decided(yes) = answer { return yes }
        return nil
    }
}

/// The most a bypass of bridge, tap and backend (macvtap, vhost-net, SR-IOV) could save: the
/// resolved virtual-network segments' mean time in each group, against the group's mean
/// end-to-end time. An upper bound: a bypass has costs of its own.
public struct BypassBound: Sendable, Equatable {
    public struct Group: Sendable, Equatable {
        public var savedNs: Double
        public var endToEndNs: Double
        public var share: Double
    }
    /// The segments counted (the virtual network's resolved ones), and those a bypass would also
    /// remove that the trace could not measure: with any of them, the bound is not an upper one.
    public var segments: [SegmentName]
    public var unmeasured: [SegmentName]
    public var typical: Group?
    public var tail: Group?
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
        let network = SegmentName.allCases.filter { $0.isVirtualNetwork && resolution.isResolved($0) }
        let networkShare = network.reduce(0) { $0 + (typical.shares[$1] ?? 0) }
        func bound(_ g: GroupShares) -> BypassBound.Group? {
            guard let e2e = g.endToEndMeanNs else { return nil }
            let share = network.reduce(0) { $0 + (g.shares[$1] ?? 0) }
            return .init(savedNs: share * e2e, endToEndNs: e2e, share: share)
        }
        let bypass = resolution.twoSides && resolution.requests > 0
            ? BypassBound(segments: network,
                          // An unresolved tap's queueing is inside the bridge hop: measured, not split.
                          unmeasured: resolution.isResolved(.vnicBackend) ? [] : [.vnicBackend],
                          typical: bound(typical), tail: bound(tail)) : nil
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
                              networkShare: networkShare, bypassBound: bypass)
    }
}
