import NetprobeModel
import Foundation

/// Parses Redis `INFO commandstats`, `INFO latencystats` and `INFO server` text, of every Redis
/// netprobe meets: 7.x, and the 3.0 / 3.2 inside unikernels (Rumprun, OSv), whose commandstats
/// lines carry only `calls`, `usec` and `usec_per_call` and which have no latencystats at all.
/// A field a Redis does not report is nil, never 0: "no failed calls" and "not counted" differ.
public enum RedisInfo {
    /// One `cmdstat_<name>:calls=N,usec=N,usec_per_call=F,...` line.
    public struct CommandStat: Sendable, Equatable, Codable {
        public var calls: UInt64
        public var usec: UInt64
        /// `rejected_calls` and `failed_calls` (Redis 6.2+); nil when the line has none.
        public var rejectedCalls: UInt64?
        public var failedCalls: UInt64?

        public init(calls: UInt64, usec: UInt64, rejectedCalls: UInt64?, failedCalls: UInt64?) {
            self.calls = calls
            self.usec = usec
            self.rejectedCalls = rejectedCalls
            self.failedCalls = failedCalls
        }
    }

    /// What an INFO snapshot could not tell, because the Redis that answered does not report it.
    public enum MissingField: String, Sendable, Equatable, Codable, CaseIterable {
        /// `INFO latencystats` had no `latency_percentiles_usec_` line (Redis before 7.0, or
        /// `latency-tracking no`).
        case latencystats
        /// commandstats lines without `failed_calls` (Redis before 6.2).
        case failedCalls
        /// commandstats lines without `rejected_calls` (Redis before 6.2).
        case rejectedCalls
    }

    /// Command name (upper case, subcommands as "CONFIG GET") -> stats.
    public static func commandStats(_ text: String) -> [String: CommandStat] {
        var out: [String: CommandStat] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard line.hasPrefix("cmdstat_"), let colon = line.firstIndex(of: ":") else { continue }
            let name = line[line.index(line.startIndex, offsetBy: 8)..<colon]
                .uppercased().replacingOccurrences(of: "|", with: " ")
            let fields = keyValues(line[line.index(after: colon)...])
            out[name] = CommandStat(
                calls: UInt64(fields["calls"] ?? "") ?? 0, usec: UInt64(fields["usec"] ?? "") ?? 0,
                rejectedCalls: fields["rejected_calls"].flatMap { UInt64($0) },
                failedCalls: fields["failed_calls"].flatMap { UInt64($0) })
        }
        return out
    }

    /// `latency_percentiles_usec_<name>:p50=F,p99=F,p99.9=F` -> name -> ["p50": F, ...].
    public static func latencyPercentiles(_ text: String) -> [String: [String: Double]] {
        var out: [String: [String: Double]] = [:]
        let prefix = "latency_percentiles_usec_"
        for line in text.split(whereSeparator: \.isNewline) {
            guard line.hasPrefix(prefix), let colon = line.firstIndex(of: ":") else { continue }
            let name = line[line.index(line.startIndex, offsetBy: prefix.count)..<colon]
                .uppercased().replacingOccurrences(of: "|", with: " ")
            var values: [String: Double] = [:]
            for (k, v) in keyValues(line[line.index(after: colon)...]) { values[k] = Double(v) }
            out[name] = values
        }
        return out
    }

    /// `redis_version:3.0.7` from `INFO server` (or any INFO text holding that section); nil
    /// when there is none.
    public static func version(_ text: String) -> String? {
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix("redis_version:") {
            let value = line.dropFirst("redis_version:".count).trimmingCharacters(in: .whitespaces)
            return value.isEmpty ? nil : value
        }
        return nil
    }

    /// The version's major and minor numbers ("3.0.7" -> (3, 0)); nil when it is not numeric.
    public static func majorMinor(_ version: String) -> (major: Int, minor: Int)? {
        let parts = version.split(separator: ".")
        guard parts.count >= 2, let major = Int(parts[0]), let minor = Int(parts[1]) else { return nil }
        return (major, minor)
    }

    /// What the snapshot texts do not report: judged from the lines themselves, so that it holds
    /// for a Redis whose version is unknown too. Fields of commandstats count as missing only
    /// when there are cmdstat lines and none of them has the field.
    public static func missingFields(commandstats: String, latencystats: String) -> [MissingField] {
        var missing: [MissingField] = []
        if latencyPercentiles(latencystats).isEmpty { missing.append(.latencystats) }
        let stats = commandStats(commandstats).values
        if !stats.isEmpty {
            if stats.allSatisfy({ $0.failedCalls == nil }) { missing.append(.failedCalls) }
            if stats.allSatisfy({ $0.rejectedCalls == nil }) { missing.append(.rejectedCalls) }
        }
        return missing
    }

    private static func keyValues(_ s: Substring) -> [String: String] {
        var out: [String: String] = [:]
        for pair in s.split(separator: ",") {
            guard let eq = pair.firstIndex(of: "=") else { continue }
            out[String(pair[..<eq])] = String(pair[pair.index(after: eq)...]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return out
    }
}
