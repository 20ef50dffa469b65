import NetprobeModel
import NetprobeTrace
import NetprobeAttribution
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Renders a report, or a comparison of setups, as one self-contained HTML page: inline CSS and
/// SVG charts drawn here, no scripts, nothing fetched from anywhere.
///
/// The page holds the verdict in words per setup, the seed's two charts (requests per second and
/// latency per setup), the end-to-end latency per setup (percentiles, max and mean), where the
/// time goes (a stacked bar per setup, typical request and slowest 1 %, with the shares as a
/// table), the figures as a table, latency CDFs per vantage point and the kernel's counters over
/// time (when the trace carries netlink samples). A page of one report speaks of the trace, not
/// of setups, and sizes its charts as a comparison does.
public enum HTMLReport {
    /// One report (`netprobe report --format html`).
    public static func render(_ report: Report, name: String? = nil) -> String {
        let comparison = Comparison([Comparison.Input(report: report, file: report.trace.file, name: name)], baseline: nil)
        return page(comparison, reports: [report], title: "netprobe report: \(report.trace.file)", single: true)
    }

    /// A comparison (`netprobe compare --format html`) with the reports it was built from, in the
    /// same order: they supply the latency distributions and the netlink series.
    public static func render(_ comparison: Comparison, reports: [Report]) -> String {
        precondition(comparison.setups.count == reports.count, "one report per setup, in the comparison's order")
        let names = comparison.setups.map(\.name).joined(separator: ", ")
        return page(comparison, reports: reports, title: "netprobe compare: \(names)", single: false)
    }

    /// `single`: the page of one report (`netprobe report`), which speaks of "the trace".
    static func page(_ c: Comparison, reports: [Report], title: String, single: Bool) -> String {
        let sections = [
            header(c, title: title, single: single),
            verdicts(c),
            throughputAndLatency(c, reports: reports),
            endToEnd(c, reports: reports, single: single),
            attribution(c, single: single),
            figuresTable(c, single: single),
            distributions(c, reports: reports, single: single),
            netlink(c, reports: reports),
            vantageTable(c, reports: reports, single: single),
            notes(c, reports: reports),
        ]
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title))</title>
            <style>\(style)</style>
            </head>
            <body>
            <main>
            \(sections.joined(separator: "\n"))
            <footer>Made by netprobe \(escape(c.netprobe)). Self-contained: no scripts, nothing loaded from the network.</footer>
            </main>
            </body>
            </html>

            """
    }

    // MARK: Sections

    /// The figures of a single trace: `Comparison.figuresDefinitionText` said of one trace.
    static let singleFiguresDefinition = "throughput and latency of the trace at its outermost vantage point: the first on the "
        + "attribution path (the one nearest the client); for a trace without one, the vantage point with the most requests"

    static func header(_ c: Comparison, title: String, single: Bool) -> String {
        var out = "<header><h1>\(escape(title))</h1>\n<p class=\"lead\">Where does Redis request time go? "
        out += single ? "Throughput and latency at each vantage point of the trace, " : "Throughput and latency per setup, "
        out += "the time split into segments along the request's path, and the answer to "
        out += "<q>is the virtual network (bridge + tap) the bottleneck?</q></p>\n<dl class=\"defs\">"
        out += "<dt>Figures</dt><dd>\(escape(single ? singleFiguresDefinition : c.figuresDefinition))</dd>"
        out += "<dt>Latency</dt><dd>\(escape(c.latencyDefinition))</dd>"
        if let b = c.baseline { out += "<dt>Baseline</dt><dd>\(escape(b)): ratios are this setup's figure divided by \(escape(b))'s</dd>" }
        out += "</dl></header>"
        return out
    }

    static func verdicts(_ c: Comparison) -> String {
        var out = "<section><h2>The verdict</h2>\n<div class=\"cards\">"
        for s in c.setups {
            out += "<article class=\"card\"><h3>\(escape(s.name)) \(badge(s.verdict))</h3>"
            guard let v = s.verdict else {
                out += "<p>No attribution in this report.</p></article>"
                continue
            }
            out += "<p class=\"answer\">\(escape(capitalized(v.answer)))</p>"
            // What the data lacks comes right under the answer it qualifies, one line per caveat.
            if !v.caveats.isEmpty {
                out += "<div class=\"caveats\" role=\"note\">"
                for caveat in v.caveats { out += "<p class=\"caveat\"><b>Caveat:</b> \(escape(caveat))</p>" }
                out += "</div>"
            }
            out += "<p>Typical request: <b>\(escape(v.median.shownBottleneck))</b> dominates"
            if let share = v.median.share { out += " (\(percent(share)))" }
            out += "; slowest 1 %: <b>\(escape(v.tail.shownBottleneck))</b>"
            if let share = v.tail.share { out += " (\(percent(share)))" }
            out += ".</p><ul class=\"evidence\">"
            for e in v.evidence { out += "<li>\(escape(e))</li>" }
            out += "</ul></article>\n"
        }
        return out + "</div></section>"
    }

    static func badge(_ v: Verdict?) -> String {
        switch v?.networkIsBottleneck {
        case true?: "<span class=\"badge yes\">network is the bottleneck</span>"
        case false?: "<span class=\"badge no\">network is not the bottleneck</span>"
        case nil: "<span class=\"badge unknown\">inconclusive</span>"
        }
    }

    /// The seed's two charts. Several setups: one bar (group) per setup, at its outermost vantage
    /// point, with the ratio to the baseline underneath. One report: one per vantage point.
    static func throughputAndLatency(_ c: Comparison, reports: [Report]) -> String {
        var names: [String], rates: [Double?], p50s: [Double?], p99s: [Double?]
        var rateNotes: [String?], p50Notes: [String?]
        let caption: String
        if c.setups.count == 1, let vantages = reports.first?.vantages, vantages.count > 1 {
            names = vantages.map(\.name)
            rates = vantages.map(\.requests.perSecond)
            p50s = vantages.map(\.latencyUs.p50)
            p99s = vantages.map(\.latencyUs.p99)
            rateNotes = names.map { _ in nil }
            p50Notes = rateNotes
            caption = "At each vantage point of the trace."
        } else {
            names = c.setups.map(\.name)
            rates = c.setups.map(\.requestsPerSecond)
            p50s = c.setups.map(\.p50Us)
            p99s = c.setups.map(\.p99Us)
            func note(_ s: SetupComparison, _ value: (BaselineRatios) -> Double?, _ prefix: String) -> String? {
                guard let r = s.vsBaseline, s.name != r.baseline, let x = value(r) else { return nil }
                return "\(prefix)\(ratio(x)) × \(r.baseline)"
            }
            rateNotes = c.setups.map { note($0, \.throughput, "") }
            p50Notes = c.setups.map { note($0, \.p50, "p50 ") }
            caption = "At each setup's outermost vantage point (named in the table below)."
                + (c.baseline.map { " Under each bar: the ratio to \($0)." } ?? "")
        }
        let rps = Charts.bars(
            title: "Requests per second", yLabel: "requests per second", categories: names, subLabels: rateNotes,
            series: [Charts.BarSeries(name: "requests/s", color: Palette.throughput, values: rates)],
            format: { TextReport.fmt($0, 0) })
        // Latencies of a host and of a guest differ a hundredfold: on a linear axis the host's bars vanish.
        let log = Charts.spansDecades(p50s + p99s)
        let latency = Charts.bars(
            title: "Latency", yLabel: log ? "latency (µs, log scale)" : "latency (µs, linear scale)", categories: names,
            subLabels: p50Notes,
            series: [Charts.BarSeries(name: "p50", color: Palette.p50, values: p50s),
                     Charts.BarSeries(name: "p99", color: Palette.p99, values: p99s)],
            log: log, format: { TextReport.us($0) })
        return """
            <section><h2>Throughput and latency</h2>
            <p class="caption">\(escape(caption + (log ? " " + Charts.logNote("Latency") : "")))</p>
            <div class="grid"><figure>\(rps)</figure><figure>\(latency)</figure></div></section>
            """
    }

    /// End-to-end latency per setup: the distribution of the attribution's end-to-end times where
    /// the report has one (percentiles and max as bars, the mean as a line across them), else the
    /// outermost vantage point's latency, said under the bars.
    static func endToEnd(_ c: Comparison, reports: [Report], single: Bool) -> String {
        var summaries: [LatencySummary?] = [], subLabels: [String?] = []
        var fallback = false
        for (s, r) in zip(c.setups, reports) {
            let mean: (LatencySummary) -> String = { l in l.mean.map { "mean \(TextReport.us($0)) µs" } ?? "no mean" }
            if let e = r.attribution?.endToEndUs, e.count > 0 {
                summaries.append(e)
                subLabels.append(mean(e))
            } else if let v = r.vantages.first(where: { $0.name == s.vantage }), v.latencyUs.count > 0 {
                summaries.append(v.latencyUs)
                subLabels.append("\(mean(v.latencyUs)), at \(v.name)")
                fallback = true
            } else {
                summaries.append(nil)
                subLabels.append(nil)
            }
        }
        var out = "<section><h2>End-to-end latency</h2>\n"
        guard summaries.contains(where: { $0 != nil }) else {
            return out + "<p class=\"caption\">No request was answered in \(single ? "this trace" : "these traces"): no latency to show.</p></section>"
        }
        let parts: [(String, String, KeyPath<LatencySummary, Double?>)] = [
            ("p50", Palette.p50, \.p50), ("p90", Palette.p90, \.p90), ("p99", Palette.p99, \.p99),
            ("p99.9", Palette.p999, \.p999), ("max", Palette.max, \.max),
        ]
        let series = parts.map { name, color, key in Charts.BarSeries(name: name, color: color, values: summaries.map { $0?[keyPath: key] }) }
        let log = Charts.spansDecades(series.flatMap(\.values))
        let wide = c.setups.count > 2
        let chart = Charts.bars(
            title: "End-to-end latency", yLabel: log ? "end-to-end latency (µs, log scale)" : "end-to-end latency (µs, linear scale)",
            categories: c.setups.map(\.name), subLabels: subLabels, series: series, log: log,
            marker: Charts.BarMarker(name: "mean", values: summaries.map { $0?.mean }), width: wide ? 1100 : Charts.width,
            format: { TextReport.us($0) })
        var definitions: [String] = []
        for r in reports {
            if let d = r.attribution?.endToEndDefinition, !definitions.contains(d) { definitions.append(d) }
        }
        out += "<p class=\"caption\">\(single ? "The" : "Per setup, the") median (p50), p90, p99, p99.9 and the slowest request (max) as bars; "
        out += "the mean, a different statistic, as a dark line across them and in figures under the bars."
        if log { out += " " + escape(Charts.logNote("The axis")) }
        out += "</p>\n"
        if !definitions.isEmpty {
            out += "<dl class=\"defs\">" + definitions.map { "<dt>End-to-end</dt><dd>\(escape($0))</dd>" }.joined() + "</dl>\n"
        }
        if fallback {
            out += "<p class=\"caption\">Where a report has no end-to-end split, the bars are the latency at its outermost vantage point, named under them.</p>\n"
        }
        out += wide ? "<figure class=\"wide\">\(chart)</figure>" : "<div class=\"grid\"><figure>\(chart)</figure></div>"
        return out + "</section>"
    }

    static func attribution(_ c: Comparison, single: Bool) -> String {
        var rows: [Charts.ShareRow] = []
        var unmeasured: [String] = []
        for s in c.setups {
            let resolved = s.segments.filter(\.resolved)
            func parts(_ share: KeyPath<SegmentSummary, Double?>) -> [Charts.SharePart] {
                resolved.compactMap { x in x[keyPath: share].map { Charts.SharePart(key: x.name, label: x.shownName, share: $0) } }
            }
            rows.append(Charts.ShareRow(setup: s.name, group: "typical request", parts: parts(\.share)))
            rows.append(Charts.ShareRow(setup: s.name, group: "slowest 1 %", parts: parts(\.tailShare)))
            let missing = s.segments.filter { !$0.resolved }
            if !missing.isEmpty {
                unmeasured.append("<li><b>\(escape(s.name))</b>: " + missing.map { "\(escape($0.shownName)): \(escape($0.note))" }
                    .joined(separator: "; ") + "</li>")
            }
        }
        var out = "<section><h2>Where the time goes</h2>\n"
        out += "<p class=\"caption\">Each segment's share of the end-to-end time: of the typical request (the middle half by end-to-end time) "
        out += "and of the slowest 1 %. A segment is named by what it is on \(single ? "the" : "each") path and coloured by its place on it: "
        out += "warm colours are the virtual network (bridge and tap, or the veth, macvlan or macvtap in their place, and the virtual NIC's backend reading the tap). "
        out += "A share too thin to see is drawn a few pixels wide; its true value is in its tooltip and in the table below.</p>\n"
        out += "<figure class=\"wide\">\(Charts.shares(rows: rows))</figure>\n"
        out += sharesTable(c, single: single)
        if !unmeasured.isEmpty {
            out += "<details><summary class=\"caption\">Segments not measured in \(single ? "this trace" : "these traces") (left out of the bars), and why</summary>"
            out += "<ul class=\"small\">\(unmeasured.joined())</ul></details>"
        }
        return out + "</section>"
    }

    /// The segments measured in at least one setup, in path order, each with what it is called
    /// on the paths where it was measured (one name, or several: "guest-stack / server-stack").
    static func measuredSegments(_ c: Comparison) -> [(key: String, labels: [String])] {
        SegmentName.allCases.map(\.rawValue).compactMap { key in
            var labels: [String] = []
            for s in c.setups {
                if let seg = s.segment(key), seg.resolved, !labels.contains(seg.shownName) { labels.append(seg.shownName) }
            }
            return labels.isEmpty ? nil : (key, labels)
        }
    }

    /// The shares of the bars above, as numbers: one column pair per measured segment.
    static func sharesTable(_ c: Comparison, single: Bool) -> String {
        let segments = measuredSegments(c)
        guard !segments.isEmpty else { return "" }
        let head: [(String, [String])] = [(single ? "trace" : "setup", [])]
            + segments.map { ($0.labels.joined(separator: " / ") + ", %", ["typical", "slowest 1 %"]) }
        var out = "<div class=\"scroll\"><table class=\"shares\">\(tableHead(head))<tbody>\n"
        for s in c.setups {
            var cells = [escape(s.name)]
            for (key, labels) in segments {
                guard let seg = s.segment(key), seg.resolved else {
                    cells += ["-", "-"]
                    continue
                }
                // Where the column stands for several things, say which one this path has.
                let which = labels.count > 1 ? "<br><small>\(escape(seg.shownName))</small>" : ""
                cells += [(seg.share.map(Charts.sharePercent) ?? "-") + which, seg.tailShare.map(Charts.sharePercent) ?? "-"]
            }
            out += "<tr>" + cells.enumerated().map { i, cell in i == 0 ? "<td class=\"text\">\(cell)</td>" : "<td>\(cell)</td>" }.joined() + "</tr>\n"
        }
        return out + "</tbody></table></div>\n"
    }

    /// Throughput, latency, ratios and the answer per setup. The shares are in their own table
    /// under the bars, so that this one fits the page.
    static func figuresTable(_ c: Comparison, single: Bool) -> String {
        var head: [(String, [String])] = [(single ? "trace" : "setup", []), ("vantage", []), ("requests", []), ("requests/s", []),
                                          ("p50 µs", []), ("p99 µs", [])]
        if let b = c.baseline { head.append(("ratio to \(b)", ["requests/s", "p50"])) }
        head += [("bottleneck", ["typical", "slowest 1 %"]), ("network the bottleneck?", [])]
        var out = "<section><h2>Figures</h2>\n<div class=\"scroll\"><table>\(tableHead(head))<tbody>\n"
        for s in c.setups {
            let choice = s.vantageChoice == SetupComparison.outermostChoice ? "" : "<br><small>\(escape(s.vantageChoice))</small>"
            var cells = [escape(s.name), escape(s.vantage ?? "-") + choice,
                         "\(s.requests)", s.requestsPerSecond.map { TextReport.fmt($0, 0) } ?? "-",
                         TextReport.us(s.p50Us), TextReport.us(s.p99Us)]
            if c.baseline != nil {
                cells += [s.vsBaseline?.throughput.map(ratio) ?? "-", s.vsBaseline?.p50.map(ratio) ?? "-"]
            }
            cells += [escape(s.verdict?.median.shownBottleneck ?? "-"),
                      escape(s.verdict?.tail.shownBottleneck ?? "-"),
                      s.verdict.map { $0.networkIsBottleneck.map { $0 ? "yes" : "no" } ?? "inconclusive" } ?? "-"]
            out += "<tr>" + cells.enumerated().map { i, cell in i < 2 ? "<td class=\"text\">\(cell)</td>" : "<td>\(cell)</td>" }.joined() + "</tr>\n"
        }
        return out + "</tbody></table></div></section>"
    }

    static func distributions(_ c: Comparison, reports: [Report], single: Bool) -> String {
        var figures: [String] = []
        if c.setups.count > 1 {
            let series = zip(c.setups, reports).enumerated().compactMap { k, pair -> Charts.LineSeries? in
                let (s, r) = pair
                guard let v = r.vantages.first(where: { $0.name == s.vantage }), !v.latencyCDF.isEmpty else { return nil }
                return Charts.LineSeries(name: "\(s.name) (\(v.name))", color: Palette.series(k),
                                         points: v.latencyCDF.map { ($0.us, $0.fraction * 100) })
            }
            figures.append(Charts.lines(title: "All setups, at their outermost vantage point",
                                        xLabel: "latency (µs, log scale)", yLabel: "requests at or below (%)",
                                        series: series, logX: true, yMax: 100))
        }
        for (s, r) in zip(c.setups, reports) {
            let series = r.vantages.enumerated().compactMap { k, v -> Charts.LineSeries? in
                v.latencyCDF.isEmpty ? nil
                    : Charts.LineSeries(name: v.name, color: Palette.series(k), dashed: k % 2 == 1,
                                        points: v.latencyCDF.map { ($0.us, $0.fraction * 100) })
            }
            figures.append(Charts.lines(title: "\(s.name): per vantage point", xLabel: "latency (µs, log scale)",
                                        yLabel: "requests at or below (%)", series: series, logX: true, yMax: 100,
                                        nested: true))
        }
        return """
            <section><h2>Latency distribution</h2>
            <p class="caption">Cumulative distribution of the latency at each vantage point: the share of requests answered within x µs. \
            Where the lines \(single ? "" : "of one setup ")coincide, the ones listed first are drawn wider, underneath.</p>
            <div class="grid">\(figures.map { "<figure>\($0)</figure>" }.joined())</div></section>
            """
    }

    static func netlink(_ c: Comparison, reports: [Report]) -> String {
        var figures: [String] = []
        var without: [String] = []
        var cutShort = false
        for (s, r) in zip(c.setups, reports) {
            let series = r.capture?.series.filter { !$0.points.isEmpty } ?? []
            guard !series.isEmpty else {
                without.append(s.name)
                continue
            }
            var packets: [Charts.LineSeries] = []
            var backlog: [Charts.LineSeries] = []
            for (k, i) in series.enumerated() {
                let color = Palette.series(k)
                let role = r.capture?.roles[i.interface].map { " (\($0))" } ?? ""
                // Rates need whole intervals; the backlog is a level, true at every sample.
                let rates = completeIntervals(i.points)
                if rates.count < i.points.count { cutShort = true }
                packets.append(Charts.LineSeries(name: "\(i.interface)\(role) rx", color: color,
                                                 points: rates.map { ($0.t, $0.rxPacketsPerSecond) }))
                packets.append(Charts.LineSeries(name: "\(i.interface)\(role) tx", color: color, dashed: true,
                                                 points: rates.map { ($0.t, $0.txPacketsPerSecond) }))
                if rates.contains(where: { $0.droppedPerSecond > 0 }) {
                    packets.append(Charts.LineSeries(name: "\(i.interface) drops", color: Palette.drops, dotted: true,
                                                     points: rates.map { ($0.t, $0.droppedPerSecond) }))
                }
                let queued = i.points.compactMap { p in p.backlogBytes.map { (p.t, Double($0)) } }
                if !queued.isEmpty {
                    backlog.append(Charts.LineSeries(name: "\(i.interface)\(role)", color: color, points: queued))
                }
            }
            figures.append(Charts.lines(title: "\(s.name): packets per second", xLabel: "time since the first sample (s)",
                                        yLabel: "packets per second", series: packets, integral: true, nested: true, xEndsAtData: true))
            let empty = backlog.allSatisfy { $0.points.allSatisfy { $0.1 == 0 } }
            figures.append(backlog.isEmpty
                ? Charts.empty(title: "\(s.name): qdisc backlog", message: "no qdisc statistics in the samples")
                : Charts.lines(title: "\(s.name): qdisc backlog", xLabel: "time since the first sample (s)",
                               yLabel: "backlog (bytes)", series: backlog, integral: true, nested: true,
                               note: empty ? "0 bytes in every sample: nothing waited in a qdisc" : nil, xEndsAtData: true))
        }
        var out = "<section><h2>Kernel counters over time (netlink)</h2>\n"
        if !figures.isEmpty {
            out += "<p class=\"caption\">Link counters as rates between samples; on a tap, rx is what the guest sent. "
            out += "Backlog: bytes waiting in the interface's qdisc. Where lines coincide (the same packets passing each interface), "
            out += "the ones listed first are drawn wider, underneath."
            if cutShort {
                out += " The last sample, taken as the capture stopped, closes an interval too short to give a rate: no rate is drawn for it."
            }
            out += "</p>\n"
            out += "<div class=\"grid\">\(figures.map { "<figure>\($0)</figure>" }.joined())</div>\n"
        }
        if !without.isEmpty {
            out += "<p class=\"caption\">No netlink samples in the trace of \(without.map(escape).joined(separator: ", ")) "
            out += "(made by another tool, or captured without netlink): <code>netprobe capture</code> records them.</p>"
        }
        return out + "</section>"
    }

    /// The points whose rate covers a whole interval: all but a last one whose interval is under
    /// half the usual (the sample taken as the capture stopped, a moment after the one before:
    /// its counters have barely moved, and its "rate" would read as a fall to 0).
    static func completeIntervals(_ points: [CaptureContext.SeriesPoint]) -> [CaptureContext.SeriesPoint] {
        guard points.count >= 3 else { return points }
        let intervals = zip(points, points.dropFirst()).map { $1.t - $0.t }
        let usual = intervals.dropLast().sorted()[(intervals.count - 1) / 2]
        return intervals.last! < usual / 2 ? Array(points.dropLast()) : points
    }

    /// A table head of two rows: a column without sub-columns spans both.
    static func tableHead(_ columns: [(String, [String])]) -> String {
        var top = "", sub = ""
        for (title, parts) in columns {
            if parts.isEmpty {
                top += "<th rowspan=\"2\">\(escape(title))</th>"
            } else {
                top += "<th colspan=\"\(parts.count)\">\(escape(title))</th>"
                sub += parts.map { "<th>\(escape($0))</th>" }.joined()
            }
        }
        return sub.isEmpty ? "<thead><tr>\(top)</tr></thead>" : "<thead><tr>\(top)</tr><tr>\(sub)</tr></thead>"
    }

    static func vantageTable(_ c: Comparison, reports: [Report], single: Bool) -> String {
        let head = [single ? "trace" : "setup", "vantage", "role / description", "packets", "dropped by capture", "requests", "requests/s",
                    "unpaired", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs"]
        var out = "<section><h2>Vantage points</h2>\n<div class=\"scroll\"><table><thead><tr>"
        out += head.map { "<th>\(escape($0))</th>" }.joined() + "</tr></thead><tbody>\n"
        for (s, r) in zip(c.setups, reports) {
            for v in r.vantages {
                let point = r.trace.vantagePoints.first { $0.name == v.name }
                let l = v.latencyUs
                let cells = [escape(s.name), escape(v.name), escape(point?.description ?? "-"), "\(v.packets)",
                             point?.dropped.map { "\($0)" } ?? "unknown", "\(v.requests.total)",
                             v.requests.perSecond.map { TextReport.fmt($0, 0) } ?? "-", "\(v.unpairedRequests)",
                             TextReport.us(l.p50), TextReport.us(l.p90), TextReport.us(l.p99), TextReport.us(l.p999),
                             TextReport.us(l.max)]
                out += "<tr>" + cells.enumerated().map { i, cell in i < 3 ? "<td class=\"text\">\(cell)</td>" : "<td>\(cell)</td>" }.joined() + "</tr>\n"
            }
        }
        return out + "</tbody></table></div></section>"
    }

    static func notes(_ c: Comparison, reports: [Report]) -> String {
        var items = c.notes.map { "<li>\(escape($0))</li>" }
        for (s, r) in zip(c.setups, reports) {
            var lines: [String] = []
            lines.append("from \(s.file)" + (s.file == r.trace.file ? "" : " (a report of \(r.trace.file))")
                         + " (\(r.trace.format), \(r.trace.packets) packets)")
            if let e = r.trace.error { lines.append("reading stopped: \(e); the figures cover what came before") }
            lines += r.trace.warnings.map { "warning: \($0)" }
            lines += r.vantages.flatMap { v in v.notes.map { "\(v.name): \($0)" } }
            lines += r.attribution?.notes ?? []
            lines += r.capture?.notes ?? []
            items.append("<li><b>\(escape(s.name))</b><ul>" + lines.map { "<li>\(escape($0))</li>" }.joined() + "</ul></li>")
        }
        return "<section><h2>Notes</h2>\n<ul class=\"small\">\(items.joined(separator: "\n"))</ul></section>"
    }

    // MARK: Text

    /// Escapes text for HTML (element content and quoted attribute values alike).
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }

    static func capitalized(_ s: String) -> String { s.prefix(1).uppercased() + s.dropFirst() }
    /// "94.0 %" with a no-break space, so the sign never wraps away from its number.
    static func percent(_ x: Double) -> String { percentNumber(x) + "\u{00A0}%" }
    static func percentNumber(_ x: Double) -> String { TextReport.fmt(x * 100, 1) }
    static func ratio(_ x: Double) -> String { TextReport.fmt(x, x < 0.1 ? 3 : 2) }

    static let style = """
        body { margin: 0; background: #f6f7f9; color: #1f2328; font: 15px/1.45 "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; }
        main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 40px; }
        h1 { font-size: 26px; margin: 0 0 6px; }
        h2 { font-size: 20px; margin: 34px 0 8px; border-bottom: 2px solid #d8dce1; padding-bottom: 4px; }
        h3 { font-size: 17px; margin: 0 0 6px; }
        .lead { font-size: 16px; margin: 0 0 10px; }
        .defs { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; font-size: 13px; color: #444; margin: 0; }
        .defs dt { font-weight: bold; } .defs dd { margin: 0; }
        .caption { color: #444; font-size: 13.5px; margin: 4px 0 8px; }
        .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(360px, 100%), 1fr)); gap: 14px; }
        .card { background: #fff; border: 1px solid #d8dce1; border-radius: 8px; padding: 12px 16px; }
        .answer { font-weight: bold; margin: 4px 0; }
        .caveats { background: #fff7ed; border-left: 4px solid #c2410c; border-radius: 0 6px 6px 0; padding: 4px 10px; margin: 6px 0 8px; }
        .caveat { color: #9a3412; margin: 2px 0; font-size: 14px; }
        .evidence { font-size: 13px; color: #333; padding-left: 18px; margin: 6px 0 0; }
        .badge { display: inline-block; font-size: 12px; font-weight: bold; padding: 2px 8px; border-radius: 10px; vertical-align: 2px; margin-left: 6px; color: #fff; }
        .badge.yes { background: #c62828; } .badge.no { background: #2e7d32; } .badge.unknown { background: #6b7280; }
        .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(520px, 100%), 1fr)); gap: 14px; }
        figure { margin: 0; background: #fff; border: 1px solid #d8dce1; border-radius: 8px; padding: 8px; }
        figure svg { width: 100%; height: auto; display: block; }
        svg text { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; fill: #1f2328; }
        .scroll { overflow-x: auto; max-width: 100%; }
        table.shares { margin-top: 10px; }
        table { border-collapse: collapse; background: #fff; font-size: 13px; width: 100%; }
        th, td { border: 1px solid #d8dce1; padding: 4px 8px; text-align: right; vertical-align: top; }
        th { background: #eef1f4; text-align: center; font-weight: bold; }
        td { white-space: nowrap; }
        td.text { text-align: left; }
        td small { color: #555; }
        .small { font-size: 13px; color: #333; }
        details { margin: 6px 0; } summary { cursor: pointer; }
        code { background: #eef1f4; padding: 0 4px; border-radius: 3px; }
        footer { margin-top: 36px; font-size: 12px; color: #666; }
        """
}

/// Colours that stay apart for colour-blind readers and in print.
enum Palette {
    static let throughput = "#3f6fb5"
    static let p50 = "#3f6fb5"
    static let p99 = "#f0a030"
    static let p90 = "#93b5e1"
    static let p999 = "#c2410c"
    static let max = "#6b2f12"
    /// A line across bars (the mean).
    static let marker = "#1f2328"
    static let drops = "#c62828"
    static let unattributed = "#c9ced6"

    /// A segment's colour: the virtual network in warm colours, the rest cool.
    static func segment(_ name: String) -> String {
        switch name {
        case "client": "#8e6bbf"
        case "bridge": "#e8590c"
        case "tap": "#f4c430"
        case "vnic-backend": "#b5651d"
        case "guest-stack": "#3f6fb5"
        case "redis": "#2e9d5b"
        default: "#9aa3ad"
        }
    }

    static let cycle = ["#3f6fb5", "#e8590c", "#2e9d5b", "#c2185b", "#7b5ea7", "#8d6e63", "#00897b", "#546e7a"]

    /// The k-th colour of a series (setups, vantage points, interfaces).
    static func series(_ k: Int) -> String { cycle[k % cycle.count] }
}

/// SVG charts for the HTML report: bars, stacked shares and lines, each with a title, labelled
/// axes and a legend.
enum Charts {
    struct BarSeries {
        var name: String
        var color: String
        var values: [Double?]
    }

    struct LineSeries {
        var name: String
        var color: String
        var dashed = false
        var dotted = false
        var points: [(Double, Double)]
    }

    /// One horizontal stacked bar: the segments' shares of the whole, in path order.
    struct ShareRow {
        var setup: String
        var group: String
        var parts: [SharePart]
    }

    static let width = 600.0

    /// A value drawn as a line across each category's bars (a mean, among percentiles).
    struct BarMarker {
        var name: String
        var values: [Double?]
    }

    /// Whether positive values span a decade or more: then bars on a linear axis would hide the
    /// small ones, and a log axis shows them all.
    static func spansDecades(_ values: [Double?]) -> Bool {
        let positive = values.compactMap { $0 }.filter { $0 > 0 }
        guard let low = positive.min(), let high = positive.max() else { return false }
        return high / low >= 10
    }

    /// Says that `axis` is logarithmic and how to read it.
    static func logNote(_ axis: String) -> String {
        "\(axis) is on a log scale: each step up multiplies the value by ten, so values that differ a hundredfold all stay visible; the value is written on each bar."
    }

    /// Vertical bars: one group per category, one bar per series, the value written on top.
    /// `log`: a logarithmic value axis, the bars rising from the decade under the smallest value
    /// (`yLabel` should say which scale). `marker`: a line across each group's bars, in the legend
    /// and named in the tooltip.
    static func bars(title: String, yLabel: String, categories: [String], subLabels: [String?], series: [BarSeries],
                     log: Bool = false, marker: BarMarker? = nil, width: Double = Charts.width,
                     format: (Double) -> String) -> String {
        var keys = series.count > 1 ? series.map { ChartLegend.Item(label: $0.name, color: $0.color) } : []
        if let marker { keys.append(ChartLegend.Item(label: marker.name, color: Palette.marker, line: true)) }
        let legend = keys.isEmpty ? nil : ChartLegend(keys, width: width - 94)
        // Room for a legend row even without one, so that charts side by side line up.
        let legendHeight = max(ChartLegend.rowHeight, legend?.height ?? 0)
        let frame = ChartFrame(width: width, height: 330 + legendHeight, left: 78, right: 16, top: 40 + legendHeight, bottom: 58)
        let values = series.flatMap { $0.values.compactMap { $0 } } + (marker?.values.compactMap { $0 } ?? [])
        let y: any ChartAxis = log
            ? LogAxis(min: values.filter { $0 > 0 }.min() ?? 1, max: values.max() ?? 1, tight: true)
            : LinearAxis(max: values.max() ?? 0)
        var svg = SVGDocument(width: frame.width, height: frame.height, title: title)
        svg.title(title)
        if let legend { svg.add(legend.svg(x: frame.left, y: 34)) }
        svg.yGrid(frame, ticks: y.ticks.map { (frame.y(y.position($0)), y.label($0)) })
        svg.yLabel(frame, yLabel)
        let band = frame.plotWidth / Double(max(1, categories.count))
        let barWidth = min(70, band * 0.7 / Double(max(1, series.count)))
        // Values too wide for their bar are written upwards.
        let upright = barWidth < SVGDocument.textWidth("00000", size: 11) + 2
        func top(_ v: Double) -> Double { frame.y(y.position(Swift.max(v, y.lowest))) }
        func value(_ i: Int, _ s: BarSeries) -> Double? { i < s.values.count ? s.values[i] : nil }
        for (i, name) in categories.enumerated() {
            let center = frame.left + band * (Double(i) + 0.5)
            let groupLeft = center - barWidth * Double(series.count) / 2
            for (k, s) in series.enumerated() {
                guard let v = value(i, s) else { continue }
                let x = groupLeft + barWidth * Double(k), y0 = top(v)
                svg.rect(x + 1, y0, barWidth - 2, frame.bottomY - y0, fill: s.color, tooltip: "\(name) \(s.name): \(format(v))")
            }
            if let marker, i < marker.values.count, let m = marker.values[i] {
                svg.line(groupLeft - 4, top(m), groupLeft + barWidth * Double(series.count) + 4, top(m), color: Palette.marker,
                         width: 2.5, tooltip: "\(name) \(marker.name): \(format(m))")
            }
            // Values last, with a light halo, so that a marker line never hides one.
            for (k, s) in series.enumerated() {
                let x = groupLeft + barWidth * Double(k)
                guard let v = value(i, s) else {
                    svg.text(x + barWidth / 2, frame.bottomY - 6, "n/a", size: 11, anchor: "middle", fill: "#666")
                    continue
                }
                if upright {
                    svg.text(x + barWidth / 2 + 4, top(v) - 4, format(v), size: 11, rotate: true, halo: true)
                } else {
                    svg.text(x + barWidth / 2, top(v) - 4, format(v), size: 11, anchor: "middle", halo: true)
                }
            }
            svg.text(center, frame.bottomY + 18, SVGDocument.fit(name, width: band - 6, size: 13), size: 13, anchor: "middle",
                     weight: "bold", tooltip: name)
            if i < subLabels.count, let sub = subLabels[i] {
                svg.text(center, frame.bottomY + 34, SVGDocument.fit(sub, width: band - 4, size: 11), size: 11, anchor: "middle",
                         fill: "#555", tooltip: sub)
            }
        }
        svg.axes(frame)
        return svg.finish()
    }

    /// One segment in a share bar: its key (which sets the colour), what it is on this path, its share (0...1).
    struct SharePart {
        var key: String
        var label: String
        var share: Double
    }

    /// "12.3", "0.35", "0.024": a share in percent, with the digits a small one needs to read as non-zero.
    static func sharePercent(_ x: Double) -> String {
        let p = x * 100
        return TextReport.fmt(p, p == 0 || p >= 1 ? 1 : p >= 0.1 ? 2 : 3)
    }

    /// Widths (fractions of the bar) for shares laid end to end: each share, cut where it would
    /// pass the end, except that a non-zero share narrower than `minimum` is widened to it, the
    /// room taken from the widest. A share of 0 stays 0.
    static func visibleWidths(_ shares: [Double], minimum: Double) -> [Double] {
        var used = 0.0
        var widths = shares.map { share -> Double in
            let w = Swift.max(0, Swift.min(share, 1 - used))
            used += w
            return w
        }
        var widened = 0.0
        for i in widths.indices where widths[i] > 0 && widths[i] < minimum {
            widened += minimum - widths[i]
            widths[i] = minimum
        }
        if widened > 0, let widest = widths.indices.max(by: { widths[$0] < widths[$1] }), widths[widest] - widened >= minimum {
            widths[widest] -= widened
        }
        return widths
    }

    /// Horizontal stacked bars of shares, two rows (typical, slowest 1 %) per setup. Each part is
    /// coloured by its key and named by its label; a share too thin to see is drawn `minimumWidth`
    /// wide with its true value in the tooltip. The legend lists what is drawn, and only that.
    static func shares(rows: [ShareRow]) -> String {
        let order = SegmentName.allCases.map(\.rawValue)
        let barHeight = 22.0, gap = 4.0, setupGap = 16.0, minimumWidth = 5.0
        let setupsCount = Set(rows.map(\.setup)).count
        let plotHeight = Double(rows.count) * (barHeight + gap) + Double(max(0, setupsCount - 1)) * setupGap
        // Left of the bars: the setup's name, then which group the bar is.
        let groupWidth = SVGDocument.textWidth("typical request", size: 12)
        let nameWidth = min(300, rows.map { SVGDocument.textWidth($0.setup, size: 13) * 1.1 }.max() ?? 0)
        let left = max(250, 24 + nameWidth + 16 + groupWidth + 8), right = 24.0
        let plotWidth = 1100 - left - right
        let notAttributed = SharePart(key: "", label: "not attributed", share: 0)

        // What each bar draws: the non-zero shares, then what no segment accounts for.
        let bars: [[(part: SharePart, width: Double)]] = rows.map { row in
            var parts = row.parts.filter { $0.share > 0 }
            let rest = 1 - parts.reduce(0) { $0 + $1.share }
            if !parts.isEmpty && rest >= 0.0005 { parts.append(SharePart(key: "", label: notAttributed.label, share: rest)) }
            let widths = visibleWidths(parts.map(\.share), minimum: minimumWidth / plotWidth)
            return zip(parts, widths).filter { $0.1 > 0 }.map { ($0.0, $0.1) }
        }
        var labels: [String: [String]] = [:]
        for part in bars.joined().map(\.part) where !(labels[part.key]?.contains(part.label) ?? false) {
            labels[part.key, default: []].append(part.label)
        }
        let keys = labels.keys.sorted { (order.firstIndex(of: $0) ?? order.count) < (order.firstIndex(of: $1) ?? order.count) }
        let legend = ChartLegend(keys.map { ChartLegend.Item(label: labels[$0]!.joined(separator: " / "), color: color($0)) },
                                 width: 1100 - left - right)
        let top = 40 + legend.height + 6
        let frame = ChartFrame(width: 1100, height: top + plotHeight + 50, left: left, right: right, top: top, bottom: 50)
        var svg = SVGDocument(width: frame.width, height: frame.height, title: "Where the time goes")
        svg.title("Share of the end-to-end time per segment")
        svg.add(legend.svg(x: frame.left, y: 34))
        let ticks = stride(from: 0.0, through: 100, by: 20).map { (frame.x($0 / 100), TextReport.fmt($0, 0) + " %") }
        svg.xGrid(frame, ticks: ticks)
        var yPos = frame.top
        var previous: String?
        for (row, parts) in zip(rows, bars) {
            if let previous, previous != row.setup { yPos += setupGap }
            if previous != row.setup {
                svg.text(frame.left - groupWidth - 24, yPos + barHeight - 6, SVGDocument.fit(row.setup, width: 300, size: 13),
                         size: 13, anchor: "end", weight: "bold", tooltip: row.setup)
            }
            previous = row.setup
            svg.text(frame.left - 8, yPos + barHeight - 6, row.group, size: 12, anchor: "end")
            if parts.isEmpty {
                svg.text(frame.left + 8, yPos + barHeight - 6, "no request could be attributed", size: 12, fill: "#666")
            }
            var x = 0.0
            for (part, width) in parts {
                let x0 = frame.x(x), x1 = Swift.min(frame.x(x + width), frame.x(1))
                let value = sharePercent(part.share) + " %"
                svg.rect(x0, yPos, x1 - x0, barHeight, fill: color(part.key), tooltip: "\(row.setup), \(row.group): \(part.label) \(value)")
                // The name and the share where they fit, else the share, else only the tooltip.
                let short = TextReport.fmt(part.share * 100, 1) + " %"
                let text = [part.label + " " + short, short].first { SVGDocument.textWidth($0, size: 12) + 10 <= x1 - x0 }
                if let text {
                    svg.text((x0 + x1) / 2, yPos + barHeight - 6, text, size: 12, anchor: "middle", weight: "bold",
                             fill: part.key == "tap" || part.key == "" ? "#1f2328" : "#ffffff")
                }
                x += width
            }
            yPos += barHeight + gap
        }
        svg.axes(frame, yAxis: false)
        svg.xLabel(frame, "share of the end-to-end time (%)")
        return svg.finish()

        func color(_ key: String) -> String { key.isEmpty ? Palette.unattributed : Palette.segment(key) }
    }

    /// Lines over a linear or logarithmic x axis.
    /// `integral`: the y values are counts, so ticks are whole numbers. `nested`: the lines may
    /// coincide (the same packets seen at several interfaces), so earlier ones are drawn wider,
    /// underneath, and stay visible. `note` is written across the plot.
    /// `xEndsAtData`: a linear x axis ends where the data does (time), not at the next round number.
    static func lines(title: String, xLabel: String, yLabel: String, series: [LineSeries], logX: Bool = false,
                      yMax: Double? = nil, integral: Bool = false, nested: Bool = false, note: String? = nil,
                      xEndsAtData: Bool = false) -> String {
        let all = series.flatMap(\.points)
        guard !all.isEmpty else { return empty(title: title, message: "no data") }
        let legend = ChartLegend(series.map { ChartLegend.Item(label: $0.name, color: $0.color, line: true, dashed: $0.dashed, dotted: $0.dotted) },
                                 width: width - 96)
        let top = 40 + legend.height
        let frame = ChartFrame(width: width, height: 320 + legend.height, left: 78, right: 18, top: top, bottom: 52)
        let xs = all.map(\.0)
        let x: any ChartAxis = logX ? LogAxis(min: xs.filter { $0 > 0 }.min() ?? 1, max: xs.max() ?? 1)
            : LinearAxis(max: xs.max() ?? 1, exact: xEndsAtData)
        let y = LinearAxis(max: yMax ?? all.map(\.1).max() ?? 0, integral: integral)
        var svg = SVGDocument(width: frame.width, height: frame.height, title: title)
        svg.title(title)
        svg.add(legend.svg(x: frame.left, y: 34))
        svg.yGrid(frame, ticks: y.ticks.map { (frame.y(y.position($0)), y.label($0)) })
        svg.xGrid(frame, ticks: x.ticks.map { (frame.x(x.position($0)), x.label($0)) })
        for (k, s) in series.enumerated() {
            let points = s.points.map { p in
                (frame.x(x.position(max(p.0, x.lowest))), frame.y(min(p.1, y.top) / y.top))
            }
            let width = !nested || series.count == 1 ? 2.4 : 4.4 - 3.0 * Double(k) / Double(series.count - 1)
            svg.polyline(points, color: s.color, width: width, dash: s.dotted ? "2 3" : s.dashed ? "7 4" : nil)
        }
        if let note { svg.text(frame.left + frame.plotWidth / 2, frame.top + frame.plotHeight / 2, note, size: 13, anchor: "middle", fill: "#555") }
        svg.axes(frame)
        svg.xLabel(frame, xLabel)
        svg.yLabel(frame, yLabel)
        return svg.finish()
    }

    /// A chart frame with a message instead of data.
    static func empty(title: String, message: String) -> String {
        var svg = SVGDocument(width: width, height: 120, title: title)
        svg.title(title)
        svg.text(width / 2, 75, message, size: 13, anchor: "middle", fill: "#666")
        return svg.finish()
    }
}

/// The plot area inside a chart.
struct ChartFrame {
    var width: Double, height: Double
    var left: Double, right: Double, top: Double, bottom: Double

    var plotWidth: Double { width - left - right }
    var plotHeight: Double { height - top - bottom }
    var bottomY: Double { height - bottom }
    /// x of a position 0...1 across the plot.
    func x(_ p: Double) -> Double { left + p * plotWidth }
    /// y of a position 0...1 up the plot.
    func y(_ p: Double) -> Double { bottomY - p * plotHeight }
}

/// An axis: where a value sits (0...1) and which values get a tick.
protocol ChartAxis {
    var ticks: [Double] { get }
    /// The smallest value the axis shows (values below are drawn there).
    var lowest: Double { get }
    func position(_ v: Double) -> Double
    func label(_ v: Double) -> String
}

/// 0 ... a round number above the data (or the data's end), with 4-8 round ticks.
struct LinearAxis: ChartAxis {
    var top: Double
    var step: Double
    var lowest: Double { 0 }

    /// `integral`: ticks only at whole numbers (for counts). `exact`: the axis ends at `value`
    /// itself (time: nothing was measured after the data), ticks at round numbers up to it.
    init(max value: Double, integral: Bool = false, exact: Bool = false) {
        let target = value > 0 && value.isFinite ? value : 1
        let raw = target / 5
        let magnitude = pow(10, floor(log10(raw)))
        let unit = [1.0, 2, 2.5, 5, 10].first { $0 * magnitude >= raw } ?? 10
        step = integral ? Swift.max(1, (unit * magnitude).rounded(.up)) : unit * magnitude
        top = exact ? target : (target / step).rounded(.up) * step
    }

    var ticks: [Double] { stride(from: 0, through: top + step * 1e-9, by: step).map { $0 } }
    func position(_ v: Double) -> Double { v / top }
    func label(_ v: Double) -> String { compactNumber(v) }
}

/// From the decade under the data to the decade over it (or, `tight`, to the first 1, 2 or 5
/// times a power of ten over it); ticks at the decades, with 2 and 5 in between when there are
/// few decades, and at the top.
struct LogAxis: ChartAxis {
    var low: Double
    var high: Double
    var lowest: Double { low }

    init(min: Double, max: Double, tight: Bool = false) {
        low = pow(10, floor(log10(Swift.max(min, 1e-3))))
        let top = Swift.max(max, min * 1.0001, 1e-3)
        high = pow(10, ceil(log10(top)))
        if tight, let round = [0.1, 0.2, 0.5].map({ $0 * high }).first(where: { $0 >= top * 0.9999 }) { high = round }
        if high <= low { high = low * 10 }
    }

    var ticks: [Double] {
        let few = log10(high) - log10(low) <= 3.01
        var out: [Double] = []
        var d = low
        while d <= high * 1.0001 {
            out.append(d)
            if few { out += [2 * d, 5 * d].filter { $0 <= high * 1.0001 } }
            d *= 10
        }
        // The top, unless too close to the last tick for both labels to be read.
        if let last = out.last, log10(high / last) >= (few ? 0.29 : 0.5) { out.append(high) }
        return out
    }

    func position(_ v: Double) -> Double { (log10(v) - log10(low)) / (log10(high) - log10(low)) }
    func label(_ v: Double) -> String { compactNumber(v) }
}

/// 1500 -> "1500", 25000 -> "25k", 2000000 -> "2M", 0.25 -> "0.25": short tick labels.
func compactNumber(_ v: Double) -> String {
    let (scaled, suffix) = v.magnitude >= 1e6 ? (v / 1e6, "M") : v.magnitude >= 1e4 ? (v / 1e3, "k") : (v, "")
    var digits = 0
    var shifted = scaled
    while digits < 3 && (shifted - shifted.rounded()).magnitude > 1e-6 * max(1, shifted.magnitude) {
        shifted *= 10
        digits += 1
    }
    return TextReport.fmt(scaled, digits) + suffix
}

/// A legend: coloured keys with labels, wrapped into rows.
struct ChartLegend {
    struct Item {
        var label: String
        var color: String
        var line = false
        var dashed = false
        var dotted = false
    }

    var items: [Item]
    var positions: [(x: Double, row: Int)] = []
    static let rowHeight = 20.0

    /// Lays `items` out in rows no wider than `width`.
    init(_ items: [Item], width: Double) {
        self.items = items
        var x = 0.0, row = 0
        let available = width
        for item in items {
            let w = 26 + SVGDocument.textWidth(item.label, size: 12) + 18
            if x > 0 && x + w > available {
                x = 0
                row += 1
            }
            positions.append((x, row))
            x += w
        }
    }

    var height: Double { items.isEmpty ? 0 : Double((positions.last?.row ?? 0) + 1) * Self.rowHeight }

    func svg(x: Double, y: Double) -> String {
        var out = ""
        for (item, p) in zip(items, positions) {
            let x0 = x + p.x, y0 = y + Double(p.row) * Self.rowHeight
            if item.line {
                let dash = item.dotted ? " stroke-dasharray=\"2 3\"" : item.dashed ? " stroke-dasharray=\"7 4\"" : ""
                out += "<line x1=\"\(n(x0))\" y1=\"\(n(y0 + 7))\" x2=\"\(n(x0 + 20))\" y2=\"\(n(y0 + 7))\" stroke=\"\(item.color)\" stroke-width=\"2.5\"\(dash)/>"
            } else {
                out += "<rect x=\"\(n(x0 + 2))\" y=\"\(n(y0 + 1))\" width=\"14\" height=\"12\" rx=\"2\" fill=\"\(item.color)\"/>"
            }
            out += "<text x=\"\(n(x0 + 26))\" y=\"\(n(y0 + 11.5))\" font-size=\"12\">\(HTMLReport.escape(item.label))</text>"
        }
        return out
    }
}

/// An SVG document built element by element; all text is escaped.
struct SVGDocument {
    var width: Double
    var height: Double
    var body = ""

    init(width: Double, height: Double, title: String) {
        self.width = width
        self.height = height
        body = "<svg viewBox=\"0 0 \(n(width)) \(n(height))\" role=\"img\" aria-label=\"\(HTMLReport.escape(title))\">"
    }

    /// Roughly how wide text is drawn in a sans-serif font (for layout, not exact).
    static func textWidth(_ s: String, size: Double) -> Double { Double(s.count) * size * 0.6 }

    mutating func add(_ raw: String) { body += raw }

    mutating func title(_ s: String) { text(12, 22, s, size: 15, weight: "bold") }

    /// Text at (x, y); `tooltip` (shown on hover) when it differs from the text drawn; `halo`: a
    /// white outline that keeps it legible over lines.
    mutating func text(_ x: Double, _ y: Double, _ s: String, size: Double, anchor: String = "start", weight: String? = nil,
                       fill: String? = nil, rotate: Bool = false, tooltip: String? = nil, halo: Bool = false) {
        body += "<text x=\"\(n(x))\" y=\"\(n(y))\" font-size=\"\(n(size))\" text-anchor=\"\(anchor)\""
        if let weight { body += " font-weight=\"\(weight)\"" }
        if halo { body += " stroke=\"#ffffff\" stroke-width=\"3\" stroke-linejoin=\"round\" paint-order=\"stroke\"" }
        if let fill { body += " style=\"fill:\(fill)\"" }
        if rotate { body += " transform=\"rotate(-90 \(n(x)) \(n(y)))\"" }
        body += ">"
        if let tooltip, tooltip != s { body += "<title>\(HTMLReport.escape(tooltip))</title>" }
        body += "\(HTMLReport.escape(s))</text>"
    }

    /// `s`, shortened with an ellipsis to about `width` when drawn at `size`.
    static func fit(_ s: String, width: Double, size: Double) -> String {
        guard textWidth(s, size: size) > width else { return s }
        let keep = max(1, Int(width / (size * 0.6)) - 1)
        return String(s.prefix(keep)) + "…"
    }

    mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, tooltip: String? = nil) {
        body += "<rect x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(Swift.max(0, w)))\" height=\"\(n(Swift.max(0, h)))\" fill=\"\(fill)\""
        if let tooltip { body += "><title>\(HTMLReport.escape(tooltip))</title></rect>" } else { body += "/>" }
    }

    /// A line from (x1, y1) to (x2, y2), with a tooltip.
    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, color: String, width: Double, tooltip: String) {
        body += "<line x1=\"\(n(x1))\" y1=\"\(n(y1))\" x2=\"\(n(x2))\" y2=\"\(n(y2))\" stroke=\"\(color)\" stroke-width=\"\(n(width))\">"
        body += "<title>\(HTMLReport.escape(tooltip))</title></line>"
    }

    mutating func polyline(_ points: [(Double, Double)], color: String, width: Double, dash: String?) {
        let list = points.map { "\(n($0.0)),\(n($0.1))" }.joined(separator: " ")
        body += "<polyline points=\"\(list)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(n(width))\" stroke-linejoin=\"round\""
        if let dash { body += " stroke-dasharray=\"\(dash)\"" }
        body += "/>"
    }

    /// Horizontal grid lines with labels on the left.
    mutating func yGrid(_ f: ChartFrame, ticks: [(Double, String)]) {
        for (y, label) in ticks {
            body += "<line x1=\"\(n(f.left))\" y1=\"\(n(y))\" x2=\"\(n(f.width - f.right))\" y2=\"\(n(y))\" stroke=\"#e3e6ea\"/>"
            text(f.left - 6, y + 4, label, size: 11, anchor: "end")
        }
    }

    /// Vertical grid lines with labels below.
    mutating func xGrid(_ f: ChartFrame, ticks: [(Double, String)]) {
        for (x, label) in ticks {
            body += "<line x1=\"\(n(x))\" y1=\"\(n(f.top))\" x2=\"\(n(x))\" y2=\"\(n(f.bottomY))\" stroke=\"#e3e6ea\"/>"
            text(x, f.bottomY + 16, label, size: 11, anchor: "middle")
        }
    }

    mutating func axes(_ f: ChartFrame, yAxis: Bool = true) {
        body += "<line x1=\"\(n(f.left))\" y1=\"\(n(f.bottomY))\" x2=\"\(n(f.width - f.right))\" y2=\"\(n(f.bottomY))\" stroke=\"#444\"/>"
        if yAxis { body += "<line x1=\"\(n(f.left))\" y1=\"\(n(f.top))\" x2=\"\(n(f.left))\" y2=\"\(n(f.bottomY))\" stroke=\"#444\"/>" }
    }

    mutating func xLabel(_ f: ChartFrame, _ s: String) { text(f.left + f.plotWidth / 2, f.height - 10, s, size: 12, anchor: "middle") }

    mutating func yLabel(_ f: ChartFrame, _ s: String) { text(18, f.top + f.plotHeight / 2, s, size: 12, anchor: "middle", rotate: true) }

    func finish() -> String { body + "</svg>" }
}

/// A coordinate for SVG: one decimal is plenty.
private func n(_ v: Double) -> String { TextReport.fmt(v.isFinite ? v : 0, 1) }
