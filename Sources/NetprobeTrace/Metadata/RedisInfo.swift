import NetprobeModel
import Foundation

/// Parses Redis `INFO commandstats` and `INFO latencystats` text.
public enum RedisInfo {
    /// One `cmdstat_<name>:calls=N,usec=N,usec_per_call=F,...` line.
    public struct CommandStat: Sendable, Equatable, Codable {
        public var calls: UInt64
        public var usec: UInt64
        public var rejectedCalls: UInt64
        public var failedCalls: UInt64

        public init(calls: UInt64, usec: UInt64, rejectedCalls: UInt64, failedCalls: UInt64) {
            self.calls = calls
            self.usec = usec
            self.rejectedCalls = rejectedCalls
            self.failedCalls = failedCalls
        }
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
                rejectedCalls: UInt64(fields["rejected_calls"] ?? "") ?? 0,
                failedCalls: UInt64(fields["failed_calls"] ?? "") ?? 0)
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

    private static func keyValues(_ s: Substring) -> [String: String] {
        var out: [String: String] = [:]
        for pair in s.split(separator: ",") {
            guard let eq = pair.firstIndex(of: "=") else { continue }
            out[String(pair[..<eq])] = String(pair[pair.index(after: eq)...]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return out
    }
}
