/// A length of time given on the command line: "30s", "500ms", "2m", "1h", "250us", or a bare
/// number of seconds ("1.5").
public struct TimeSpan: Sendable, Equatable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public init?(parsing text: String) {
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        // Two-letter units come first so "ms" is not read as "m" + "s".
        var number = Substring(text)
        var scale = 1e9
        for (suffix, s) in units where text.hasSuffix(suffix) {
            // "ms" ends in "s" too: the longest matching suffix wins because it is listed first.
            number = text.dropLast(suffix.count)
            scale = s
            break
        }
        guard let value = Double(number), value.isFinite, value > 0, value * scale < 9e18 else { return nil }
        nanoseconds = Int64(value * scale)
    }

    public var seconds: Double { Double(nanoseconds) / 1e9 }

    public var description: String {
        if nanoseconds % 3_600_000_000_000 == 0 { return "\(nanoseconds / 3_600_000_000_000)h" }
        if nanoseconds % 60_000_000_000 == 0 { return "\(nanoseconds / 60_000_000_000)m" }
        if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000)s" }
        if nanoseconds % 1_000_000 == 0 { return "\(nanoseconds / 1_000_000)ms" }
        return "\(nanoseconds)ns"
    }
}
