import NetprobeModel
import NetprobeTrace
import NetprobeAttribution

/// What limits a verdict: the data it stands on lost packets, pairs or requests. Written next to
/// the answer (text, JSON `verdict.caveats`, compare, HTML), so an answer on lossy or partial
/// data never stands alone. Every caveat states its size; none is judged by a threshold.
enum Caveats {
    static func of(_ r: Report) -> [String] {
        var out: [String] = []
        if let error = r.trace.error {
            out.append("the trace is damaged and was read only up to the damage (\(error)): the verdict covers what came before")
        }
        for p in r.trace.vantagePoints {
            if let dropped = p.dropped, dropped > 0 {
                let total = UInt64(p.packets) + dropped
                out.append("the capture dropped \(dropped) of \(total) packets at \(p.name) (\(TextReport.fmt(Double(dropped) * 100 / Double(total), 1)) %)")
            }
        }
        for v in r.vantages {
            if v.tcp.gaps > 0 {
                out.append("\(v.tcp.gaps) gaps in TCP streams at \(v.name) (\(v.tcp.gapBytes) bytes never captured)")
            }
            // Requests in flight when the trace ended, or on a connection that left 1:1 replies
            // (SUBSCRIBE, CLIENT REPLY), lost nothing.
            let lost: [UnpairedReason] = [.connectionClosed, .streamDesynchronised, .idleTimeout]
            let unpaired = lost.compactMap { v.unpairedByReason[$0.rawValue] }.reduce(0, +)
            if unpaired > 0 {
                out.append("\(unpaired) of \(v.requests.total) requests at \(v.name) have no response (connection closed, stream lost or idle)")
            }
        }
        if let dropped = r.attribution?.requestsDroppedBySpill, dropped > 0 {
            out.append("\(dropped) joined requests were dropped: the join's temporary file failed and memory was full (see the notes)")
        }
        if let d = r.attribution, d.innerOnly + d.outerOnly > 0 {
            let seen = d.requestsJoined + d.innerOnly + d.outerOnly
            out.append("\(d.innerOnly + d.outerOnly) of \(seen) requests were paired at one vantage point only and are not in the split")
        }
        return out
    }
}
