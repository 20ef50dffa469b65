import NetprobeModel
import Histogram

/// Latency distribution of a set of requests, in nanoseconds, kept in an HdrHistogram (constant
/// memory, 3 significant digits) plus exact count, sum, min and max.
public struct LatencyRecorder: Sendable {
    /// Values up to one hour; larger ones are clamped (and counted in `clamped`).
    static let highestTrackable: UInt64 = 3_600_000_000_000

    /// Created at the first value: an empty recorder costs nothing.
    public private(set) var histogram: Histogram<UInt32>?
    public private(set) var count = 0
    public private(set) var sumNs: Int64 = 0
    public private(set) var minNs: Int64 = .max
    public private(set) var maxNs: Int64 = 0
    public private(set) var clamped = 0

    public init() {}

    public mutating func record(_ ns: Int64) {
        // The histogram exists exactly when count > 0 (comparing the optional with nil copied
        // the whole histogram on every call).
        if count == 0 {
            histogram = Histogram<UInt32>(lowestDiscernibleValue: 1, highestTrackableValue: Self.highestTrackable,
                                          numberOfSignificantValueDigits: .three)
        }
        let v = max(ns, 0)
        count += 1
        sumNs = Self.saturatingSum(sumNs, v)
        minNs = min(minNs, v)
        maxNs = max(maxNs, v)
        var value = UInt64(v)
        if value > Self.highestTrackable {
            value = Self.highestTrackable
            clamped += 1
        }
        _ = histogram?.record(value) // optional chaining mutates in place
    }

    /// Adds every value of `other`.
    public mutating func add(_ other: LatencyRecorder) {
        guard other.count > 0, let theirs = other.histogram else { return }
        if histogram == nil {
            histogram = theirs
        } else {
            histogram!.add(theirs)
        }
        count += other.count
        sumNs = Self.saturatingSum(sumNs, other.sumNs)
        minNs = min(minNs, other.minNs)
        maxNs = max(maxNs, other.maxNs)
        clamped += other.clamped
    }

    /// The value at `percentile` (0...100) in nanoseconds; nil when empty. The maximum is exact.
    public func valueNs(atPercentile percentile: Double) -> Int64? {
        guard count > 0, let histogram else { return nil }
        if percentile >= 100 { return maxNs }
        // HdrHistogram returns the top of the value's bucket; never report above the true maximum.
        return min(Int64(histogram.valueAtPercentile(percentile)), maxNs)
    }

    public var meanNs: Double? { count > 0 ? Double(sumNs) / Double(count) : nil }

    /// Latencies can be decades long in a damaged or hostile trace (timestamps are valid up to
    /// 2116): their sum stops at Int64.max instead of trapping (the fuzzer found it).
    package static func saturatingSum(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : sum
    }
}
