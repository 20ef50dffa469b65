import NetprobeModel
import NetprobeTrace
import NetprobeAttribution
/// Renders a `Report` as aligned text tables for people. Strings from the trace (names, commands,
/// notes, warnings, the capture's metadata) are shown with their control characters escaped
/// (`TerminalText`): one by one where they are printed, and the whole text once more as a net.
public enum TextReport {
    public static func render(_ r: Report) -> String {
        TerminalText.escapeKeepingLineFeeds(renderUnescaped(r))
    }

    private static func renderUnescaped(_ r: Report) -> String {
        let esc = TerminalText.escape
        var out = ""
        out += "netprobe \(r.netprobe) report: \(esc(r.trace.file)) (\(r.trace.format), \(r.trace.packets) packets)\n"
        if let error = r.trace.error {
            out += "ERROR: reading stopped: \(esc(error))\n       everything before that point is analysed below\n"
        }
        for w in r.trace.warnings { out += "warning: \(esc(w))\n" }
        out += "\nVantage points in the trace\n"
        var table = Table(["NAME", "ROLE / DESCRIPTION", "LINK", "SNAPLEN", "PACKETS", "DROPPED"])
        for p in r.trace.vantagePoints {
            table.add([p.name, p.description ?? "-", p.linkType, "\(p.snapLength)", "\(p.packets)",
                       p.dropped.map { "\($0)" } ?? "unknown"])
        }
        out += table.render(indent: 2)
        if let p = r.redisPorts {
            let how = ["named": "named with --port", "recorded": "recorded by the capture", "default": "the default",
                       "detected": "detected by content"][p.chosenBy] ?? p.chosenBy
            out += "\nRedis \(p.ports.count == 1 ? "port" : "ports") (\(how)): " + p.reasons.map(esc).joined(separator: "; ") + "\n"
            for n in p.notes { out += "  note: \(esc(n))\n" }
        }
        out += "\nLatency = \(r.latencyDefinition).\n"
        for v in r.vantages {
            out += "\nVantage \(esc(v.name)): \(v.requests.total) requests"
            if let d = v.durationSeconds { out += " in \(fmt(d, 3)) s" }
            if let rate = v.requests.perSecond { out += " (\(fmt(rate, 0)) req/s)" }
            out += ", \(v.tcp.connections) connections\n"
            var t = Table(["COMMAND", "COUNT", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "mean us"])
            for c in v.byCommand { t.add(row(c.command, c.count, c.latencyUs)) }
            if v.byCommand.count != 1 { t.add(row("all", v.requests.total, v.latencyUs)) }
            out += t.render(indent: 2)
            var facts: [String] = []
            facts.append("paired \(v.latencyUs.count)")
            if let n = v.requestsWithoutReply { facts.append("no reply by protocol \(n) (CLIENT REPLY OFF or SKIP)") }
            facts.append("unpaired \(v.unpairedRequests)" + (v.unpairedByReason.isEmpty ? "" : " (" + v.unpairedByReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"))
            if v.unexpectedResponses > 0 { facts.append("responses without a request \(v.unexpectedResponses)") }
            if let n = v.pushes { facts.append("pushes and pub/sub messages (not replies) \(n)") }
            if v.errorReplies > 0 { facts.append("error replies \(v.errorReplies)") }
            out += "  requests: " + facts.joined(separator: "; ") + "\n"
            let tcp = v.tcp
            out += "  tcp: \(tcp.retransmittedSegments) retransmitted, \(tcp.outOfOrderSegments) out of order, \(tcp.gaps) gaps (\(tcp.gapBytes) bytes never seen), \(tcp.snaplenCutBytes) bytes cut by snaplen\n"
            out += "  packets: \(v.packets)"
            if !v.decodeProblems.isEmpty {
                out += "; damaged: " + v.decodeProblems.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            }
            if !v.otherTraffic.isEmpty {
                out += "; not analysed: " + v.otherTraffic.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            }
            out += "\n"
            for n in v.notes { out += "  note: \(esc(n))\n" }
        }
        if let c = r.capture { out += renderContext(c) }
        out += renderAttribution(r)
        if let l = r.loadClient {
            out += "\nThe load generator's own view (\(esc(l.tool)), \(esc(l.file))):\n"
            var t = Table(["OPS", "OPS/S", "COUNT", "AVG us", "PERCENTILES us"])
            for row in l.rows {
                t.add([row.name, row.opsPerSecond.map { fmt($0, 0) } ?? "-", row.count.map { fmt($0, 0) } ?? "-",
                       us(row.averageLatencyUs),
                       row.percentilesUs.keys.sorted().map { "\($0)=\(us(row.percentilesUs[$0]))" }.joined(separator: " ")])
            }
            out += t.render(indent: 2)
        }
        return out
    }

    static func renderAttribution(_ r: Report) -> String {
        guard let d = r.attribution, let v = r.verdict else { return "" }
        if r.vantages.allSatisfy({ $0.requests.total == 0 }) {
            // Nothing to attribute: say so, and where the hint is, instead of an empty table.
            return "\nNo Redis requests in this trace: nothing to attribute (the notes of each vantage point above say what was seen instead).\n"
        }
        let esc = TerminalText.escape
        var out = "\nWhere the time goes (path: \(esc(d.path.map(\.description).joined(separator: " -> "))); \(d.requestsJoined) requests)\n"
        out += "  end-to-end = \(esc(d.endToEndDefinition))\n"
        if let e = d.endToEndUs, e.count > 0 {
            out += "  end-to-end: p50 \(us(e.p50)), p90 \(us(e.p90)), p99 \(us(e.p99)), p99.9 \(us(e.p999)), max \(us(e.max)) us; mean \(us(e.mean)) us\n"
        }
        var t = Table(["SEGMENT", "p50 us", "p99 us", "mean us", "TYPICAL", "SLOWEST 1%", "WHAT IT IS"])
        for s in r.segments {
            func share(_ x: Double?) -> String { x.map { fmt($0 * 100, 1) + "%" } ?? "-" }
            t.add([s.shownName, us(s.p50Us), us(s.p99Us), us(s.meanUs), share(s.share), share(s.tailShare),
                   s.resolved ? s.note : "not measured: " + s.note])
        }
        out += t.render(indent: 2)
        out += "  (TYPICAL: share of the mean end-to-end time of the middle half of requests, p25-p75; SLOWEST 1%: of the slowest 1 %)\n"
        for n in d.notes { out += "  note: \(esc(n))\n" }
        out += "\n\(v.question)\n  \(esc(v.answer.prefix(1).uppercased() + v.answer.dropFirst()))\n"
        for c in v.caveats { out += "  CAVEAT: \(esc(c))\n" }
        out += "  typical request: \(v.median.shownBottleneck) dominates; slowest 1 %: \(v.tail.shownBottleneck) dominates\n"
        for e in v.evidence { out += "  - \(esc(e))\n" }
        return out
    }

    static func renderContext(_ c: CaptureContext) -> String {
        let esc = TerminalText.escape
        var out = "\nCapture context"
        var facts: [String] = []
        if let s = c.setup { facts.append("setup \(s)") }
        if let vm = c.vm { facts.append("VM \(vm)") }
        if let h = c.hypervisor { facts.append("hypervisor \(h)") }
        if let r = c.redisAddress { facts.append("Redis \(r)" + (c.redisAddressSource.map { " (from \($0.words))" } ?? "")) }
        if let k = c.hostKernel { facts.append("host \(k)") }
        out += facts.isEmpty ? "\n" : ": " + esc(facts.joined(separator: ", ")) + "\n"
        if !c.interfaces.isEmpty {
            out += "  Kernel counters during the run (netlink; on a tap, rx = what the guest sent):\n"
            var t = Table(["IFACE", "SAMPLES", "RX PKTS", "TX PKTS", "RX DROP", "TX DROP", "ERRORS", "QDISC", "Q DROPS", "OVERLIMITS", "PEAK BACKLOG B"])
            for i in c.interfaces {
                t.add([i.interface, "\(i.samples)", "\(i.rxPackets)", "\(i.txPackets)", "\(i.rxDropped)", "\(i.txDropped)",
                       "\(i.rxErrors + i.txErrors)", i.qdisc ?? "none", i.qdiscDrops.map(String.init) ?? "-",
                       i.qdiscOverlimits.map(String.init) ?? "-", i.peakBacklogBytes.map(String.init) ?? "-"])
            }
            out += t.render(indent: 4)
        }
        if !c.redisCommands.isEmpty {
            out += "  Redis INFO commandstats during the run (execution time only: no socket I/O, no waiting):\n"
            var t = Table(["COMMAND", "CALLS", "USEC", "USEC/CALL", "FAILED"])
            for r in c.redisCommands {
                t.add([r.command, "\(r.calls)", "\(r.usec)", r.usecPerCall.map { fmt($0, 2) } ?? "-", r.failedCalls.map(String.init) ?? "-"])
            }
            out += t.render(indent: 4)
        }
        if !c.redisLatencyPercentilesUs.isEmpty {
            let lines = c.redisLatencyPercentilesUs.keys.sorted().map { name -> String in
                let p = c.redisLatencyPercentilesUs[name]!
                return esc("\(name) " + p.keys.sorted().map { "\($0)=\(p[$0]!)" }.joined(separator: " "))
            }
            out += "  Redis INFO latencystats (us, since Redis started): " + lines.joined(separator: "; ") + "\n"
        }
        for n in c.notes { out += "  note: \(esc(n))\n" }
        return out
    }

    private static func row(_ name: String, _ count: Int, _ l: LatencySummary) -> [String] {
        [name, "\(count)", us(l.p50), us(l.p90), us(l.p99), us(l.p999), us(l.max), us(l.mean)]
    }

    static func us(_ v: Double?) -> String {
        guard let v else { return "-" }
        return v >= 100 ? fmt(v, 0) : v >= 10 ? fmt(v, 1) : fmt(v, 2)
    }

    /// Fixed-point formatting without Foundation.
    public static func fmt(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return "\(v)" }
        // Beyond 2^53 fixed point means nothing (and Int64 cannot hold 1e300): print the plain value.
        guard abs(v) < 9.0e15 else { return "\(v)" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(v) * scale).rounded()
        let whole = Int64(scaled / scale)
        let frac = Int64(scaled - Double(whole) * scale)
        var s = (v < 0 && scaled != 0 ? "-" : "") + "\(whole)"
        if digits > 0 {
            let f = "\(frac)"
            s += "." + String(repeating: "0", count: digits - f.count) + f
        }
        return s
    }
}

/// A text table: text columns left-aligned, numbers right-aligned.
public struct Table {
    var header: [String]
    var rows: [[String]] = []
    /// Columns aligned left: the first, and those whose header names text rather than numbers.
    var left: Set<Int>
    public init(_ header: [String]) {
        self.header = header
        left = Set(header.indices.filter { i in
            i == 0 || ["ROLE", "WHAT", "SOURCE", "TYPE", "STATE", "HOST DEVICE", "MODEL", "BACKEND", "MAC", "SETUP", "QDISC", "LINK"]
                .contains { header[i].hasPrefix($0) }
        })
    }
    /// Adds a row; its cells are shown with control characters escaped (`TerminalText`).
    public mutating func add(_ row: [String]) { rows.append(row.map(TerminalText.escape)) }
    public func render(indent: Int) -> String {
        let all = [header] + rows
        var widths = [Int](repeating: 0, count: header.count)
        for r in all { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        var out = ""
        for r in all {
            var line = String(repeating: " ", count: indent)
            for (i, c) in r.enumerated() where i < widths.count {
                let pad = String(repeating: " ", count: widths[i] - c.count)
                line += left.contains(i) ? c + pad : pad + c
                if i < r.count - 1 { line += "  " }
            }
            while line.hasSuffix(" ") { line.removeLast() }
            out += line + "\n"
        }
        return out
    }
}
