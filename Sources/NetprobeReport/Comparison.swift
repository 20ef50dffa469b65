import NetprobeModel
import NetprobeTrace
import NetprobeAttribution
/// Network setups side by side (`netprobe compare`): for each setup its throughput and latency,
/// where the time goes, the verdict, and ratios against a baseline (normally `host`, Redis on
/// the same machine without a VM).
///
/// Every figure is copied from the setup's `Report`, never recomputed, so `compare` and `report`
/// always agree.
public struct Comparison: Codable, Sendable, Equatable {
    /// One report to compare and, optionally, the name its setup goes by.
    public struct Input: Sendable {
        public var report: Report
        /// The file it came from (a trace, or a report saved as JSON).
        public var file: String
        /// The setup's name; nil = `report.capture?.setup`, else derived from `file`.
        public var name: String?

        public init(report: Report, file: String, name: String? = nil) {
            self.report = report
            self.file = file
            self.name = name
        }
    }

    public var netprobe: String
    /// The setup the ratios are taken against; nil when the comparison has no baseline.
    public var baseline: String?
    /// Where each setup's throughput and latency come from.
    public var figuresDefinition: String
    public var latencyDefinition: String
    public var setups: [SetupComparison]
    /// Plain-language remarks: a missing baseline, renamed duplicates.
    public var notes: [String]

    public static let figuresDefinitionText =
        "throughput and latency at each setup's outermost vantage point: the first on the attribution path (the one nearest the client); for a trace without one, the vantage point with the most requests"

    /// Compares `inputs`, in their order. `baseline` names the setup the ratios are taken
    /// against; when no setup has that name the ratios are null and a note says why. A nil
    /// `baseline` compares nothing (a single report).
    public init(_ inputs: [Input], baseline: String? = "host") {
        netprobe = NetprobeVersion.string
        figuresDefinition = Self.figuresDefinitionText
        latencyDefinition = Report.latencyDefinitionText
        notes = []
        let wanted = inputs.map { $0.name ?? Self.setupName(report: $0.report, file: $0.file) }
        let names = Self.uniqueNames(wanted)
        for (name, unique) in zip(wanted, names) where name != unique {
            notes.append("more than one setup is called \(name): this one is shown as \(unique)")
        }
        var setups = zip(inputs, names).map { SetupComparison(name: $1, file: $0.file, report: $0.report) }
        let base = baseline.flatMap { b in setups.first { $0.name == b } }
        self.baseline = base?.name
        if let baseline, base == nil {
            notes.append("no setup is called \(baseline): there is no baseline, so the ratios are null (name one with --baseline, or call a setup \(baseline) with --name)")
        }
        for i in setups.indices {
            setups[i].vsBaseline = base.map { BaselineRatios(setup: setups[i], baseline: $0) }
        }
        // A baseline is the fast case the others are measured against; one that another setup beats
        // makes every ratio against it mislead (a noisy run, or a baseline that is not one).
        if let base {
            let beaten = setups.filter { s in
                s.name != base.name && ((s.vsBaseline?.throughput ?? 0) > 1 || (s.vsBaseline?.p50).map { $0 < 1 } ?? false)
            }
            for s in beaten {
                var how: [String] = []
                if let t = s.vsBaseline?.throughput, t > 1 {
                    how.append("\(TextReport.fmt(s.requestsPerSecond ?? 0, 0)) req/s against \(TextReport.fmt(base.requestsPerSecond ?? 0, 0))")
                }
                if let p = s.vsBaseline?.p50, p < 1 {
                    how.append("p50 \(TextReport.us(s.p50Us)) us against \(TextReport.us(base.p50Us)) us")
                }
                notes.append("the baseline \(base.name) is slower than \(s.name) (\(how.joined(separator: ", "))): a noisy or inverted baseline, so the ratios against it mislead; run it again or choose another with --baseline")
            }
        }
        self.setups = setups
    }

    /// The name a report's setup goes by: the setup netprobe recorded in the trace, else the
    /// file's name without its directory and extensions (`traces/bridge.pcapng` -> `bridge`).
    public static func setupName(report: Report, file: String) -> String {
        if let setup = report.capture?.setup, !setup.isEmpty { return setup }
        let base = file.split(separator: "/").last.map(String.init) ?? file
        var stem = Substring(base)
        for ext in [".json", ".gz", ".pcapng", ".pcap", ".cap"] where stem.hasSuffix(ext) && stem.count > ext.count {
            stem = stem.dropLast(ext.count)
        }
        return stem.isEmpty ? file : String(stem)
    }

    enum CodingKeys: String, CodingKey { case netprobe, baseline, figuresDefinition, latencyDefinition, setups, notes }

    /// A missing baseline is written as null, not left out.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(netprobe, forKey: .netprobe)
        try c.encode(baseline, forKey: .baseline)
        try c.encode(figuresDefinition, forKey: .figuresDefinition)
        try c.encode(latencyDefinition, forKey: .latencyDefinition)
        try c.encode(setups, forKey: .setups)
        try c.encode(notes, forKey: .notes)
    }

    /// Makes names unique by appending -2, -3 ... to repeats.
    static func uniqueNames(_ names: [String]) -> [String] {
        var seen: Set<String> = []
        return names.map { name in
            var candidate = name
            var k = 2
            while seen.contains(candidate) {
                candidate = "\(name)-\(k)"
                k += 1
            }
            seen.insert(candidate)
            return candidate
        }
    }
}

/// One setup's figures, copied from its report.
public struct SetupComparison: Codable, Sendable, Equatable {
    public var name: String
    /// The file given to compare (a trace or a saved JSON report).
    public var file: String
    /// The trace the report was made from (`report.trace.file`).
    public var trace: String
    /// The vantage point throughput and latency come from, and why that one.
    public var vantage: String?
    public var vantageChoice: String
    /// Requests seen at `vantage`.
    public var requests: Int
    /// Requests per second at `vantage` (`VantageReport.requests.perSecond`).
    public var requestsPerSecond: Double?
    /// Latency at `vantage`, microseconds (`VantageReport.latencyUs`).
    public var p50Us: Double?
    public var p99Us: Double?
    /// Where the time goes (`Report.segments`, as they are).
    public var segments: [SegmentSummary]
    /// Is the virtual network the bottleneck? (`Report.verdict`, as it is.)
    public var verdict: Verdict?
    /// Against the baseline setup; nil when the comparison has none.
    public var vsBaseline: BaselineRatios?
    /// The damage that stopped reading the trace, if any: the figures cover what came before.
    public var traceError: String?

    /// Picks the figures out of `report`.
    public init(name: String, file: String, report: Report) {
        self.name = name
        self.file = file
        trace = report.trace.file
        let (v, choice) = Self.figuresVantage(report)
        vantage = v?.name
        vantageChoice = choice
        requests = v?.requests.total ?? 0
        requestsPerSecond = v?.requests.perSecond
        p50Us = v?.latencyUs.p50
        p99Us = v?.latencyUs.p99
        segments = report.segments
        verdict = report.verdict
        traceError = report.trace.error
    }

    /// `vantageChoice` when the figures come from the first vantage point on the attribution path.
    public static let outermostChoice = "outermost on the attribution path"

    /// The outermost vantage point on the attribution path; else the one with the most requests.
    public static func figuresVantage(_ report: Report) -> (VantageReport?, String) {
        if let first = report.attribution?.path.first {
            if let v = report.vantages.first(where: { $0.name == first.interface }) {
                return (v, outermostChoice)
            }
        }
        let busiest = report.vantages.max { $0.requests.total < $1.requests.total }
        return (busiest, busiest == nil ? "the trace has no vantage point" : "the most requests (no attribution path)")
    }

    /// The segment called `name` (client, bridge, tap, guest-stack, redis), if the report has it.
    public func segment(_ name: String) -> SegmentSummary? { segments.first { $0.name == name } }

    enum CodingKeys: String, CodingKey {
        case name, file, trace, vantage, vantageChoice, requests, requestsPerSecond, p50Us, p99Us, segments, verdict,
             vsBaseline, traceError
    }

    /// Unknown figures are written as null, not left out.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(file, forKey: .file)
        try c.encode(trace, forKey: .trace)
        try c.encode(vantage, forKey: .vantage)
        try c.encode(vantageChoice, forKey: .vantageChoice)
        try c.encode(requests, forKey: .requests)
        try c.encode(requestsPerSecond, forKey: .requestsPerSecond)
        try c.encode(p50Us, forKey: .p50Us)
        try c.encode(p99Us, forKey: .p99Us)
        try c.encode(segments, forKey: .segments)
        try c.encode(verdict, forKey: .verdict)
        try c.encode(vsBaseline, forKey: .vsBaseline)
        try c.encodeIfPresent(traceError, forKey: .traceError)
    }
}

/// A setup against the baseline: ratios of throughput and of median latency.
public struct BaselineRatios: Codable, Sendable, Equatable {
    public var baseline: String
    /// Requests per second of the setup / of the baseline (below 1: slower than the baseline).
    public var throughput: Double?
    /// p50 latency of the setup / of the baseline (above 1: slower than the baseline).
    public var p50: Double?
    /// Why a ratio is null, when one is.
    public var note: String?

    public init(setup: SetupComparison, baseline: SetupComparison) {
        self.baseline = baseline.name
        throughput = Self.ratio(setup.requestsPerSecond, baseline.requestsPerSecond)
        p50 = Self.ratio(setup.p50Us, baseline.p50Us)
        var missing: [String] = []
        if throughput == nil { missing.append("requests per second") }
        if p50 == nil { missing.append("p50 latency") }
        note = missing.isEmpty ? nil
            : "no ratio for \(missing.joined(separator: " and ")): \(setup.name) or \(baseline.name) has no such figure (no paired requests)"
    }

    static func ratio(_ a: Double?, _ b: Double?) -> Double? {
        guard let a, let b, b > 0 else { return nil }
        return a / b
    }

    enum CodingKeys: String, CodingKey { case baseline, throughput, p50, note }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(baseline, forKey: .baseline)
        try c.encode(throughput, forKey: .throughput)
        try c.encode(p50, forKey: .p50)
        try c.encodeIfPresent(note, forKey: .note)
    }
}

/// Renders a `Comparison` as aligned text tables: `netprobe compare`'s default output.
public enum ComparisonText {
    public static func render(_ c: Comparison) -> String {
        var out = "netprobe \(c.netprobe) compare: \(c.setups.count) setup\(c.setups.count == 1 ? "" : "s")"
        out += c.baseline.map { ", against \($0)\n" } ?? ", no baseline\n"
        out += "\nThroughput and latency (at each setup's outermost vantage point)\n"
        var head = ["SETUP", "VANTAGE", "REQUESTS", "REQ/S", "p50 us", "p99 us"]
        if let b = c.baseline { head += ["REQ/S x \(b)", "p50 x \(b)"] }
        head += ["BOTTLENECK (TYPICAL)", "BOTTLENECK (SLOWEST 1%)", "NETWORK THE BOTTLENECK?"]
        var figures = Table(head)
        figures.left.insert(1)
        for s in c.setups {
            var row = [s.name, s.vantage ?? "-", "\(s.requests)", s.requestsPerSecond.map { TextReport.fmt($0, 0) } ?? "-",
                       TextReport.us(s.p50Us), TextReport.us(s.p99Us)]
            if c.baseline != nil { row += [ratio(s.vsBaseline?.throughput), ratio(s.vsBaseline?.p50)] }
            row += [s.verdict?.median.shownBottleneck ?? "-",
                    s.verdict?.tail.shownBottleneck ?? "-", answer(s.verdict)]
            figures.add(row)
        }
        out += figures.render(indent: 2)

        out += "\nWhere the time goes: % of the typical request / % of the slowest 1 % (- = not measured)\n"
        let segmentNames = SegmentName.allCases.map(\.rawValue)
        var shares = Table(["SETUP"] + segmentNames.map { $0.uppercased() })
        for s in c.setups {
            shares.add([s.name] + segmentNames.map { name in
                guard let seg = s.segment(name), seg.resolved else { return "-" }
                return "\(percent(seg.share)) / \(percent(seg.tailShare))"
            })
        }
        out += shares.render(indent: 2)
        // Columns are keyed by segment; say what a column is on a setup where it is something else.
        for s in c.setups {
            let renamed = s.segments.filter { $0.label != nil && $0.label != $0.name }
            if !renamed.isEmpty {
                out += "  (\(s.name): " + renamed.map { "\($0.name.uppercased()) is \($0.label!)" }.joined(separator: ", ") + ")\n"
            }
        }

        out += "\nIs the virtual network the bottleneck?\n"
        let width = c.setups.map(\.name.count).max() ?? 0
        for s in c.setups {
            let pad = String(repeating: " ", count: width - s.name.count)
            out += "  \(s.name)\(pad)  \(s.verdict?.answer ?? "no attribution in this report")\n"
            for caveat in s.verdict?.caveats ?? [] { out += "  \(String(repeating: " ", count: width))    CAVEAT: \(caveat)\n" }
        }
        let bounds = c.setups.filter { $0.verdict?.bypassBound != nil }
        if !bounds.isEmpty {
            out += "\nWhat a bypass could save (mean per request: the virtual network's measured segments, of the end-to-end time)\n"
            for s in bounds {
                let b = s.verdict!.bypassBound!
                func group(_ g: BypassSummary.Group?) -> String {
                    g.map { "\(TextReport.fmt($0.savedUs, 0)) of \(TextReport.fmt($0.endToEndUs, 0)) us (\(TextReport.fmt($0.share * 100, 1)) %)" } ?? "-"
                }
                let pad = String(repeating: " ", count: width - s.name.count)
                var line = "  \(s.name)\(pad)  typical \(group(b.typical)), slowest 1 % \(group(b.tail)); \(b.segments.joined(separator: " + "))"
                if !b.unmeasured.isEmpty { line += "; not an upper bound: \(b.unmeasured.joined(separator: ", ")) not measured" }
                out += line + "\n"
            }
        }
        for s in c.setups {
            if let e = s.traceError { out += "warning: \(s.name): reading stopped: \(e)\n" }
            if let note = s.vsBaseline?.note { out += "note: \(s.name): \(note)\n" }
        }
        for n in c.notes { out += "note: \(n)\n" }
        return TerminalText.escapeKeepingLineFeeds(out) // names and notes come from the traces
    }

    static func ratio(_ x: Double?) -> String {
        guard let x else { return "-" }
        return TextReport.fmt(x, x < 0.1 ? 3 : 2)
    }

    static func percent(_ x: Double?) -> String { x.map { TextReport.fmt($0 * 100, 1) } ?? "-" }

    /// yes / no / inconclusive; with a star when caveats limit it (they are listed below the table).
    static func answer(_ v: Verdict?) -> String {
        guard let v else { return "-" }
        return (v.networkIsBottleneck.map { $0 ? "yes" : "no" } ?? "inconclusive") + (v.caveats.isEmpty ? "" : " (caveats)")
    }
}
