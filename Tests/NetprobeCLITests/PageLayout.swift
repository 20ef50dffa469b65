import Foundation
import Testing
import NetprobeSystem

/// What headless Chromium laid out for a page: boxes in CSS pixels and the charts' shapes, measured
/// by a script added to a copy of the page (the page itself has none) and read back from
/// `chromium --dump-dom`.
struct PageLayout: Decodable {
    struct Box: Decodable {
        var x: Double, y: Double, w: Double, h: Double
        var right: Double { x + w }
        var bottom: Double { y + h }
    }

    struct Table: Decodable {
        /// The heading of the section the table is in.
        var section: String
        /// The last header cell of the first header row, and where it is drawn.
        var lastHeader: String
        var last: Box
        /// The box the table sits in (it scrolls sideways when the table is wider).
        var box: Box
        var scrollWidth: Double
        var clientWidth: Double
    }

    struct Figure: Decodable {
        var chart: String
        var box: Box
    }

    /// A rect of a chart: `title` is its tooltip (bars have one, legend keys do not).
    struct Rect: Decodable {
        var fill: String
        var title: String?
        var box: Box
    }

    /// A line of a chart, in the chart's own (viewBox) units.
    struct Line: Decodable {
        var stroke: String
        var x1: Double, y1: Double, x2: Double, y2: Double
    }

    struct Chart: Decodable {
        var label: String
        var box: Box
        var rects: [Rect]
        var lines: [Line]
        /// Each polyline's points, in viewBox units.
        var polylines: [[[Double]]]
        var texts: [String]

        var bars: [Rect] { rects.filter { $0.title != nil } }
        var legendKeys: [Rect] { rects.filter { $0.title == nil } }
        /// The x axis: the dark horizontal line at the bottom of the plot.
        var xAxis: Line? { lines.filter { $0.stroke == "#444" && $0.y1 == $0.y2 }.max { $0.y1 < $1.y1 } }
    }

    struct Caveat: Decodable {
        var text: String
        var box: Box
        var color: String
        var visible: Bool
    }

    var viewport: Double
    var pageWidth: Double
    var main: Box
    var bodyColor: String
    var tables: [Table]
    var figures: [Figure]
    var charts: [Chart]
    var caveats: [Caveat]
    var text: String

    func charts(_ label: String) -> [Chart] { charts.filter { $0.label == label } }

    /// Runs in the page after layout; leaves its measurements, base64 JSON, on <body data-layout>.
    static let script = """
        (() => {
          const box = e => { const b = e.getBoundingClientRect(); return {x: b.left, y: b.top, w: b.width, h: b.height}; };
          const num = (e, a) => parseFloat(e.getAttribute(a) || "0");
          const out = {
            viewport: window.innerWidth, pageWidth: document.documentElement.scrollWidth,
            main: box(document.querySelector("main")), bodyColor: getComputedStyle(document.body).color,
            tables: [...document.querySelectorAll("table")].map(t => {
              const heads = [...t.querySelectorAll("thead tr:first-child th")];
              const last = heads[heads.length - 1];
              const holder = t.parentElement;
              return {section: t.closest("section").querySelector("h2").textContent, lastHeader: last.textContent,
                      last: box(last), box: box(holder), scrollWidth: holder.scrollWidth, clientWidth: holder.clientWidth};
            }),
            figures: [...document.querySelectorAll(".grid > figure")].map(f => ({
              chart: (f.querySelector("svg") || f).getAttribute("aria-label") || "", box: box(f)})),
            charts: [...document.querySelectorAll("svg")].map(svg => ({
              label: svg.getAttribute("aria-label") || "", box: box(svg),
              rects: [...svg.querySelectorAll("rect")].map(r => {
                const t = [...r.children].find(c => c.tagName === "title");
                return {fill: r.getAttribute("fill") || "", title: t ? t.textContent : null, box: box(r)};
              }),
              lines: [...svg.querySelectorAll("line")].map(l => ({stroke: l.getAttribute("stroke") || "",
                x1: num(l, "x1"), y1: num(l, "y1"), x2: num(l, "x2"), y2: num(l, "y2")})),
              polylines: [...svg.querySelectorAll("polyline")].map(p =>
                p.getAttribute("points").trim().split(/\\s+/).map(xy => xy.split(",").map(Number))),
              texts: [...svg.querySelectorAll("text")].map(t => t.textContent)})),
            caveats: [...document.querySelectorAll(".caveat")].map(c => ({text: c.textContent, box: box(c),
              color: getComputedStyle(c).color, visible: c.checkVisibility({visibilityProperty: true, opacityProperty: true})})),
            text: document.body.innerText
          };
          const bytes = new TextEncoder().encode(JSON.stringify(out));
          let binary = "";
          for (let i = 0; i < bytes.length; i += 8192) binary += String.fromCharCode(...bytes.subarray(i, i + 8192));
          document.body.setAttribute("data-layout", btoa(binary));
        })();
        """

    /// Lays `page` out in a `width` px wide window and measures it.
    static func measure(_ chromium: String, page: String, width: Int, directory: String) throws -> PageLayout {
        let html = try String(contentsOfFile: page, encoding: .utf8)
        let copy = directory + "/measure-\(UUID().uuidString).html"
        let profile = directory + "/profile-\(UUID().uuidString)"
        defer {
            try? FileManager.default.removeItem(atPath: copy)
            try? FileManager.default.removeItem(atPath: profile)
        }
        let marker = "</body>"
        try #require(html.contains(marker))
        try Data(html.replacingOccurrences(of: marker, with: "<script>\(script)</script>\n" + marker).utf8)
            .write(to: URL(fileURLWithPath: copy))
        let dom = try run(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=\(profile)",
                                     "--window-size=\(width),3000", "--dump-dom", URL(fileURLWithPath: copy).absoluteString])
        let start = try #require(dom.range(of: "data-layout=\""), "chromium did not run the measuring script on \(page)")
        let value = dom[start.upperBound...].prefix { $0 != "\"" }
        let json = try #require(Data(base64Encoded: String(value)))
        return try JSONDecoder().decode(PageLayout.self, from: json)
    }

    /// Runs chromium through the project's one spawner (at most 10 minutes: the machine is shared
    /// with builds) and returns what it printed.
    static func run(_ chromium: String, _ arguments: [String]) throws -> String {
        do {
            return try ChildProcess.run([chromium] + arguments, timeout: 600).stdout
        } catch {
            if case .timedOut = error { Issue.record("chromium did not finish in 10 minutes: \(arguments.last ?? "")") }
            throw error
        }
    }
}
