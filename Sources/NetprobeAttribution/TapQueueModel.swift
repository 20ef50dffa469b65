import NetprobeModel
import NetprobeTrace
/// Stage 3: whether the tap's qdisc held a queue around a moment, from the netlink samples.
///
/// The request hop beyond plain forwarding counts as tap queueing where the qdisc shows a queue
/// (backlog, overlimits or drops) between the sample at or before the request and the next one.
struct TapQueueModel: Sendable {
    private let times: [Int64]
    /// Per sample: whether the queue showed between it and the next one (decided once here, not
    /// per request).
    private let queuedAfter: [Bool]

    /// `samples`: the guest device's netlink samples (any order). Empty: nothing is resolved.
    init(samples: [NetlinkSample]) {
        let sorted = samples.sorted { $0.timeNs < $1.timeNs }
        times = sorted.map(\.timeNs)
        queuedAfter = sorted.indices.map { k -> Bool in
            let a = sorted[k]
            let b = k + 1 < sorted.count ? sorted[k + 1] : a
            guard let qa = a.qdisc, let qb = b.qdisc else { return false }
            return qa.backlog > 0 || qb.backlog > 0 || qb.overlimits > qa.overlimits || qb.drops > qa.drops
        }
    }

    /// Whether the tap's queueing can be told from forwarding at all.
    var isResolved: Bool { !times.isEmpty }

    /// Whether the queue showed at `t` (the first sample's interval before the first sample).
    /// Rows come about in time order, so the search walks from where the last one ended
    /// (`cursor`, one per run of rows; a binary search per request was a fifth of the
    /// attribution's time).
    func queued(at t: Int64, cursor: inout Int) -> Bool {
        guard isResolved else { return false }
        var k = cursor
        if times[k] <= t {
            while k + 1 < times.count && times[k + 1] <= t { k += 1 }
        } else {
            while k > 0 && times[k] > t { k -= 1 }
        }
        cursor = k
        return queuedAfter[k]
    }
}
