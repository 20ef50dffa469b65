import Foundation
import NetprobeCapture
import NetprobeCore
import NetprobeLab
import NetprobeSystem

/// The selftest's own constants.
public enum Selftest {
    public static let labName = "selftest"
    public static let connections = 4
    static let tbfRate = "1mbit"
    static let tbfRateBytesPerSecond = 125_000.0
    static let tbfBurstBytes = 1600
    static let stopMs = 50.0
    static let stallMs = 50.0
    /// slow-backend: the tap reader's CPU time, at most `backendQuotaUs` per `backendPeriodUs`
    /// (its demand under the selftest's load is 10-20 % of a CPU here; 5 % holds it off the CPU
    /// for most of each period).
    static let backendQuotaUs = 1000
    static let backendPeriodUs = 20_000
    /// The injected wait must be at least this many times the baseline's vnic-backend mean, or
    /// the check would mostly compare the lab's own backend waits.
    static let backendMinimumGrowth = 3.0
    /// The share of requests a periodic stall should hold (so that they fill the slowest 1 %).
    static let targetHeldFraction = 0.05
    static let minimumHeldFraction = 0.015
    /// How far the report's share of the waiting in which the backend's thread ran may be from
    /// bpftrace's (on the same waits, from the same sched_switch events), in share points.
    static let runningShareTolerance = 0.05
    /// How far the measured size may be off the injected one.
    public static let tolerance = 0.15
}

/// One row of the table: a fault, what was injected, what the report says.
public struct SelftestRow: Codable, Sendable {
    public var fault: String
    public var injectedWhere: String
    /// The injected size in microseconds (nil when it could not be established).
    public var injectedUs: Double?
    /// How the injected size was set and known.
    public var injectedHow: String
    public var measuredSegment: String
    public var measuredUs: Double?
    /// Which statistic "measured" is.
    public var measuredHow: String
    public var verdictSays: String
    public var passed: Bool
    /// Why it failed (empty when it passed), and other facts worth reading.
    public var reasons: [String]
    public var details: [String]
    public var trace: String?
}

/// What selftest.json holds.
public struct SelftestOutcome: Codable, Sendable {
    public var netprobe: String
    public var connections: Int
    public var durationSeconds: Double
    public var hypervisor: String?
    public var baseline: SelftestRow?
    public var rows: [SelftestRow]
    public var definitions: [String]
    public var error: String?
    public var interrupted: Bool
    public var seconds: Double
    public var passed: Bool { error == nil && !interrupted && !rows.isEmpty && rows.allSatisfy(\.passed) }
}

/// lab up -> baseline -> each fault (inject, capture, remove, report, check) -> lab down.
public final class SelftestSession {
    typealias C = Selftest
    let directory: String
    let duration: TimeSpan
    let faults: [SelftestFault]
    /// The lab's name (`Selftest.labName` unless told otherwise: two selftests on one host need two).
    let labName: String
    public let started = Date()
    /// The lab run (bridge setup, the built-in load with `Selftest.connections` connections).
    let labRun: LabRun

    /// A session that writes its traces and reports into `directory`.
    public init(directory: String, duration: TimeSpan, faults: [SelftestFault], labName: String = Selftest.labName,
                guest: LabGuestOptions = LabGuestOptions(), netprobe: String = NetprobeExecutable.path) {
        self.directory = directory
        self.duration = duration
        self.faults = faults
        self.labName = labName
        let started = self.started
        labRun = LabRun(name: labName, setup: .bridge, directory: directory,
                     load: LoadSpec(tool: .builtin, connections: Selftest.connections, pipeline: 1), netprobe: netprobe,
                     say: { SelftestSession.say($0, since: started) })
        labRun.guest = guest
        // slow-backend and starved-guest check how the report tells their backends apart.
        labRun.kernelEvents = .scheduler
    }

    static func say(_ s: String, since started: Date) {
        FileHandle.standardError.write(Data("selftest: \(s) (\(TextReport.fmt(Date().timeIntervalSince(started), 1)) s)\n".utf8))
    }

    func say(_ s: String) { Self.say(s, since: started) }

    struct Failure: Error, CustomStringConvertible { var description: String }

    /// Runs the selftest; the lab and every fault are removed before it returns (also on a stop signal).
    public func run() -> SelftestOutcome {
        StopSignals.install()
        var outcome = SelftestOutcome(netprobe: NetprobeVersion.string, connections: C.connections, durationSeconds: duration.seconds,
                                      baseline: nil, rows: [], definitions: faults.map(\.definition), error: nil, interrupted: false, seconds: 0)
        say("lab \(labName), setup bridge")
        let state: LabState
        do {
            state = try labRun.up()
        } catch {
            outcome.error = "lab up failed: \(error)"
            return outcome
        }
        defer { labRun.down() }
        outcome.hypervisor = state.hypervisor
        do {
            let lab = try SelftestLab(state: state)
            say("Redis at \(state.redisAddress)\(state.hypervisor.map { " (\($0) guest)" } ?? ""); warming up")
            labRun.warmUp(seconds: 1)
            if StopSignals.stopRequested { outcome.interrupted = true; return outcome }
            say("baseline: capturing \(duration) under \(C.connections) connections")
            let base = try capture(lab, name: "baseline")
            let baseline = Baseline(report: base.report, trace: base.trace)
            outcome.baseline = baseline.row
            for fault in faults {
                if StopSignals.stopRequested { outcome.interrupted = true; return outcome }
                let row: SelftestRow
                switch fault {
                case .tapQueue: row = try tapQueue(lab, baseline)
                case .starvedGuest: row = try starvedGuest(lab, baseline)
                case .redisStall: row = try redisStall(lab, baseline)
                case .slowBackend: row = try slowBackend(lab, baseline)
                }
                say("\(fault.rawValue): \(row.passed ? "PASS" : "FAIL")\(row.reasons.isEmpty ? "" : ": " + row.reasons.joined(separator: "; "))")
                outcome.rows.append(row)
            }
        } catch {
            if StopSignals.stopRequested { outcome.interrupted = true } else { outcome.error = "\(error)" }
        }
        return outcome
    }

    // MARK: the lab and the capture

    /// What the selftest needs from the lab.
    struct SelftestLab {
        var state: LabState
        var bridge: String
        var tap: String
        /// The bridge's and the tap's vantage points, where the captures run.
        var vantages: [LabState.Vantage]
        var redis: Endpoint
        var qemuPid: pid_t?
        init(state: LabState) throws {
            self.state = state
            let local = state.vantages.filter { $0.namespace == state.namespace }
            guard let b = local.first(where: { $0.role == .bridge }), let t = local.first(where: { $0.role == .tap }) else {
                throw Failure(description: "the lab has no bridge and tap vantage points: \(state.vantages.map { "\($0.interface) (\($0.role.rawValue))" })")
            }
            guard let r = Endpoint(parsing: state.redisAddress) else { throw Failure(description: "cannot read the lab's Redis address \(state.redisAddress)") }
            bridge = b.interface
            tap = t.interface
            vantages = [b, t]
            redis = r
            qemuPid = state.processes.first { $0.what == "qemu" }?.pid
        }
    }

    /// `netprobe capture` at the bridge and the tap under the built-in load, then the report
    /// (the lab run's sequence, shared with the experiment).
    func capture(_ lab: SelftestLab, name: String, filter: String? = nil) throws -> LabRun.Captured {
        do {
            return try labRun.capture(name, seconds: duration.seconds, vantages: lab.vantages, filter: filter)
        } catch .interrupted {
            throw Failure(description: "interrupted")
        }
    }

    // MARK: reading a report

    struct Baseline {
        var report: Report
        var trace: String
        func segment(_ s: SegmentName) -> SegmentSummary? { report.segments.first { $0.name == s.rawValue } }
        /// Requests per second at the outer vantage point.
        var requestsPerSecond: Double? {
            let outer = report.attribution?.path.first?.interface
            return (report.vantages.first { $0.name == outer } ?? report.vantages.first)?.requests.perSecond
        }
        var row: SelftestRow {
            let v = report.verdict
            var reasons: [String] = []
            let network = v?.networkIsBottleneck
            if network != false { reasons.append("with no fault the verdict on the network should be 'no', it is \(network.map { $0 ? "yes" : "no" } ?? "inconclusive")") }
            return SelftestRow(
                fault: "(baseline)", injectedWhere: "nothing", injectedUs: 0, injectedHow: "no fault", measuredSegment: "tap mean",
                measuredUs: segment(.tap)?.meanUs, measuredHow: "the tap segment's mean with no qdisc limit",
                verdictSays: SelftestTable.verdict(report), passed: reasons.isEmpty, reasons: reasons,
                details: report.segments.filter(\.resolved).map { "\($0.name): p50 \(us($0.p50Us)), p99 \(us($0.p99Us)), mean \(us($0.meanUs))" }
                    + ["\(requestsPerSecond.map { TextReport.fmt($0, 0) } ?? "-") requests/s"],
                trace: trace)
        }
    }

    static func segment(_ r: Report, _ s: SegmentName) -> SegmentSummary? { r.segments.first { $0.name == s.rawValue } }

    /// Checks shared by every fault; returns the reasons it fails.
    func within(_ measured: Double?, _ injected: Double?, _ what: String) -> [String] {
        guard let m = measured, let i = injected, i > 0 else { return ["\(what): no value to compare (measured \(us(measured)), injected \(us(injected)))"] }
        let error = (m - i) / i
        if abs(error) <= C.tolerance { return [] }
        return ["\(what) is \(us(m)), \(TextReport.fmt(error * 100, 1)) % off the injected \(us(i)) (allowed ±\(Int(C.tolerance * 100)) %)"]
    }

    /// The other segments must not have grown (in `statistic`) by more than the tolerance of the injected size.
    func noLeak(_ report: Report, _ baseline: Baseline, into segments: [SegmentName], injectedUs: Double?,
                statistic: KeyPath<SegmentSummary, Double?>, label: String) -> [String] {
        guard let injectedUs else { return [] }
        var reasons: [String] = []
        for s in segments {
            guard let now = Self.segment(report, s)?[keyPath: statistic], let before = baseline.segment(s)?[keyPath: statistic] else { continue }
            if now - before > C.tolerance * injectedUs {
                reasons.append("\(s.rawValue) \(label) grew by \(us(now - before)) over the baseline: part of the injected delay was put there")
            }
        }
        return reasons
    }

    func heldFractionCheck(stalls: Int, perStall: Int, requests: Int) -> (fraction: Double, reasons: [String]) {
        let fraction = requests > 0 ? Double(stalls * perStall) / Double(requests) : 0
        if fraction < C.minimumHeldFraction {
            return (fraction, ["only \(TextReport.fmt(fraction * 100, 2)) % of the requests were held by the fault (\(stalls) stalls x \(perStall)): p99 cannot measure it honestly (needs >= \(TextReport.fmt(C.minimumHeldFraction * 100, 1)) %)"])
        }
        return (fraction, [])
    }

    /// The pause between stalls so that about `targetHeldFraction` of the requests are held.
    func gapNs(perStall: Int, baseline: Baseline) -> Int64 {
        let rate = max(500, baseline.requestsPerSecond ?? 5000)
        let perCycle = Double(perStall) / C.targetHeldFraction
        let seconds = (perCycle - Double(perStall)) / rate
        return Int64(min(0.1, max(0.005, seconds)) * 1e9)
    }

}
