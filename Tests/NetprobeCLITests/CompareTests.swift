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
        #expect(rows.count == 9) // figures, shares, verdicts
        #expect(rows[0].contains("virbr0") && rows[0].contains("4001"))
        #expect(rows[2].contains(" 1.00 ") && rows[2].hasSuffix("server-side+redis             inconclusive"))
        #expect(r.stdout.contains("  bridge  no: the virtual network (bridge + tap) takes"))
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
        #expect(html.contains("Requests per second") && html.contains("latency (µs)"))

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

/// Proof that the HTML renders: a headless Chromium screenshot of a comparison of real traces.
/// The page and the screenshot stay in $TMPDIR/netprobe-html-screenshot/ to be looked at.
@Suite("the HTML report renders in a browser")
struct HTMLScreenshotTests {
    static let directory = NSTemporaryDirectory() + "netprobe-html-screenshot"

    /// Debian's chromium (scripts/deps installs it).
    static var chromium: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// Takes a 1280 x 2400 screenshot of `page`; returns the PNG's bytes.
    static func screenshot(_ chromium: String, page: String, png: String) throws -> [UInt8] {
        try? FileManager.default.removeItem(atPath: png)
        let profile = directory + "/profile-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let p = try ChildProcess([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=\(profile)",
                                  "--screenshot=\(png)", "--window-size=1280,2400", URL(fileURLWithPath: page).absoluteString],
                                 stdout: .discard, stderr: .discard)
        if p.wait(timeout: 600) == nil {
            p.stop()
            Issue.record("chromium did not finish in 10 minutes for \(page)")
        }
        return [UInt8](FileManager.default.contents(atPath: png) ?? Data())
    }

    @Test("headless Chromium draws the comparison of real traces: a PNG far from blank")
    func chromiumScreenshot() throws {
        guard let chromium = Self.chromium else {
            Issue.record("chromium is not installed: run scripts/deps (it installs Debian's chromium; CI does)")
            return
        }
        try FileManager.default.createDirectory(atPath: Self.directory, withIntermediateDirectories: true)
        let page = Self.directory + "/compare.html"
        let r = try CLI.run(["compare", "--format", "html", "-w", page] + CompareTests.named)
        #expect(r.status == 0, "\(r.stderr)")

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
