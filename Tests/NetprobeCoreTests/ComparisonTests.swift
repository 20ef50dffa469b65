import Foundation
import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

/// `Comparison` against the reports it is built from: real traces in traces/, named as setups.
@Suite("comparison of setups")
struct ComparisonTests {
    /// (setup name, trace file, the vantage point the figures must come from)
    static let setups = [
        ("bridge", "two-iface-dumpcap-nodrop.pcapng", "virbr0"), // bridge + tap: virbr0 is the outer one
        ("tap", "bridge-tap-nano.pcap", "if0"),
        ("host", "loopback-pipelined.pcap", "if0"),
    ]

    /// Each trace's report, built once as `netprobe report` builds it.
    static let reports: [Report] = setups.map { _, file, _ in
        try! ReportBuilder.build(path: "\(tracesDirectory)/\(file)").0
    }

    static func inputs(_ names: [String?]? = nil) -> [Comparison.Input] {
        zip(setups, reports).enumerated().map { k, pair in
            Comparison.Input(report: pair.1, file: "traces/\(pair.0.1)", name: names.map { $0[k] } ?? pair.0.0)
        }
    }

    @Test("every figure equals the report's own, exactly")
    func figuresEqualReport() throws {
        let c = Comparison(Self.inputs())
        #expect(c.setups.map(\.name) == ["bridge", "tap", "host"])
        for (k, s) in c.setups.enumerated() {
            let report = Self.reports[k]
            let expectedVantage = Self.setups[k].2
            #expect(s.vantage == expectedVantage)
            let v = try #require(report.vantages.first { $0.name == expectedVantage })
            #expect(s.requests == v.requests.total)
            #expect(s.requestsPerSecond == v.requests.perSecond)
            #expect(s.p50Us == v.latencyUs.p50)
            #expect(s.p99Us == v.latencyUs.p99)
            #expect(s.segments == report.segments)
            #expect(s.verdict == report.verdict)
            #expect(s.trace == report.trace.file)
            #expect(s.requestsPerSecond != nil && s.p50Us != nil)
        }
        // The bridge + tap trace is attributed over two vantage points; the outer one is on the path first.
        #expect(c.setups[0].vantageChoice == SetupComparison.outermostChoice)
        #expect(c.setups[0].verdict?.networkIsBottleneck == false)
        #expect(c.setups[2].verdict?.networkIsBottleneck == nil)
    }

    @Test("ratios against the host baseline: setup / host for throughput and p50")
    func ratios() throws {
        let c = Comparison(Self.inputs())
        #expect(c.baseline == "host")
        let host = try #require(c.setups.first { $0.name == "host" })
        for s in c.setups {
            let r = try #require(s.vsBaseline)
            #expect(r.baseline == "host")
            #expect(r.throughput == s.requestsPerSecond! / host.requestsPerSecond!)
            #expect(r.p50 == s.p50Us! / host.p50Us!)
            #expect(r.note == nil)
        }
        #expect(host.vsBaseline?.throughput == 1)
        #expect(host.vsBaseline?.p50 == 1)
        // Redis behind the bridge and tap of a TCG guest: far fewer requests, far slower.
        #expect(c.setups[0].vsBaseline!.throughput! < 0.1)
        #expect(c.setups[0].vsBaseline!.p50! > 5)

        let byBridge = Comparison(Self.inputs(), baseline: "bridge")
        #expect(byBridge.baseline == "bridge")
        #expect(byBridge.setups[2].vsBaseline?.p50 == host.p50Us! / c.setups[0].p50Us!)
        #expect(byBridge.setups[0].vsBaseline?.throughput == 1)
    }

    @Test("no setup called host: ratios are null, a note says why, and JSON writes the nulls")
    func missingBaseline() throws {
        let c = Comparison(Array(Self.inputs().prefix(2)))
        #expect(c.baseline == nil)
        #expect(c.setups.allSatisfy { $0.vsBaseline == nil })
        #expect(c.notes.contains { $0.contains("no setup is called host") })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(c), as: UTF8.self)
        #expect(json.contains("\"baseline\":null"))
        #expect(json.contains("\"vsBaseline\":null"))
        #expect(ComparisonText.render(c).contains("no baseline"))
        #expect(try JSONDecoder().decode(Comparison.self, from: Data(json.utf8)) == c)
    }

    @Test("a baseline without a figure gives a null ratio with a note, not a division by zero")
    func baselineWithoutFigures() throws {
        var empty = Self.reports[2]
        for i in empty.vantages.indices {
            empty.vantages[i].requests.perSecond = nil
            empty.vantages[i].latencyUs.p50 = nil
        }
        let c = Comparison([Comparison.Input(report: Self.reports[0], file: "a", name: "bridge"),
                            Comparison.Input(report: empty, file: "b", name: "host")])
        let r = try #require(c.setups[0].vsBaseline)
        #expect(r.throughput == nil && r.p50 == nil)
        #expect(r.note?.contains("requests per second and p50 latency") == true)
    }

    @Test("setup names: the one recorded in the trace, else the file's; repeats are made unique")
    func names() {
        var recorded = Self.reports[0]
        var context = CaptureContext(blocks: [])
        context.setup = "macvtap"
        recorded.capture = context
        #expect(Comparison.setupName(report: recorded, file: "x/whatever.pcapng") == "macvtap")
        #expect(Comparison.setupName(report: Self.reports[0], file: "traces/bridge.pcapng") == "bridge")
        #expect(Comparison.setupName(report: Self.reports[0], file: "run/veth.json") == "veth")
        #expect(Comparison.setupName(report: Self.reports[0], file: "lo.pcap") == "lo")
        let c = Comparison(Self.inputs([nil, nil, nil]).map { var i = $0; i.file = "same.pcap"; return i })
        #expect(c.setups.map(\.name) == ["same", "same-2", "same-3"])
        #expect(c.notes.contains { $0.contains("same-2") })
    }

    @Test("a report saved as JSON and read back compares the same, figure for figure")
    func jsonRoundTrip() throws {
        let decoded = try Self.reports.map { r in
            try JSONDecoder().decode(Report.self, from: JSONEncoder().encode(r))
        }
        let fromJSON = Comparison(zip(Self.inputs(), decoded).map { i, r in Comparison.Input(report: r, file: i.file, name: i.name) })
        #expect(fromJSON == Comparison(Self.inputs()))
    }

    @Test("text: one row per setup with its figures and ratios, and each verdict")
    func text() throws {
        let c = Comparison(Self.inputs())
        let text = ComparisonText.render(c)
        let lines = text.split(separator: "\n").map(String.init)
        for s in c.setups {
            let row = try #require(lines.first { $0.hasPrefix("  \(s.name) ") && $0.contains(s.vantage!) })
            #expect(row.contains(TextReport.fmt(s.requestsPerSecond!, 0)))
            #expect(row.contains(TextReport.us(s.p50Us)))
            #expect(row.contains(ComparisonText.ratio(s.vsBaseline?.throughput)))
            #expect(text.contains(s.verdict!.answer))
        }
        #expect(text.contains("REQ/S x host"))
        #expect(text.contains("GUEST-STACK"))
    }

    @Test("HTML: self-contained, every chart present, all text escaped")
    func html() {
        var inputs = Self.inputs()
        inputs[1].name = "<script>alert('x')</script>"
        let c = Comparison(inputs)
        let html = HTMLReport.render(c, reports: Self.reports)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(!html.contains("http://") && !html.contains("https://"))
        #expect(!html.contains("<script"))
        #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"))
        for title in ["Requests per second", "Latency", "End-to-end latency", "Share of the end-to-end time per segment",
                      "All setups, at their outermost vantage point", "Kernel counters over time", "Figures"] {
            #expect(html.contains(title), "missing: \(title)")
        }
        // 2 seed charts + end-to-end + attribution + 1 combined CDF + 3 per-vantage CDFs (no netlink in these traces).
        #expect(html.components(separatedBy: "<svg ").count - 1 == 8)
        #expect(HTMLReport.escape("<a href=\"x\">&'") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;")
    }

    @Test("HTML of a report with netlink series draws packets per second and backlog per interface")
    func htmlNetlink() {
        var report = Self.reports[0]
        var context = CaptureContext(blocks: [])
        context.setup = "bridge"
        var points: [CaptureContext.SeriesPoint] = []
        for k in 1...50 {
            let t = Double(k) / 10
            let dropped: Double = k == 20 ? 5 : 0
            let backlog = UInt64(k % 7) * 1500
            points.append(CaptureContext.SeriesPoint(t: t, rxPacketsPerSecond: 8000 + t, txPacketsPerSecond: 8000,
                                                     droppedPerSecond: dropped, backlogBytes: backlog, qlen: 0))
        }
        context.series = [CaptureContext.InterfaceSeries(interface: "virbr0", points: points),
                          CaptureContext.InterfaceSeries(interface: "vnet0", points: points)]
        report.capture = context
        let html = HTMLReport.render(report)
        #expect(html.contains("bridge: packets per second"))
        #expect(html.contains("bridge: qdisc backlog"))
        #expect(html.contains("vnet0 drops"))
        #expect(html.contains("backlog (bytes)"))
        #expect(!html.contains("No netlink samples"))
    }

    @Test("share bars: a thin non-zero share is widened to the minimum, the room taken from the widest; 0 stays 0")
    func visibleWidths() {
        let w = Charts.visibleWidths([0.3, 0.001, 0, 0.699], minimum: 0.01)
        #expect(w == [0.3, 0.01, 0, 0.699 - 0.009])
        #expect(abs(w.reduce(0, +) - 1) < 1e-12)
        // Shares past the end are cut; nothing is widened that is wide enough.
        #expect(Charts.visibleWidths([0.6, 0.6], minimum: 0.01) == [0.6, 0.4])
        #expect(Charts.sharePercent(0.00024) == "0.024" && Charts.sharePercent(0.0035) == "0.35" && Charts.sharePercent(0.5) == "50.0")
    }

    @Test("rates: the last point goes when its interval is under half the usual (the sample taken as the capture stopped)")
    func completeIntervals() {
        func points(_ times: [Double]) -> [CaptureContext.SeriesPoint] {
            times.map { CaptureContext.SeriesPoint(t: $0, rxPacketsPerSecond: 1, txPacketsPerSecond: 1, droppedPerSecond: 0, backlogBytes: nil, qlen: nil) }
        }
        let stopped = points([0.1, 0.2, 0.3, 0.4, 0.4002])
        #expect(HTMLReport.completeIntervals(stopped).map(\.t) == [0.1, 0.2, 0.3, 0.4])
        let whole = points([0.1, 0.2, 0.3, 0.4, 0.5])
        #expect(HTMLReport.completeIntervals(whole).map(\.t) == whole.map(\.t))
        #expect(HTMLReport.completeIntervals(points([0.1, 0.1001])).count == 2)
    }

    @Test("axes: time ends at the data; a tight log axis ends at 1, 2 or 5 times a power of ten, its top tick readable")
    func axes() {
        let time = LinearAxis(max: 3.0002, exact: true)
        #expect(time.top == 3.0002 && time.ticks == [0, 1, 2, 3])
        #expect(LinearAxis(max: 3.0002).top == 4)
        let log = LogAxis(min: 59, max: 11706, tight: true)
        #expect(log.low == 10 && log.high == 20000)
        #expect(log.ticks == [10, 100, 1000, 10000]) // 20k would crowd 10k
        #expect(LogAxis(min: 84, max: 28309, tight: true).ticks == [10, 100, 1000, 10000, 50000])
        #expect(LogAxis(min: 337, max: 3847, tight: true).ticks == [100, 200, 500, 1000, 2000, 5000])
        // The CDFs' axis, as before: whole decades.
        #expect(LogAxis(min: 11, max: 2835).ticks == [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000])
        #expect(Charts.spansDecades([47.7, nil, 1818]) && !Charts.spansDecades([344, 2043]))
    }
}
