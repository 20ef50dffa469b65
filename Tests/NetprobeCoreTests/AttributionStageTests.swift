import Foundation
import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

/// Each stage of the attribution on its own (the whole is tested in AttributionTests).
@Suite("attribution stages")
struct AttributionStageTests {
    // MARK: path

    @Test func pathRunsFromTheClientInwardsWhateverTheTraceOrder() {
        let p = AttributionPath(vantages: [("vnet0", .tap), ("np-cli", .client), ("virbr0", .bridge)])
        #expect(p.hops.map(\.interface) == ["np-cli", "virbr0", "vnet0"])
        #expect(p.hops.map(\.vantage) == [1, 2, 0])
        #expect(p.outer?.interface == "np-cli")
        #expect(p.queueDevice?.interface == "vnet0")
        #expect(p.hasTwoSides)
    }

    @Test func equalRanksKeepTheTraceOrderAndOnlyADeviceWithAQueueIsOne() {
        let p = AttributionPath(vantages: [("eth1", .other), ("virbr0", .bridge), ("veth0", .veth)])
        #expect(p.hops.map(\.interface) == ["eth1", "virbr0", "veth0"])
        #expect(p.queueDevice?.interface == "veth0")
        #expect(AttributionPath(vantages: [("eth1", .other), ("virbr0", .bridge)]).queueDevice == nil)
        let one = AttributionPath(vantages: [("lo", .host)])
        #expect(!one.hasTwoSides)
        #expect(one.outer == one.inner)
    }

    // MARK: tap queue

    static func sample(_ t: Int64, backlog: UInt64 = 0, overlimits: UInt64 = 0, drops: UInt64 = 0) -> NetlinkSample {
        NetlinkSample(timeNs: t, interface: "vnet0", link: nil,
                      qdisc: QdiscCounters(kind: "tbf", backlog: backlog, qlen: 0, drops: drops, overlimits: overlimits, requeues: 0))
    }

    @Test func tapQueueShowsBetweenSamplesWithBacklogOverlimitsOrDrops() {
        // Given out of order: the model sorts them.
        let model = TapQueueModel(samples: [
            Self.sample(300, overlimits: 5), Self.sample(100), Self.sample(200), Self.sample(400, overlimits: 5, drops: 1),
            Self.sample(500, overlimits: 5, drops: 1),
        ])
        #expect(model.isResolved)
        var cursor = 0
        // 100 -> 200: calm. 200 -> 300: overlimits grew. 300 -> 400: drops grew. 400 -> 500: calm.
        let expected: [(Int64, Bool)] = [(50, false), (150, false), (250, true), (350, true), (450, false), (900, false)]
        for (t, queued) in expected { #expect(model.queued(at: t, cursor: &cursor) == queued, "at \(t)") }
        // Walking back in time from the cursor gives the same answers.
        for (t, queued) in expected.reversed() { #expect(model.queued(at: t, cursor: &cursor) == queued, "back at \(t)") }
        let backlog = TapQueueModel(samples: [Self.sample(100, backlog: 1500), Self.sample(200)])
        cursor = 0
        #expect(backlog.queued(at: 150, cursor: &cursor))
    }

    @Test func withoutSamplesNothingIsQueued() {
        let model = TapQueueModel(samples: [])
        var cursor = 0
        #expect(!model.isResolved)
        #expect(!model.queued(at: 1, cursor: &cursor))
    }

    // MARK: Redis timeline

    static func path(command: UInt16, innerIn: Int64, innerOut: Int64) -> RequestPath {
        RequestPath(e2e: innerOut - innerIn, requestHop: nil, responseHop: nil, inner: innerOut - innerIn,
                    innerIn: innerIn, innerOut: innerOut, outerIn: innerIn, command: command)
    }

    @Test func theFastestRoundTripIsTakenOverCommandsOfOrdinaryLength() {
        let exec = RedisExecution(usecPerCall: ["GET": 2, "EVAL": 50_000], commandNames: ["GET", "EVAL"])
        var stats = RedisCallStats(commands: exec.commands)
        for inner: Int64 in [100_000, 80_000, 90_000] { stats.record(Self.path(command: 0, innerIn: 0, innerOut: inner), exec) }
        // The EVAL's own round trip (inner - exec) is tiny, but its INFO time is a mean: ignored.
        stats.record(Self.path(command: 1, innerIn: 0, innerOut: 50_000_100), exec)
        #expect(stats.fastestRoundTrip(placed: 4, exec) == 78_000)
        #expect(stats.longest == 50_000_000)
    }

    @Test func aRequestWaitsBehindALongCommandButNotBehindItself() {
        let exec = RedisExecution(usecPerCall: ["GET": 1, "EVAL": 1000], commandNames: ["GET", "EVAL"])
        var timeline = RedisTimeline(exec: exec, fastestRoundTrip: 20_000, longest: 1_000_000)
        // The EVAL's reply leaves at 1_100_000: it ran from 90_000 to 1_090_000 (less the way out).
        let eval = Self.path(command: 1, innerIn: 0, innerOut: 1_100_000)
        let long = try! #require(timeline.longCommand(eval, ordinal: 0))
        #expect(long.start == 90_000 && long.end == 1_090_000)
        #expect(timeline.longCommand(Self.path(command: 0, innerIn: 0, innerOut: 30_000), ordinal: 1) == nil)
        timeline.add([long])
        timeline.sort()
        // A GET arriving at 100_000 (+10 us way in) while the EVAL runs: waits until 1_090_000.
        let get = Self.path(command: 0, innerIn: 100_000, innerOut: 1_102_000)
        #expect(timeline.time(get, ordinal: 1) == 1000 + 980_000)
        // The EVAL's own time is its execution, not a wait behind itself.
        #expect(timeline.time(eval, ordinal: 0) == 1_000_000)
        // Never more than the request's time at the innermost vantage point.
        let short = Self.path(command: 1, innerIn: 0, innerOut: 500)
        #expect(timeline.time(short, ordinal: 2) == 500)
    }

    // MARK: split

    @Test func aQueuedTapHopIsSplitFromForwarding() {
        var p = Self.path(command: 0, innerIn: 10_000, innerOut: 60_000)
        p.requestHop = 4_000
        p.responseHop = 500
        p.client = 7_000
        var values = [Int64](repeating: -1, count: SegmentName.allCases.count)
        SegmentSplit.split(p, redis: 2_000, queued: true, forwarding: 1_000, into: &values)
        #expect(values[SegmentName.tap.index] == 3_000)
        #expect(values[SegmentName.bridge.index] == 1_000 + 500)
        #expect(values[SegmentName.guestStack.index] == 48_000)
        #expect(values[SegmentName.redis.index] == 2_000)
        #expect(values[SegmentName.client.index] == 7_000)
        SegmentSplit.split(p, redis: 0, queued: false, forwarding: 1_000, into: &values)
        #expect(values[SegmentName.tap.index] == 0)
        #expect(values[SegmentName.bridge.index] == 4_500)
    }

    // MARK: verdict

    static func shares(_ s: [SegmentName: Double], requests: Int = 100) -> GroupShares {
        var g = GroupShares(SegmentSplit.Group(), withClient: false)
        g.requests = requests
        g.endToEndMeanNs = 1000
        g.shares = s
        return g
    }

    static let resolved = SegmentResolution(requests: 100, twoSides: true, tapQueue: true, clientRecords: false, redisInfo: true)

    @Test func theNetworkIsTheBottleneckWhenBridgeOrTapTakesTheLargestShare() {
        let yes = VerdictRule.decide(typical: Self.shares([.bridge: 0.2, .tap: 0.5, .guestStack: 0.3]),
                                     tail: Self.shares([.guestStack: 0.9, .tap: 0.1]), resolution: Self.resolved)
        #expect(yes.answer == .decided(networkIsBottleneck: true))
        #expect(yes.typicalTop?.segment == .tap)
        #expect(yes.tailTop?.segment == .guestStack)
        #expect(abs(yes.networkShare - 0.7) < 1e-12)
        let no = VerdictRule.decide(typical: Self.shares([.bridge: 0.01, .tap: 0, .guestStack: 0.98, .redis: 0.01]),
                                    tail: Self.shares([:]), resolution: Self.resolved)
        #expect(no.networkIsBottleneck == false)
        #expect(no.tailTop == nil)
    }

    @Test func anUnresolvedSegmentNeitherWinsNorCountsAsNetwork() {
        var r = Self.resolved
        r.tapQueue = false
        let v = VerdictRule.decide(typical: Self.shares([.bridge: 0.1, .tap: 0.6, .guestStack: 0.3]),
                                   tail: Self.shares([:]), resolution: r)
        #expect(v.typicalTop?.segment == .guestStack)
        #expect(abs(v.networkShare - 0.1) < 1e-12)
    }

    @Test func oneVantagePointOrNoRequestIsInconclusive() {
        var one = Self.resolved
        one.twoSides = false
        #expect(VerdictRule.decide(typical: Self.shares([.guestStack: 1]), tail: Self.shares([:]), resolution: one).answer == .oneVantagePoint)
        var none = Self.resolved
        none.requests = 0
        let v = VerdictRule.decide(typical: Self.shares([:], requests: 0), tail: Self.shares([:]), resolution: none)
        #expect(v.answer == .noRequests)
        #expect(v.networkIsBottleneck == nil)
    }

    @Test func onATieTheSegmentNearestTheClientWins() {
        let v = VerdictRule.decide(typical: Self.shares([.guestStack: 0.5, .bridge: 0.5]), tail: Self.shares([:]),
                                   resolution: Self.resolved)
        #expect(v.typicalTop?.segment == .bridge)
    }

    // MARK: words

    @Test func pathEntriesAreOneStringInJSONAndReadBack() throws {
        let entries = [PathEntry(interface: "virbr0", role: "bridge"), PathEntry(interface: "odd(name)", role: "other")]
        for e in entries {
            #expect(e.description == "\(e.interface) (\(e.role))")
        }
        let plain = try PathEntryProbe.decode("\"vnet0\"")
        #expect(plain == PathEntry(interface: "vnet0", role: "other"))
        #expect(try PathEntryProbe.decode("\"odd(name) (other)\"") == entries[1])
    }
}

enum PathEntryProbe {
    static func decode(_ json: String) throws -> PathEntry {
        try JSONDecoder().decode(PathEntry.self, from: Data(json.utf8))
    }
}
