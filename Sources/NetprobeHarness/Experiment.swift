import Foundation
import NetprobeCore
import NetprobeLab

/// The seed experiment: for each setup, a lab run (up, warm-up, capture under load, report,
/// down); then every setup compared against the host baseline. With guests named
/// (`experiment --guest NAME=SPEC`), every setup that has a guest runs once per guest, named
/// NAME-SETUP; the setups without one (host, veth) run once.
public struct Experiment {
    /// A guest the experiment boots, by the name its runs carry.
    public struct Guest: Sendable, Equatable {
        public var name: String
        public var options: LabGuestOptions

        public init(name: String, options: LabGuestOptions) {
            self.name = name
            self.options = options
        }

        /// Why `name` cannot name a guest's runs (it goes into file and lab names), or nil.
        public static func problem(withName name: String) -> String? {
            let allowed = name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
            guard !name.isEmpty, name.count <= 16, allowed else {
                return "a guest's name is 1 to 16 of a-z, 0-9 and _ (it names files NAME-SETUP.pcapng), not '\(name)'"
            }
            return nil
        }
    }

    /// One lab run of the experiment.
    public struct Run: Sendable, Equatable {
        /// What its trace, report and row are called: the setup, or NAME-SETUP for a named guest.
        public var name: String
        public var setup: LabSetup
        /// nil: the built-in guest, or none (host, veth).
        public var guest: Guest?
    }

    public var setups: [LabSetup]
    /// The guests to compare; empty: the built-in guest, runs named by their setup alone.
    public var guests: [Guest] = []
    /// The kernel events each capture records (`capture --kernel-events`).
    public var kernelEvents: KernelEventSelection = .essential
    public var load: LoadSpec
    public var duration: TimeSpan
    public var warmup: TimeSpan
    /// Where traces, reports, experiment.json, compare.json and experiment.html go.
    public var directory: String

    public init(setups: [LabSetup], load: LoadSpec, duration: TimeSpan, warmup: TimeSpan, directory: String) {
        self.setups = setups
        self.load = load
        self.duration = duration
        self.warmup = warmup
        self.directory = directory
    }

    /// One setup's outcome.
    public struct SetupResult: Codable, Sendable {
        public var setup: String
        /// done, skipped or failed.
        public var status: String
        public var reason: String?
        public var trace: String?
        public var seconds: Double
        public var report: Report?
    }

    /// What experiment.json holds.
    public struct Result: Codable, Sendable {
        public var netprobe: String
        public var startedAt: String
        public var load: String
        public var connections: Int
        public var pipeline: Int
        public var durationSeconds: Double
        public var setups: [SetupResult]
    }

    /// The runs, in order: each setup in turn, once per guest where it has one.
    public var runs: [Run] {
        setups.flatMap { setup -> [Run] in
            guard setup.hasGuest, !guests.isEmpty else { return [Run(name: setup.rawValue, setup: setup, guest: nil)] }
            return guests.map { Run(name: "\($0.name)-\(setup.rawValue)", setup: setup, guest: $0) }
        }
    }

    /// Runs every setup, writes experiment.json, compare.json and experiment.html into
    /// `directory`, and returns the result. Progress lines go to `say`. A stop signal skips the
    /// setups not yet started (the one running stops at its next step).
    public func run(say: @escaping (String) -> Void) throws -> Result {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var results: [SetupResult] = []
        let started = Date()
        StopSignals.install()
        let runs = runs
        for (k, run) in runs.enumerated() {
            let t0 = Date()
            let prefix = "[\(k + 1)/\(runs.count)] \(run.name)"
            let tell = { (s: String) in say("\(prefix): \(s) (\(TextReport.fmt(Date().timeIntervalSince(t0), 1)) s)") }
            if StopSignals.stopRequested {
                results.append(SetupResult(setup: run.name, status: "skipped", reason: "interrupted", seconds: 0))
                continue
            }
            var result = runSetup(run, say: tell)
            result.seconds = Date().timeIntervalSince(t0)
            results.append(result)
            tell(result.status + (result.reason.map { ": \($0)" } ?? ""))
        }
        let experiment = Result(
            netprobe: NetprobeVersion.string, startedAt: ISO8601DateFormatter().string(from: started), load: load.tool.rawValue,
            connections: load.connections, pipeline: load.pipeline, durationSeconds: duration.seconds, setups: results)
        try Data(try JSONOutput.encode(experiment).utf8).write(to: URL(fileURLWithPath: "\(directory)/experiment.json"))
        let done = results.filter { $0.report != nil }
        try ExperimentOutput.write(reports: done.compactMap(\.report), names: done.map(\.setup),
                                   traces: done.map { $0.trace ?? $0.setup },
                                   skipped: results.filter { $0.report == nil }.map { ($0.setup, $0.reason ?? $0.status) },
                                   directory: directory)
        return experiment
    }

    /// lab up -> warm-up -> capture under load -> report -> lab down, for one run.
    func runSetup(_ planned: Run, say: @escaping (String) -> Void) -> SetupResult {
        func result(_ status: String, _ reason: String?, trace: String? = nil, report: Report? = nil) -> SetupResult {
            SetupResult(setup: planned.name, status: status, reason: reason, trace: trace, seconds: 0, report: report)
        }
        if let reason = load.unavailableReason { return result("skipped", reason) }
        let run = LabRun(name: "exp-\(planned.name)", setup: planned.setup, directory: directory, load: load, say: say)
        if let guest = planned.guest { run.guest = guest.options }
        run.kernelEvents = kernelEvents
        let state: LabState
        do {
            state = try run.up()
        } catch {
            // A setup this host cannot provide is skipped with the lab's own explanation.
            return result("skipped", "\(error)")
        }
        defer { run.down() }
        say("Redis at \(state.redisAddress)\(state.hypervisor.map { ", guest under \($0)" } ?? ""); warming up")
        run.warmUp(seconds: warmup.seconds)
        say("capturing on \(run.localVantages.map { "\($0.interface) (\($0.role.rawValue))" }.joined(separator: ", ")) for \(duration)")
        do {
            let captured = try run.capture(planned.name, seconds: duration.seconds)
            return result("done", nil, trace: captured.trace, report: captured.report)
        } catch {
            switch error {
            case let .captureFailed(_, _, _, trace): return result("failed", "\(error)", trace: trace)
            case let .report(_, trace, _): return result("failed", "\(error)", trace: trace)
            default: return result("failed", "\(error)")
            }
        }
    }
}

/// The experiment's summary table on stdout.
public enum ExperimentSummary {
    public static func render(_ e: Experiment.Result) -> String {
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
                   r.verdict?.median.shownBottleneck ?? "-",
                   r.verdict?.tail.shownBottleneck ?? "-", answer])
        }
        return "\nnetprobe experiment: load \(e.load), \(e.connections) connections, pipeline \(e.pipeline), \(TextReport.fmt(e.durationSeconds, 0)) s per setup\n" + t.render(indent: 2)
    }
}

/// Writes the experiment's comparison: compare.json and experiment.html (setups side by side,
/// ratios against the host baseline, the verdicts, and a note for each setup that was skipped).
public enum ExperimentOutput {
    public static func write(reports: [Report], names: [String], traces: [String], skipped: [(String, String)], directory: String) throws {
        var comparison = Comparison(zip(zip(reports, names), traces).map { Comparison.Input(report: $0.0, file: $1, name: $0.1) },
                                    baseline: names.contains("host") ? "host" : nil)
        for (setup, reason) in skipped {
            comparison.notes.append("\(setup) was not run: \(reason.split(separator: "\n").first ?? "")")
        }
        try Data(try JSONOutput.encode(comparison).utf8).write(to: URL(fileURLWithPath: "\(directory)/compare.json"))
        try Data(HTMLReport.render(comparison, reports: reports).utf8).write(to: URL(fileURLWithPath: "\(directory)/experiment.html"))
    }
}
