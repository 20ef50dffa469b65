/// A length of time given on the command line: "30s", "500ms", "2m", "1h", "250us", "10ns",
/// compounds such as "1m30s" or "1h2m", or a bare number of seconds ("1.5").
///
/// The one duration syntax of every command (`capture --duration`, `load --duration`,
/// `stats --interval`, `experiment --warmup` ...). Fractions are rounded to the nearest
/// nanosecond; zero, negative, non-finite and absurd (over 100 years) lengths are rejected.
public struct TimeSpan: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static func seconds(_ s: Int64) -> TimeSpan { TimeSpan(nanoseconds: s * 1_000_000_000) }
    public static func milliseconds(_ ms: Int64) -> TimeSpan { TimeSpan(nanoseconds: ms * 1_000_000) }

    /// Units by suffix. Two-letter units are tried first, so "ms" is never read as "m" + "s".
    private static let units: [(suffix: String, nanoseconds: Double)] = [
        ("ns", 1), ("us", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
    ]
    /// Above this a length is surely a typo (and would overflow arithmetic on Int64 nanoseconds).
    private static let longest = 100 * 365.25 * 86400e9

    public init?(parsing text: String) {
        guard !text.isEmpty else { return nil }
        // A bare number is seconds.
        if let value = Double(text) {
            guard let ns = Self.checked(value * 1e9) else { return nil }
            nanoseconds = ns
            return
        }
        // Otherwise one or more NUMBER UNIT parts: "1m30s", "2h", "1.5ms".
        var total = 0.0
        var rest = Substring(text)
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isNumber || $0 == "." }
            guard !digits.isEmpty, let value = Double(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            guard let unit = Self.units.first(where: { rest.hasPrefix($0.suffix) && !(($0.suffix == "m") && rest.hasPrefix("ms")) })
            else { return nil }
            rest = rest.dropFirst(unit.suffix.count)
            total += value * unit.nanoseconds
        }
        guard let ns = Self.checked(total) else { return nil }
        nanoseconds = ns
    }

    private static func checked(_ ns: Double) -> Int64? {
        guard ns.isFinite, ns > 0, ns < longest else { return nil }
        let rounded = ns.rounded()
        return rounded >= 1 ? Int64(rounded) : nil
    }

    public var seconds: Double { Double(nanoseconds) / 1e9 }

    /// The same length as Swift's `Duration`.
    public var duration: Duration { .nanoseconds(nanoseconds) }

    public static func < (a: TimeSpan, b: TimeSpan) -> Bool { a.nanoseconds < b.nanoseconds }

    public var description: String {
        if nanoseconds % 3_600_000_000_000 == 0 { return "\(nanoseconds / 3_600_000_000_000)h" }
        if nanoseconds % 60_000_000_000 == 0 { return "\(nanoseconds / 60_000_000_000)m" }
        if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000)s" }
        if nanoseconds % 1_000_000 == 0 { return "\(nanoseconds / 1_000_000)ms" }
        if nanoseconds % 1_000 == 0 { return "\(nanoseconds / 1_000)us" }
        return "\(nanoseconds)ns"
    }
}
