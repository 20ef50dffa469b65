import NetprobeCore

/// Renders a `LoadResult` as text for people: a settings line, memtier's per-command table
/// (throughput and latency percentiles in microseconds) and what went wrong, if anything.
public enum LoadTextReport {
    public static func render(_ r: LoadResult) -> String {
        let s = r.settings
        var out = "netprobe \(r.netprobe) load: \(s.target), \(s.connections) connections, pipeline \(s.pipeline), "
        out += "SET:GET \(s.ratio), \(s.dataSize)-byte values, \(s.keySpace) keys"
        if let rate = s.rate { out += ", paced at \(fmt(rate, 0)) req/s" }
        out += "\n"
        out += "\(r.requests) requests in \(fmt(r.elapsedSeconds, 3)) s: \(fmt(r.requestsPerSecond, 0)) req/s"
        out += " (\(describe(r.stopReason)))\n\n"

        var rows = [["COMMAND", "REQUESTS", "REQ/S", "ERRORS", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "mean us"]]
        for c in r.commands + [r.totals] {
            let l = c.latencyUs
            rows.append([c.command, "\(c.requests)", fmt(c.requestsPerSecond, 0), "\(c.errorReplies)",
                         us(l.p50), us(l.p90), us(l.p99), us(l.p999), us(l.max), us(l.mean)])
        }
        out += table(rows)

        var problems: [String] = []
        if r.errorReplies > 0 { problems.append("\(r.errorReplies) error replies") }
        if r.unanswered > 0 { problems.append("\(r.unanswered) requests unanswered") }
        if r.connectionErrors > 0 { problems.append("\(r.connectionErrors) of \(r.connections.count) connections failed") }
        if !problems.isEmpty { out += "\nproblems: " + problems.joined(separator: ", ") + "\n" }
        for c in r.connections {
            if let failure = c.failure { out += "  connection \(c.index) (\(c.client)): \(failure)\n" }
        }
        out += "\nLatency = from just before the send(2) carrying a request's last byte to just after the recv(2) returning its reply's last byte.\n"
        return out
    }

    private static func describe(_ reason: LoadResult.StopReason) -> String {
        switch reason {
        case .requestsDone: "all requests done"
        case .durationReached: "duration reached"
        case .interrupted: "interrupted"
        case .connectionsFailed: "stopped: every connection failed"
        }
    }

    static func us(_ v: Double?) -> String {
        guard let v else { return "-" }
        return v >= 1000 ? fmt(v, 0) : v >= 100 ? fmt(v, 1) : fmt(v, 2)
    }

    static func fmt(_ v: Double, _ digits: Int) -> String { TextReport.fmt(v, digits) }

    /// Left-aligned first column, the others right-aligned, two spaces apart.
    private static func table(_ rows: [[String]]) -> String {
        var widths = [Int](repeating: 0, count: rows[0].count)
        for r in rows { for (i, cell) in r.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var out = ""
        for r in rows {
            var line = ""
            for (i, cell) in r.enumerated() {
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                line += i == 0 ? cell + pad : "  " + pad + cell
            }
            out += line + "\n"
        }
        return out
    }
}
