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
            let outer = r.attribution?.path.first.map { String($0.split(separator: " ").first ?? "") }
            let v = r.vantages.first { $0.name == outer } ?? r.vantages.max { $0.requests.total < $1.requests.total }
            let answer = r.verdict.map { $0.networkIsBottleneck.map { $0 ? "yes" : "no" } ?? "inconclusive" } ?? "-"
            t.add([s.setup, s.status, v?.requests.perSecond.map { TextReport.fmt($0, 0) } ?? "-",
                   v?.latencyUs.p50.map { TextReport.fmt($0, 1) } ?? "-", v?.latencyUs.p99.map { TextReport.fmt($0, 1) } ?? "-",
                   r.verdict?.median.bottleneck ?? "-", r.verdict?.tail.bottleneck ?? "-", answer])
        }
        return "\nnetprobe experiment: load \(e.load), \(e.connections) connections, pipeline \(e.pipeline), \(TextReport.fmt(e.durationSeconds, 0)) s per setup\n" + t.render(indent: 2)
    }
}

/// Writes the experiment's comparison files. Until `compare` lands this writes the reports only.
enum ExperimentOutput {
    static func write(reports: [Report], names: [String], skipped: [String], directory: String) throws {}
}
