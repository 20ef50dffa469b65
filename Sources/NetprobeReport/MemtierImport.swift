import NetprobeModel
import NetprobeTrace
import NetprobeAttribution
import Foundation

/// A load generator's own summary, imported from its JSON output (memtier_benchmark
/// `--json-out-file`), shown beside what the wire says.
public struct LoadClientSummary: Codable, Sendable, Equatable {
    public struct Row: Codable, Sendable, Equatable {
        /// "Totals", "Sets", "Gets" ...
        public var name: String
        public var opsPerSecond: Double?
        public var count: Double?
        public var averageLatencyUs: Double?
        /// Percentile label ("p50.00") -> microseconds.
        public var percentilesUs: [String: Double]
    }

    public var tool: String
    public var file: String
    public var rows: [Row]
}

/// Reads memtier_benchmark's `--json-out-file`, both shapes: 1.2 (`ALL STATS` with Ops/sec and
/// Latency) and 1.3+/2.x (`Percentile Latencies`, `Average Latency`, `Count`). memtier reports
/// latency in milliseconds; netprobe shows microseconds.
public enum MemtierImport {
    public struct ImportError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func read(path: String) throws -> LoadClientSummary {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImportError(description: "\(path): cannot read the file")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ImportError(description: "\(path): not JSON (\(error.localizedDescription)); expected memtier_benchmark's --json-out-file")
        }
        guard let top = object as? [String: Any], let all = top["ALL STATS"] as? [String: Any] else {
            throw ImportError(description: "\(path): no \"ALL STATS\" object: expected memtier_benchmark's --json-out-file")
        }
        func number(_ any: Any?) -> Double? {
            if let d = any as? Double { return d }
            if let i = any as? Int { return Double(i) }
            if let s = any as? String { return Double(s) }
            return nil
        }
        var rows: [LoadClientSummary.Row] = []
        for name in ["Sets", "Gets", "Waits", "Totals"] {
            guard let r = all[name] as? [String: Any] else { continue }
            let average = number(r["Average Latency"]) ?? number(r["Latency"])
            var percentiles: [String: Double] = [:]
            if let p = r["Percentile Latencies"] as? [String: Any] {
                for (k, v) in p { if let ms = number(v) { percentiles[k] = ms * 1000 } }
            }
            rows.append(.init(name: name, opsPerSecond: number(r["Ops/sec"]), count: number(r["Count"]),
                              averageLatencyUs: average.map { $0 * 1000 }, percentilesUs: percentiles))
        }
        guard !rows.isEmpty else {
            throw ImportError(description: "\(path): \"ALL STATS\" holds none of Sets, Gets, Totals")
        }
        return LoadClientSummary(tool: "memtier_benchmark", file: path, rows: rows)
    }
}
