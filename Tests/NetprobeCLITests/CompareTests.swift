import Foundation
import Testing
import NetprobeCore
import NetprobeSystem

/// `netprobe compare` and the HTML report, run as a user runs them.
@Suite("netprobe compare and the HTML report")
struct CompareTests {
    /// Real traces named as setups: bridge + tap (two vantage points), the tap alone, loopback.
    static let traces = ["traces/two-iface-dumpcap-nodrop.pcapng", "traces/bridge-tap-nano.pcap", "traces/loopback-pipelined.pcap"]
    static let named = traces + ["--name", "bridge", "--name", "tap", "--name", "host"]

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// A JSON value written with sorted keys, to compare parsed values exactly.
    static func canonical(_ value: Any?) throws -> String {
        let value = try #require(value)
        return String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
    }

    static func setups(_ comparison: [String: Any]) throws -> [[String: Any]] {
        try #require(comparison["setups"] as? [[String: Any]])
    }

    @Test("--help matches the golden file")
    func help() throws {
        let r = try CLI.run(["compare", "--help"])
        #expect(r.status == 0)
        let golden = CLI.packageRoot.appendingPathComponent("Tests/NetprobeCLITests/golden/compare-help.txt")
        let expected = try String(contentsOf: golden, encoding: .utf8)
        #expect(r.stdout == expected, "compare --help changed; if on purpose: .build/debug/netprobe compare --help > \(golden.path)")
    }

    @Test("json: each setup's figures are those of netprobe report on its trace")
    func jsonEqualsReport() throws {
        let r = try CLI.run(["compare", "--format", "json"] + Self.named)
        #expect(r.status == 0, "\(r.stderr)")
        let comparison = try Self.json(r.stdout)
        #expect(comparison["baseline"] as? String == "host")
        let setups = try Self.setups(comparison)
        #expect(setups.map { $0["name"] as? String } == ["bridge", "tap", "host"])
        for (trace, setup) in zip(Self.traces, setups) {
            let report = try Self.json(try CLI.run(["report", trace, "--format", "json"]).stdout)
            let vantages = try #require(report["vantages"] as? [[String: Any]])
            let v = try #require(vantages.first { $0["name"] as? String == setup["vantage"] as? String })
            let requests = try #require(v["requests"] as? [String: Any])
            let latency = try #require(v["latencyUs"] as? [String: Any])
            #expect(setup["requestsPerSecond"] as? Double == requests["perSecond"] as? Double)
            #expect(setup["requests"] as? Int == requests["total"] as? Int)
            #expect(setup["p50Us"] as? Double == latency["p50"] as? Double)
            #expect(setup["p99Us"] as? Double == latency["p99"] as? Double)
            #expect(try Self.canonical(setup["verdict"]) == Self.canonical(report["verdict"]))
            #expect(try Self.canonical(setup["segments"]) == Self.canonical(report["segments"]))
        }
        let host = try #require(setups.last?["vsBaseline"] as? [String: Any])
        #expect(host["throughput"] as? Double == 1)
        let bridge = try #require(setups.first?["vsBaseline"] as? [String: Any])
        let bridgeRate = try #require(setups[0]["requestsPerSecond"] as? Double)
        let hostRate = try #require(setups[2]["requestsPerSecond"] as? Double)
        #expect(bridge["throughput"] as? Double == bridgeRate / hostRate)
    }

    @Test("text: aligned table with figures, shares, bottleneck and ratios to host")
    func text() throws {
        let r = try CLI.run(["compare"] + Self.named)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("SETUP   VANTAGE  REQUESTS   REQ/S  p50 us  p99 us  REQ/S x host  p50 x host"))
        let rows = r.stdout.split(separator: "\n").filter { $0.hasPrefix("  bridge ") || $0.hasPrefix("  tap ") || $0.hasPrefix("  host ") }
        #expect(rows.count == 10) // figures, shares, verdicts, and the bypass bound of the one setup with two sides
        #expect(rows[0].contains("virbr0") && rows[0].contains("4001"))
        #expect(rows[2].contains(" 1.00 ") && rows[2].hasSuffix("server-side+redis             inconclusive"))
        #expect(r.stdout.contains("  bridge  no: the virtual network (bridge + tap) takes"))
        // The bridge trace has no kernel events: what a bypass saves is not bounded by it.
        #expect(rows[9].contains("typical ") && rows[9].hasSuffix("not an upper bound: vnic-backend not measured"))
    }

    @Test("html: one self-contained page, to a file with -w; report --format html too")
    func html() throws {
        let out = NSTemporaryDirectory() + "netprobe-compare-\(UUID().uuidString).html"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try CLI.run(["compare", "--format", "html", "-w", out] + Self.named)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        let html = try String(contentsOfFile: out, encoding: .utf8)
        Self.expectSelfContained(html)
        #expect(html.contains("<title>netprobe compare: bridge, tap, host</title>"))
        #expect(html.contains("Requests per second") && html.contains("latency (µs, log scale)"))

        let single = try CLI.run(["report", Self.traces[0], "--format", "html"])
        #expect(single.status == 0, "\(single.stderr)")
        Self.expectSelfContained(single.stdout)
        #expect(single.stdout.contains("virbr0") && single.stdout.contains("vnet0"))
    }

    static func expectSelfContained(_ html: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(html.hasPrefix("<!DOCTYPE html>"), sourceLocation: sourceLocation)
        #expect(html.hasSuffix("</html>\n"), sourceLocation: sourceLocation)
        for remote in ["http://", "https://", "src=\"//", "href=\"//", "@import", "url("] {
            #expect(!html.contains(remote), "the page refers to something outside it: \(remote)", sourceLocation: sourceLocation)
        }
        #expect(!html.contains("<script"), sourceLocation: sourceLocation)
        #expect(html.contains("<svg "), sourceLocation: sourceLocation)
    }

    @Test("saved JSON reports are inputs too, and compare exactly as their traces do")
    func jsonReportsAsInputs() throws {
        let saved = NSTemporaryDirectory() + "netprobe-bridge-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: saved) }
        let report = try CLI.run(["report", Self.traces[0], "--format", "json", "-w", saved])
        #expect(report.status == 0, "\(report.stderr)")
        let fromTrace = try Self.setups(Self.json(try CLI.run(["compare", "--format", "json", Self.traces[0], "--name", "bridge"]).stdout))
        let fromJSON = try Self.setups(Self.json(try CLI.run(["compare", "--format", "json", saved, "--name", "bridge"]).stdout))
        var a = try #require(fromTrace.first), b = try #require(fromJSON.first)
        #expect(b["file"] as? String == saved)
        a["file"] = nil
        b["file"] = nil
        #expect(try Self.canonical(a) == Self.canonical(b))
    }

    @Test("no host among the setups: ratios null with a note; an unknown --baseline is an error")
    func baseline() throws {
        let args = [Self.traces[0], Self.traces[1], "--name", "bridge", "--name", "tap"]
        let r = try CLI.run(["compare", "--format", "json"] + args)
        #expect(r.status == 0)
        let comparison = try Self.json(r.stdout)
        #expect(comparison["baseline"] is NSNull)
        #expect(try Self.setups(comparison).allSatisfy { $0["vsBaseline"] is NSNull })
        #expect((comparison["notes"] as? [String])?.contains { $0.contains("no setup is called host") } == true)
        let text = try CLI.run(["compare"] + args)
        #expect(text.stdout.contains("note: no setup is called host"))
        #expect(!text.stdout.contains("x host"))

        let other = try CLI.run(["compare", "--format", "json", "--baseline", "tap"] + args)
        #expect(try Self.setups(Self.json(other.stdout)).last?["vsBaseline"].flatMap { $0 as? [String: Any] }?["p50"] as? Double == 1)

        let unknown = try CLI.run(["compare", "--baseline", "vhost-net"] + args)
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("vhost-net") && unknown.stderr.contains("bridge, tap"))
    }

    @Test("an input that cannot be read: exit 1, and the message names the file")
    func badInput() throws {
        let garbage = try CLI.temp(Array("GET / HTTP/1.1\r\n".utf8), ".pcap")
        let notReport = try CLI.temp(Array("  {\"vantages\": 3}".utf8), ".json")
        let brokenJSON = try CLI.temp(Array("{\"netprobe\": ".utf8), ".json")
        defer { for f in [garbage, notReport, brokenJSON] { try? FileManager.default.removeItem(atPath: f) } }
        for (file, words) in [(garbage, "expected a pcap magic"), (notReport, "not a report of netprobe report --format json"),
                              (brokenJSON, "not valid JSON"), ("/nonexistent/bridge.pcapng", "No such file")] {
            let r = try CLI.run(["compare", Self.traces[0], file])
            #expect(r.status == 1, "\(file)")
            #expect(r.stderr.contains(file), "\(r.stderr)")
            #expect(r.stderr.contains(words), "\(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
    }

    @Test("argument mistakes are explained")
    func usage() throws {
        #expect(try CLI.run(["compare"]).stderr.contains("Missing expected argument '<TRACE> ...'"))
        #expect(try CLI.run(["compare", "a", "b", "--name", "x"]).stderr.contains("once per TRACE"))
        #expect(try CLI.run(["compare", "a", "b", "--name", "x", "--name", "x"]).stderr.contains("Two setups are called x"))
        #expect(try CLI.run(["compare", "a", "--format", "pdf"]).status != 0)
    }
}


/// Proof that the HTML renders, and renders what it should: headless Chromium lays out pages of real
/// traces; a script added to a copy of each page measures tables, figures and the charts' shapes in
/// CSS pixels (`PageLayout`), and a screenshot must be far from blank. The pages and screenshots
/// stay in $TMPDIR/netprobe-html-screenshot/ to be looked at.
@Suite("the HTML report renders in a browser", .serialized)
struct HTMLScreenshotTests {
    static let directory = NSTemporaryDirectory() + "netprobe-html-screenshot"

    /// Debian's chromium (scripts/deps installs it).
    static var chromium: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    static func requireChromium() -> String? {
        guard let chromium else {
            Issue.record("chromium is not installed: run scripts/deps (it installs Debian's chromium; CI does)")
            return nil
        }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return chromium
    }

    /// The bridge trace's report as `report --format json` writes it, plus what `netprobe capture`
    /// stores beside the packets: netlink samples of virbr0 and vnet0 every 0.1 s for 3 s, then
    /// the sample taken as the capture stopped, 0.2 ms after the one before (as in a real capture):
    /// too short an interval for a rate, its counters unchanged. Every full interval carries packets.
    static func bridgeReportWithNetlink() throws -> String {
        let r = try CLI.run(["report", CompareTests.traces[0], "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        var report = try CompareTests.json(r.stdout)
        func point(_ t: Double, rx: Double, tx: Double, backlog: Int) -> [String: Any] {
            ["t": t, "rxPacketsPerSecond": rx, "txPacketsPerSecond": tx, "droppedPerSecond": 0.0, "backlogBytes": backlog, "qlen": backlog / 1514]
        }
        var points: [[String: Any]] = []
        for k in 1...30 {
            let rx = 7000.0 + Double(k % 4) * 400, tx = 7100.0 + Double(k % 3) * 300
            points.append(point(Double(k) / 10, rx: rx, tx: tx, backlog: (k % 5) * 1514))
        }
        points.append(point(3.0002, rx: 0, tx: 0, backlog: 0))
        report["capture"] = [
            "setup": "bridge", "roles": ["virbr0": "bridge", "vnet0": "tap"], "interfaces": [] as [Any],
            "series": [["interface": "virbr0", "points": points], ["interface": "vnet0", "points": points]],
            "redisCommands": [] as [Any], "redisLatencyPercentilesUs": [:] as [String: Any], "notes": [] as [Any], "clientRequests": 0,
        ] as [String: Any]
        let path = directory + "/bridge-with-netlink.json"
        try JSONSerialization.data(withJSONObject: report).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The comparison of real traces (bridge + tap with netlink samples, the tap alone, loopback as host).
    static func comparisonPage() throws -> String {
        let page = directory + "/compare.html"
        let inputs = [try bridgeReportWithNetlink(), CompareTests.traces[1], CompareTests.traces[2],
                      "--name", "bridge", "--name", "tap", "--name", "host"]
        let r = try CLI.run(["compare", "--format", "html", "-w", page] + inputs)
        #expect(r.status == 0, "\(r.stderr)")
        return page
    }

    /// The last number of a tooltip ("host p50: 59.1" -> 59.1, "bridge: bridge 0.3 %" -> 0.3).
    static func value(_ title: String?) -> Double? {
        guard let title, let colon = title.range(of: ": ", options: .backwards) else { return nil }
        let words = title[colon.upperBound...].split(separator: " ")
        return words.reversed().lazy.compactMap { Double($0) }.first
    }

    @Test("wide tables fit the page at 1400 px, and scroll inside their box, not the page, when narrower")
    func tablesFit() throws {
        guard let chromium = Self.requireChromium() else { return }
        let page = try Self.comparisonPage()
        let wide = try PageLayout.measure(chromium, page: page, width: 1400, directory: Self.directory)
        try #require(wide.tables.count >= 2)
        for t in wide.tables {
            #expect(t.scrollWidth <= t.clientWidth + 1, "\(t.section): the table is \(t.scrollWidth) px wide in a \(t.clientWidth) px box")
            #expect(t.last.right <= t.box.right + 1 && t.last.right <= wide.viewport,
                    "\(t.section): its last column (\(t.lastHeader)) ends at \(t.last.right) px, the box at \(t.box.right), the window at \(wide.viewport)")
        }
        for width in [1000, 700] {
            let narrow = try PageLayout.measure(chromium, page: page, width: width, directory: Self.directory)
            #expect(narrow.pageWidth <= narrow.viewport + 1, "at \(width) px the page itself is \(narrow.pageWidth) px wide")
            for t in narrow.tables {
                #expect(t.box.right <= narrow.viewport + 1, "at \(width) px, \(t.section): the table's box ends at \(t.box.right) px")
            }
        }
    }

    @Test("latency bars: values spanning decades on a labelled log scale, heights in the order of the values")
    func latencyLogScale() throws {
        guard let chromium = Self.requireChromium() else { return }
        let layout = try PageLayout.measure(chromium, page: try Self.comparisonPage(), width: 1400, directory: Self.directory)
        let chart = try #require(layout.charts("Latency").first)
        let bars = chart.bars.compactMap { bar in Self.value(bar.title).map { (value: $0, height: bar.box.h) } }
        try #require(bars.count == 6, "p50 and p99 of 3 setups: \(chart.bars.map(\.title))")
        let low = try #require(bars.min { $0.value < $1.value }), high = try #require(bars.max { $0.value < $1.value })
        try #require(high.value / low.value >= 10, "these traces' latencies span more than a decade")
        #expect(chart.texts.contains { $0.contains("log scale") }, "the axis says which scale: \(chart.texts)")
        #expect(low.height >= 20, "the smallest bar (\(low.value) µs) is \(low.height) px tall: it must stay visible")
        for a in bars {
            for b in bars where a.value < b.value {
                #expect(a.height < b.height, "\(a.value) µs is drawn \(a.height) px tall, \(b.value) µs \(b.height) px")
            }
            // On a log axis a bar's height is linear in log(value).
            let expected = low.height + (high.height - low.height) * log10(a.value / low.value) / log10(high.value / low.value)
            #expect(abs(a.height - expected) < 1.5, "\(a.value) µs: \(a.height) px tall, \(expected) on a log axis")
        }
    }

    @Test("share bars: every share drawn visibly, the legend lists only what is drawn, labels named")
    func shares() throws {
        guard let chromium = Self.requireChromium() else { return }
        let layout = try PageLayout.measure(chromium, page: try Self.comparisonPage(), width: 1400, directory: Self.directory)
        let chart = try #require(layout.charts("Where the time goes").first)
        let drawn = Set(chart.bars.map(\.fill)), listed = Set(chart.legendKeys.map(\.fill))
        #expect(!drawn.isEmpty)
        #expect(listed == drawn, "legend colours \(listed.sorted()), bar colours \(drawn.sorted())")
        for bar in chart.bars {
            #expect(bar.box.w >= 4, "\(bar.title ?? "?") is \(bar.box.w) px wide")
            let share = try #require(Self.value(bar.title), "\(bar.title ?? "?")")
            #expect(share > 0 && share <= 100, "the tooltip gives the true share: \(bar.title ?? "?")")
        }
        // Segments are named by what they are on the path: the loopback trace's one segment is the server side with Redis.
        #expect(chart.texts.contains { $0.contains("server-side+redis") }, "\(chart.texts)")
        #expect(chart.texts.contains { $0.contains("guest-stack+redis") }, "\(chart.texts)")
    }

    @Test("packets per second: no rate for the last, incomplete interval; the time axis ends at the data")
    func rates() throws {
        guard let chromium = Self.requireChromium() else { return }
        let layout = try PageLayout.measure(chromium, page: try Self.comparisonPage(), width: 1400, directory: Self.directory)
        for label in ["bridge: packets per second", "bridge: qdisc backlog"] {
            let chart = try #require(layout.charts(label).first, "\(layout.charts.map(\.label))")
            let axis = try #require(chart.xAxis)
            try #require(!chart.polylines.isEmpty)
            let end = chart.polylines.compactMap { $0.last?.first }.max() ?? 0
            #expect(abs(end - axis.x2) <= 1, "\(label): the data ends at x = \(end), the axis at \(axis.x2)")
        }
        let packets = try #require(layout.charts("bridge: packets per second").first)
        let zero = try #require(packets.xAxis).y1
        for line in packets.polylines {
            let last = try #require(line.last)
            #expect(last[1] < zero - 1, "a rate of 0 drawn at the end (y = \(last[1]), the axis at \(zero)) where every full interval had packets")
        }
    }

    @Test("end-to-end latency per setup: percentiles and max as bars, the mean marked as a mean")
    func endToEnd() throws {
        guard let chromium = Self.requireChromium() else { return }
        let layout = try PageLayout.measure(chromium, page: try Self.comparisonPage(), width: 1400, directory: Self.directory)
        let chart = try #require(layout.charts("End-to-end latency").first, "\(layout.charts.map(\.label))")
        let titles = chart.bars.compactMap(\.title)
        for setup in ["bridge", "tap", "host"] {
            for name in ["p50", "p90", "p99", "p99.9", "max"] {
                #expect(titles.contains { $0.hasPrefix("\(setup) \(name): ") }, "\(setup) \(name) in \(titles)")
            }
        }
        #expect(chart.texts.contains { $0.hasPrefix("mean ") }, "\(chart.texts)")
        #expect(chart.texts.contains { $0.contains("log scale") }, "\(chart.texts)")
        // The bridge trace's end-to-end p50, as report --format json gives it.
        let report = try CompareTests.json(try CLI.run(["report", CompareTests.traces[0], "--format", "json"]).stdout)
        let p50 = try #require(((report["attribution"] as? [String: Any])?["endToEndUs"] as? [String: Any])?["p50"] as? Double)
        let drawn = try #require(Self.value(chart.bars.first { $0.title?.hasPrefix("bridge p50: ") == true }?.title))
        #expect(abs(drawn - p50) < 0.5)
    }

    @Test("one trace: charts sized like the comparison's, worded for one trace, the verdict's caveats shown")
    func singleTrace() throws {
        guard let chromium = Self.requireChromium() else { return }
        let page = Self.directory + "/one.html"
        let lossy = "traces/two-iface-dumpcap.pcapng"
        let r = try CLI.run(["report", lossy, "--format", "html", "-w", page])
        #expect(r.status == 0, "\(r.stderr)")
        let layout = try PageLayout.measure(chromium, page: page, width: 1400, directory: Self.directory)
        try #require(!layout.figures.isEmpty)
        for f in layout.figures {
            #expect(f.box.w <= layout.main.w * 0.55, "\(f.chart) is \(f.box.w) px wide in a \(layout.main.w) px page")
        }
        #expect(!layout.text.lowercased().contains("setup"), "a page about one trace speaks of setups")

        let json = try CompareTests.json(try CLI.run(["report", lossy, "--format", "json"]).stdout)
        let caveats = try #require((json["verdict"] as? [String: Any])?["caveats"] as? [String])
        try #require(caveats.count >= 2, "the lossy trace's verdict has caveats")
        #expect(layout.caveats.count == caveats.count)
        for (shown, caveat) in zip(layout.caveats, caveats) {
            #expect(shown.text.contains(caveat))
            #expect(shown.visible && shown.box.w > 0 && shown.box.h > 0 && shown.box.right <= layout.viewport)
            #expect(shown.color != layout.bodyColor, "a caveat looks like any other line")
        }
    }

    /// Takes a 1280 x 2400 screenshot of `page`; returns the PNG's bytes.
    static func screenshot(_ chromium: String, page: String, png: String) throws -> [UInt8] {
        try? FileManager.default.removeItem(atPath: png)
        let profile = directory + "/profile-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: profile) }
        _ = try PageLayout.run(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=\(profile)",
                                          "--screenshot=\(png)", "--window-size=1280,2400", URL(fileURLWithPath: page).absoluteString])
        return [UInt8](FileManager.default.contents(atPath: png) ?? Data())
    }

    @Test("headless Chromium draws the comparison of real traces: a PNG far from blank")
    func chromiumScreenshot() throws {
        guard let chromium = Self.requireChromium() else { return }
        let page = try Self.comparisonPage()
        let blankPage = Self.directory + "/blank.html"
        try Data("<!DOCTYPE html><html><body></body></html>\n".utf8).write(to: URL(fileURLWithPath: blankPage))
        let blank = try Self.screenshot(chromium, page: blankPage, png: Self.directory + "/blank.png")
        let png = try Self.screenshot(chromium, page: page, png: Self.directory + "/compare.png")

        let magic: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        try #require(png.count > 24, "no screenshot at \(Self.directory)/compare.png")
        #expect(Array(png.prefix(8)) == magic)
        #expect(Array(png[12..<16]) == Array("IHDR".utf8))
        let width = png[16..<20].reduce(0) { $0 << 8 | Int($1) }
        let height = png[20..<24].reduce(0) { $0 << 8 | Int($1) }
        #expect(width == 1280 && height == 2400)
        // A blank page compresses to a few KB; text, tables and charts to hundreds.
        #expect(blank.count > 0 && blank.count < 40_000)
        #expect(png.count > 100_000 && png.count > 10 * blank.count,
                "screenshot \(png.count) bytes vs blank \(blank.count): is the page empty?")
    }
}
