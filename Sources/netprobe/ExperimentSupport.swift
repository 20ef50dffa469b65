import CNetprobeShims
import Foundation
import NetprobeCore

/// Stop requests (Ctrl-C) for long commands that run children.
enum CNetprobeSignals {
    static func install() { CNetprobe_install_stop_signals() }
    static var stopRequested: Bool { CNetprobe_stop_signal() != 0 }
}

/// The experiment's summary table on stdout.
enum ExperimentSummary {
    static func render(_ e: Netprobe.ExperimentCommand.ExperimentResult) -> String {
        var t = Table(["SETUP", "STATUS", "REQ/S", "p50 us", "p99 us", "BOTTLENECK (TYPICAL)", "BOTTLENECK (SLOWEST 1%)", "NETWORK THE BOTTLENECK?"])
        for s in e.setups {
            guard let r = s.report else {
                let reason = s.reason.map { String(($0.split(separator: "\n").first ?? "").prefix(90)) } ?? "-"
                t.add([s.setup, s.status, "-", "-", "-", "-", "-", reason])
                continue
            }
            let outer = r.attribution?.path.first?.interface
            let v = r.vantages.first { $0.name == outer } ?? r.vantages.max { $0.requests.total < $1.requests.total }
            let answer = r.verdict.map { $0.networkIsBottleneck.map { $0 ? "yes" : "no" } ?? "inconclusive" } ?? "-"
            t.add([s.setup, s.status, v?.requests.perSecond.map { TextReport.fmt($0, 0) } ?? "-",
                   v?.latencyUs.p50.map { TextReport.fmt($0, 1) } ?? "-", v?.latencyUs.p99.map { TextReport.fmt($0, 1) } ?? "-",
                   r.verdict?.median.bottleneck ?? "-", r.verdict?.tail.bottleneck ?? "-", answer])
        }
        return "\nnetprobe experiment: load \(e.load), \(e.connections) connections, pipeline \(e.pipeline), \(TextReport.fmt(e.durationSeconds, 0)) s per setup\n" + t.render(indent: 2)
    }
}

/// Writes the experiment's comparison: compare.json and experiment.html (setups side by side,
/// ratios against the host baseline, the verdicts, and a note for each setup that was skipped).
enum ExperimentOutput {
    static func write(reports: [Report], names: [String], traces: [String], skipped: [(String, String)], directory: String) throws {
        var comparison = Comparison(zip(zip(reports, names), traces).map { Comparison.Input(report: $0.0, file: $1, name: $0.1) },
                                    baseline: names.contains("host") ? "host" : nil)
        for (setup, reason) in skipped {
            comparison.notes.append("\(setup) was not run: \(reason.split(separator: "\n").first ?? "")")
        }
        try Data(try JSONOutput.encode(comparison).utf8).write(to: URL(fileURLWithPath: "\(directory)/compare.json"))
        try Data(HTMLReport.render(comparison, reports: reports).utf8).write(to: URL(fileURLWithPath: "\(directory)/experiment.html"))
    }
}
