import Foundation
import NetprobeCore

/// Microseconds for people: "1393 us", "20.3 ms", "-".
func us(_ x: Double?) -> String {
    guard let x else { return "-" }
    if abs(x) >= 10_000 { return TextReport.fmt(x / 1000, 2) + " ms" }
    return TextReport.fmt(x, abs(x) < 10 ? 2 : 0) + " us"
}

/// The table on stdout.
public enum SelftestTable {
    static func verdict(_ r: Report) -> String {
        guard let v = r.verdict else { return "-" }
        let network = v.networkIsBottleneck.map { $0 ? "yes" : "no" } ?? "inconclusive"
        return "typical: \(v.median.shownBottleneck), slowest 1%: \(v.tail.shownBottleneck), network: \(network)"
    }

    public static func render(_ o: SelftestOutcome) -> String {
        let header = ["FAULT", "INJECTED WHERE", "INJECTED SIZE", "MEASURED AS", "MEASURED SIZE", "OFF BY", "VERDICT SAYS", "RESULT"]
        var rows: [[String]] = []
        func error(_ r: SelftestRow) -> String {
            guard let m = r.measuredUs, let i = r.injectedUs, i > 0 else { return "-" }
            return (m >= i ? "+" : "") + TextReport.fmt((m - i) / i * 100, 1) + " %"
        }
        if let b = o.baseline {
            rows.append([b.fault, b.injectedWhere, "-", b.measuredSegment, us(b.measuredUs), "-", b.verdictSays, b.passed ? "ok" : "odd"])
        }
        for r in o.rows {
            rows.append([r.fault, r.injectedWhere, us(r.injectedUs), r.measuredSegment, us(r.measuredUs), error(r), r.verdictSays, r.passed ? "PASS" : "FAIL"])
        }
        var widths = header.map(\.count)
        for row in rows { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            "  " + cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return [2, 4, 5].contains(i) ? pad + c : c + pad
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        var out = "\nnetprobe selftest: lab bridge\(o.hypervisor.map { " (\($0) guest)" } ?? ""), load netprobe load \(o.connections) connections pipeline 1, \(TextReport.fmt(o.durationSeconds, 1)) s per run\n"
        out += line(header) + "\n"
        for r in rows { out += line(r) + "\n" }
        if let e = o.error { out += "\nThe selftest could not run to the end: \(e)\n" }
        if o.interrupted { out += "\nInterrupted: the lab and the faults were removed.\n" }
        for r in o.rows {
            out += "\n\(r.fault): \(r.passed ? "PASS" : "FAIL")\n"
            out += "  injected: \(r.injectedHow)\n  measured: \(r.measuredHow)\n"
            for reason in r.reasons { out += "  FAIL: \(reason)\n" }
            for d in r.details { out += "  - \(d)\n" }
        }
        if let b = o.baseline, !b.reasons.isEmpty {
            out += "\nbaseline: " + b.reasons.joined(separator: "; ") + "\n"
        }
        if !o.definitions.isEmpty {
            out += "\nWhat is compared (tolerance ±\(Int(Selftest.tolerance * 100)) %):\n"
            for d in o.definitions { out += "  \(d)\n" }
        }
        let passed = o.rows.filter(\.passed).count
        let tolerance = "±\(Int(Selftest.tolerance * 100)) %"
        if o.interrupted {
            out += "\nINTERRUPTED after \(TextReport.fmt(o.seconds, 0)) s: \(passed) of \(o.rows.count) faults run so far passed"
        } else if o.error != nil {
            out += "\nCOULD NOT RUN (\(TextReport.fmt(o.seconds, 0)) s): \(passed) of \(o.rows.count) faults run so far passed"
        } else {
            out += "\n\(o.passed ? "PASS" : "FAIL"): \(passed) of \(o.rows.count) faults found in the right place and sized within \(tolerance) (\(TextReport.fmt(o.seconds, 0)) s)"
        }
        return out
    }
}

