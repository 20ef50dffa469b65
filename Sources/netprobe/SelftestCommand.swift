import ArgumentParser
import Foundation
import NetprobeCapture
import NetprobeCore
import NetprobeLab

extension Netprobe {
    /// `netprobe selftest`: injects known faults in the lab and checks that the report finds them.
    struct SelftestCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "selftest",
            abstract: "Inject known faults in the lab and check that the verdict names and sizes them.",
            discussion: """
                Brings up a lab of its own (netprobe lab up --setup bridge --name selftest), \
                captures a baseline under the built-in load (netprobe capture -- netprobe load, \
                4 connections), then injects each fault alone, captures and reports again, and \
                checks that the report puts the injected delay in the injected place and sizes it \
                within 15 %.

                tap-queue: a tbf qdisc (rate 1mbit, burst 1600 B) on the tap. The tap segment's \
                mean must match the mean wait that token bucket imposes on the request frames as \
                they arrived (replayed from the bridge's stamps and tc's parameters), and the \
                verdict must name tap.

                starved-guest: QEMU stopped (SIGSTOP) for 50 ms at a fixed period. Guest-stack p99 \
                less the baseline's p50 must match the timed stops, and the slowest 1 % must be \
                put on guest-stack.

                redis-stall: a second client runs a 50 ms Lua busy loop (EVAL) at a fixed period. \
                Redis p99 less the baseline's p50 must match how long Redis says each EVAL ran, \
                and the slowest 1 % must be put on redis.

                Prints a table of injected against measured, what each number is, and why a check \
                failed. Exit status: 0 every fault passed; 1 a check failed; 2 the selftest could \
                not run; 130 interrupted. The lab and the faults are removed in every case, Ctrl-C \
                included. Needs root; takes about 30 s with a TCG guest.

                Examples:
                  netprobe selftest
                  netprobe selftest --faults redis-stall --duration 6s --out selftest
                """)

        @Option(help: ArgumentHelp("Faults to inject, comma separated: tap-queue, starved-guest, redis-stall.", valueName: "LIST"))
        var faults: String = SelftestFault.allCases.map(\.rawValue).joined(separator: ",")

        @Option(help: ArgumentHelp("Load (and capture) time per run.", valueName: "TIME"))
        var duration: TimeSpan = TimeSpan(nanoseconds: 4_000_000_000)

        @Option(help: ArgumentHelp("Write traces, reports and selftest.json here (kept).", valueName: "DIR"))
        var out: String?

        @Flag(help: "Keep the traces and reports (in a temporary folder unless --out is given).")
        var keep = false

        func validate() throws {
            if faultList.isEmpty { throw ValidationError("Name at least one fault.") }
            for f in faultNames where SelftestFault(rawValue: f) == nil {
                throw ValidationError("Unknown fault \(f): choose from \(SelftestFault.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            if duration.seconds < 1 || duration.seconds > 120 { throw ValidationError("--duration must be between 1s and 2m.") }
        }

        var faultNames: [String] {
            faults.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        var faultList: [SelftestFault] { faultNames.compactMap(SelftestFault.init(rawValue:)) }

        /// The selftest's own constants.
        static let labName = "selftest"
        static let connections = 4
        static let tbfRate = "1mbit"
        static let tbfRateBytesPerSecond = 125_000.0
        static let tbfBurstBytes = 1600
        static let stopMs = 50.0
        static let stallMs = 50.0
        /// The share of requests a periodic stall should hold (so that they fill the slowest 1 %).
        static let targetHeldFraction = 0.05
        static let minimumHeldFraction = 0.015
        static let tolerance = 0.15

        func run() throws {
            guard geteuid() == 0 else {
                printError("netprobe selftest: needs root (it builds a lab in a network namespace, adds a qdisc, stops QEMU and captures)")
                throw ExitCode(2)
            }
            let directory: String
            if let out {
                directory = out
            } else {
                directory = NSTemporaryDirectory() + "netprobe-selftest-\(getpid())"
            }
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let keepFiles = keep || out != nil
            defer { if !keepFiles { try? FileManager.default.removeItem(atPath: directory) } }
            CNetprobeSignals.install()
            let session = SelftestSession(directory: directory, duration: duration, faults: faultList)
            var outcome = session.run()
            outcome.seconds = Date().timeIntervalSince(session.started)
            print(SelftestTable.render(outcome))
            if let data = try? JSONOutput.encode(outcome) {
                try? Data(data.utf8).write(to: URL(fileURLWithPath: "\(directory)/selftest.json"))
            }
            if keepFiles { print("Traces, reports and selftest.json are in \(directory)/") }
            if outcome.interrupted { throw ExitCode(130) }
            if outcome.error != nil { throw ExitCode(2) }
            if !outcome.passed { throw ExitCode(1) }
        }
    }
}

/// One row of the table: a fault, what was injected, what the report says.
struct SelftestRow: Codable {
    var fault: String
    var injectedWhere: String
    /// The injected size in microseconds (nil when it could not be established).
    var injectedUs: Double?
    /// How the injected size was set and known.
    var injectedHow: String
    var measuredSegment: String
    var measuredUs: Double?
    /// Which statistic "measured" is.
    var measuredHow: String
    var verdictSays: String
    var passed: Bool
    /// Why it failed (empty when it passed), and other facts worth reading.
    var reasons: [String]
    var details: [String]
    var trace: String?
}

struct SelftestOutcome: Codable {
    var netprobe: String
    var connections: Int
    var durationSeconds: Double
    var hypervisor: String?
    var baseline: SelftestRow?
    var rows: [SelftestRow]
    var definitions: [String]
    var error: String?
    var interrupted: Bool
    var seconds: Double
    var passed: Bool { error == nil && !interrupted && !rows.isEmpty && rows.allSatisfy(\.passed) }
}

/// lab up -> baseline -> each fault (inject, capture, remove, report, check) -> lab down.
final class SelftestSession {
    typealias C = Netprobe.SelftestCommand
    let directory: String
    let duration: TimeSpan
    let faults: [SelftestFault]
    let me: String
    let started = Date()

    init(directory: String, duration: TimeSpan, faults: [SelftestFault]) {
        self.directory = directory
        self.duration = duration
        self.faults = faults
        me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    func say(_ s: String) {
        FileHandle.standardError.write(Data("selftest: \(s) (\(TextReport.fmt(Date().timeIntervalSince(started), 1)) s)\n".utf8))
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    func run() -> SelftestOutcome {
        var outcome = SelftestOutcome(netprobe: NetprobeVersion.string, connections: C.connections, durationSeconds: duration.seconds,
                                      baseline: nil, rows: [], definitions: faults.map(\.definition), error: nil, interrupted: false, seconds: 0)
        say("lab up (\(C.labName), setup bridge)")
        let state: LabState
        do {
            state = try Lab.up(LabOptions(name: C.labName, setup: .bridge), progress: { _ in })
        } catch {
            _ = try? Lab.down(C.labName)
            outcome.error = "lab up failed: \(error)"
            return outcome
        }
        defer {
            say("lab down")
            _ = try? Lab.down(C.labName)
        }
        outcome.hypervisor = state.hypervisor
        do {
            let lab = try SelftestLab(state: state)
            say("Redis at \(state.redisAddress)\(state.hypervisor.map { " (\($0) guest)" } ?? ""); warming up")
            warmUp(lab)
            if CNetprobeSignals.stopRequested { outcome.interrupted = true; return outcome }
            say("baseline: capturing \(duration) under \(C.connections) connections")
            let base = try capture(lab, name: "baseline")
            let baseline = Baseline(report: base.report, trace: base.trace)
            outcome.baseline = baseline.row
            for fault in faults {
                if CNetprobeSignals.stopRequested { outcome.interrupted = true; return outcome }
                let row: SelftestRow
                switch fault {
                case .tapQueue: row = try tapQueue(lab, baseline)
                case .starvedGuest: row = try starvedGuest(lab, baseline)
                case .redisStall: row = try redisStall(lab, baseline)
                }
                say("\(fault.rawValue): \(row.passed ? "PASS" : "FAIL")\(row.reasons.isEmpty ? "" : ": " + row.reasons.joined(separator: "; "))")
                outcome.rows.append(row)
            }
        } catch {
            if CNetprobeSignals.stopRequested { outcome.interrupted = true } else { outcome.error = "\(error)" }
        }
        return outcome
    }

    // MARK: the lab, the load, the capture

    /// What the selftest needs from the lab.
    struct SelftestLab {
        var state: LabState
        var bridge: String
        var tap: String
        var redis: Endpoint
        var qemuPid: pid_t?
        init(state: LabState) throws {
            self.state = state
            let local = state.vantages.filter { $0.namespace == state.namespace }
            guard let b = local.first(where: { $0.role == "bridge" })?.interface, let t = local.first(where: { $0.role == "tap" })?.interface else {
                throw Failure(description: "the lab has no bridge and tap vantage points: \(state.vantages.map { "\($0.interface) (\($0.role))" })")
            }
            guard let r = Endpoint(parsing: state.redisAddress) else { throw Failure(description: "cannot read the lab's Redis address \(state.redisAddress)") }
            bridge = b
            tap = t
            redis = r
            qemuPid = state.processes.first { $0.what == "qemu" }?.pid
        }
    }

    func loadArguments(_ lab: SelftestLab, seconds: Double) -> [String] {
        [me, "load", "--target", lab.state.redisAddress, "--connections", "\(C.connections)", "--pipeline", "1",
         "--duration", "\(Int(seconds * 1000))ms", "--ratio", "1:1", "--quiet"]
    }

    func warmUp(_ lab: SelftestLab) {
        let null = open("/dev/null", O_WRONLY)
        defer { close(null) }
        _ = try? ChildProcess(["ip", "netns", "exec", lab.state.namespace] + loadArguments(lab, seconds: 1), stdout: null, stderr: null)
            .wait(timeout: 30)
    }

    struct Captured {
        var trace: String
        var report: Report
    }

    /// `netprobe capture` at the bridge and the tap, with `netprobe load` as the load, as a child
    /// process of this binary; then the report, written next to the trace.
    func capture(_ lab: SelftestLab, name: String, filter: String? = nil) throws -> Captured {
        let trace = "\(directory)/\(name).pcapng"
        var argv = [me, "capture", "--netns", lab.state.namespace, "-w", trace, "--redis", lab.state.redisAddress,
                    "--duration", "\(Int(duration.seconds) + 60)s", "--quiet",
                    "-i", lab.bridge, "--role", "\(lab.bridge)=bridge", "-i", lab.tap, "--role", "\(lab.tap)=tap"]
        if let filter { argv += ["-f", filter] }
        argv += ["--"] + loadArguments(lab, seconds: duration.seconds)
        let log = "\(directory)/\(name).capture.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let fd = open(log, O_WRONLY | O_TRUNC)
        defer { close(fd) }
        let child = try ChildProcess(argv, stdout: fd, stderr: fd)
        var waited = 0.0
        let limit = duration.seconds + 90
        while child.isRunning {
            if CNetprobeSignals.stopRequested || waited > limit {
                child.terminate(SIGTERM)
                child.wait(timeout: 10)
                break
            }
            usleep(20_000)
            waited += 0.02
        }
        let status = child.wait()
        if CNetprobeSignals.stopRequested { throw Failure(description: "interrupted") }
        guard status == 0 else {
            let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").suffix(4).joined(separator: " | ") ?? ""
            throw Failure(description: "capture \(name) exited with status \(status): \(tail)")
        }
        let (report, _) = try ReportBuilder.build(path: trace)
        try Data(try JSONOutput.encode(report).utf8).write(to: URL(fileURLWithPath: "\(directory)/\(name).json"))
        return Captured(trace: trace, report: report)
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

    // MARK: tap-queue

    func tapQueue(_ lab: SelftestLab, _ baseline: Baseline) throws -> SelftestRow {
        let ns = lab.state.namespace
        let add = ["ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", lab.tap, "root", "tbf",
                   "rate", C.tbfRate, "burst", "\(C.tbfBurstBytes)", "latency", "100ms"]
        say("tap-queue: \(add.dropFirst(4).joined(separator: " "))")
        let added = selftestRun(add)
        guard added.status == 0 else { throw Failure(description: "tc failed (\(added.status)): \(added.output)") }
        var removed = false
        func remove() {
            if !removed { selftestRun(["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", lab.tap, "root"]) }
            removed = true
        }
        defer { remove() }
        // Every frame that crosses the qdisc takes tokens: capture the few that are not Redis's
        // (ARP, IPv6 neighbour and router solicitations) too, so that the replay sees them.
        let captured = try capture(lab, name: SelftestFault.tapQueue.rawValue, filter: "tcp port \(lab.redis.port) or not ip")
        let tcStats = selftestRun(["ip", "netns", "exec", ns, "tc", "-s", "qdisc", "show", "dev", lab.tap]).output
        remove()
        let report = captured.report

        // The injected size: the token bucket replayed over the request path's arrivals.
        let path = try RequestPathPackets.read(path: captured.trace, bridge: lab.bridge, tap: lab.tap, redis: lab.redis)
        let replay = TokenBucketReplay(rateBytesPerSecond: C.tbfRateBytesPerSecond, burstBytes: C.tbfBurstBytes).run(path.arrivals)
        let injected = replay.requests > 0 ? replay.meanRequestWaitNs / 1000 : nil
        let tap = Self.segment(report, .tap)
        var reasons: [String] = []
        if tap?.resolved != true { reasons.append("the tap segment is unresolved: \(tap?.note ?? "missing")") }
        reasons += within(tap?.meanUs, injected, "tap mean")
        if report.verdict?.median.bottleneck != SegmentName.tap.rawValue {
            reasons.append("the verdict names \(report.verdict?.median.bottleneck ?? "nothing") for the typical request, not tap")
        }
        if report.verdict?.networkIsBottleneck != true { reasons.append("the verdict does not say the network is the bottleneck") }
        // Queueing missed at the tap would land in bridge (the same hop); guest-stack starts at the
        // tap's stamp, after the qdisc, so the queue cannot reach it (it changes with the guest's load).
        reasons += noLeak(report, baseline, into: [.bridge], injectedUs: injected, statistic: \.meanUs, label: "mean")
        var details = [
            "tbf rate \(C.tbfRate) (\(Int(C.tbfRateBytesPerSecond)) B/s), burst \(C.tbfBurstBytes) B replayed over the \(path.arrivals.count) frames that left \(lab.tap) towards the guest (\(replay.requests) requests; \(path.arrivals.filter { !$0.bridged }.count) sent by the host on the tap itself; \(path.bridgeOnly) seen at the bridge only)",
            "tc after the run: " + tcStats.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " / "),
        ]
        if let e = replay.meanModelErrorNs {
            details.append("the tap's stamps trail the replayed departures by \(us(e / 1000)) on average (timer and softirq latency, and forwarding)")
        }
        details += segmentDetails(report, baseline)
        return SelftestRow(
            fault: SelftestFault.tapQueue.rawValue, injectedWhere: "tap (\(lab.tap) qdisc)", injectedUs: injected,
            injectedHow: "tbf \(C.tbfRate) burst \(C.tbfBurstBytes) B: replayed mean wait",
            measuredSegment: "tap mean", measuredUs: tap?.meanUs, measuredHow: "mean of the tap segment over all requests",
            verdictSays: SelftestTable.verdict(report), passed: reasons.isEmpty, reasons: reasons, details: details, trace: captured.trace)
    }

    // MARK: starved-guest

    func starvedGuest(_ lab: SelftestLab, _ baseline: Baseline) throws -> SelftestRow {
        guard let pid = lab.qemuPid, kill(pid, 0) == 0 else {
            throw Failure(description: "the lab's QEMU process is not known or not running")
        }
        let gap = gapNs(perStall: C.connections, baseline: baseline)
        let stopNs = Int64(C.stopMs * 1e6)
        say("starved-guest: SIGSTOP QEMU (pid \(pid)) for \(TextReport.fmt(C.stopMs, 0)) ms, then let it run \(TextReport.fmt(Double(gap) / 1e6, 1)) ms, repeatedly")
        let stopper = DutyCycleStopper(pid: pid, stopNs: stopNs, runNs: gap)
        stopper.start()
        var finished = false
        defer { if !finished { stopper.finish() } }
        let captured = try capture(lab, name: SelftestFault.starvedGuest.rawValue)
        stopper.finish()
        finished = true
        if let e = stopper.error { throw Failure(description: e) }
        let report = captured.report

        let path = try RequestPathPackets.read(path: captured.trace, bridge: lab.bridge, tap: lab.tap, redis: lab.redis)
        let stops = stopper.stops
        try? Data(stops.map { "\($0.startNs),\($0.endNs)\n" }.joined().utf8)
            .write(to: URL(fileURLWithPath: "\(directory)/\(SelftestFault.starvedGuest.rawValue).stops.csv"))
        let during = stops.filter { s in path.firstRequestNs.map { s.startNs >= $0 } ?? false && path.lastRequestNs.map { s.startNs <= $0 } ?? false }
        let injected = during.isEmpty ? nil : Double(during.reduce(Int64(0)) { $0 + $1.endNs - $1.startNs }) / Double(during.count) / 1000
        let guest = Self.segment(report, .guestStack)
        let base = baseline.segment(.guestStack)?.p50Us
        let measured = guest?.p99Us.flatMap { p99 in base.map { p99 - $0 } }
        let requests = report.attribution?.requestsJoined ?? 0
        let held = heldFractionCheck(stalls: during.count, perStall: C.connections, requests: requests)
        var reasons = held.reasons
        reasons += within(measured, injected, "guest-stack p99 - baseline p50")
        if report.verdict?.tail.bottleneck != SegmentName.guestStack.rawValue {
            reasons.append("the verdict names \(report.verdict?.tail.bottleneck ?? "nothing") for the slowest 1 %, not guest-stack")
        }
        reasons += noLeak(report, baseline, into: [.bridge, .tap, .redis], injectedUs: injected, statistic: \.p99Us, label: "p99")
        var details = [
            "\(during.count) stops while requests flowed (\(stops.count) in all), each \(us(injected)) on average (min \(us(during.map { Double($0.endNs - $0.startNs) / 1000 }.min())), max \(us(during.map { Double($0.endNs - $0.startNs) / 1000 }.max()))); QEMU ran \(TextReport.fmt(Double(gap) / 1e6, 1)) ms between stops",
            "held requests: \(during.count) stops x \(C.connections) connections = \(TextReport.fmt(held.fraction * 100, 1)) % of \(requests)",
            "guest-stack p99 \(us(guest?.p99Us)), baseline p50 \(us(base))",
        ]
        details += segmentDetails(report, baseline)
        return SelftestRow(
            fault: SelftestFault.starvedGuest.rawValue, injectedWhere: "guest-stack (QEMU pid \(pid) stopped)", injectedUs: injected,
            injectedHow: "SIGSTOP \(TextReport.fmt(C.stopMs, 0)) ms every \(TextReport.fmt(C.stopMs + Double(gap) / 1e6, 1)) ms: timed stop",
            measuredSegment: "guest-stack p99 - base p50", measuredUs: measured,
            measuredHow: "guest-stack p99 less the baseline's guest-stack p50",
            verdictSays: SelftestTable.verdict(report), passed: reasons.isEmpty, reasons: reasons, details: details, trace: captured.trace)
    }

    // MARK: redis-stall

    func redisStall(_ lab: SelftestLab, _ baseline: Baseline) throws -> SelftestRow {
        let gap = gapNs(perStall: C.connections + 1, baseline: baseline)
        let busyUs = Int(C.stallMs * 1000)
        say("redis-stall: EVAL busy loop of \(TextReport.fmt(C.stallMs, 0)) ms from a second client, every \(TextReport.fmt(C.stallMs + Double(gap) / 1e6, 1)) ms")
        let staller = RedisStaller(namespace: lab.state.namespace, address: lab.state.redisAddress, busyUs: busyUs, gapNs: gap)
        staller.start()
        var finished = false
        defer { if !finished { staller.finish() } }
        let captured = try capture(lab, name: SelftestFault.redisStall.rawValue)
        staller.finish()
        finished = true
        if let e = staller.error { throw Failure(description: e) }
        let report = captured.report

        let path = try RequestPathPackets.read(path: captured.trace, bridge: lab.bridge, tap: lab.tap, redis: lab.redis)
        let stalls = path.count(staller.stalls)
        try? Data(staller.stalls.map { "\($0.startNs),\($0.endNs)\n" }.joined().utf8)
            .write(to: URL(fileURLWithPath: "\(directory)/\(SelftestFault.redisStall.rawValue).stalls.csv"))
        let eval = report.capture?.redisCommands.first { $0.command == "EVAL" }
        let injected = eval?.usecPerCall
        let redis = Self.segment(report, .redis)
        let base = baseline.segment(.redis)?.p50Us
        let measured = redis?.p99Us.flatMap { p99 in base.map { p99 - $0 } }
        let requests = report.attribution?.requestsJoined ?? 0
        let held = heldFractionCheck(stalls: stalls, perStall: C.connections + 1, requests: requests)
        var reasons = held.reasons
        if eval == nil { reasons.append("the trace has no Redis INFO for EVAL: the stall's length is unknown") }
        if redis?.resolved != true { reasons.append("the redis segment is unresolved: \(redis?.note ?? "missing")") }
        reasons += within(measured, injected, "redis p99 - baseline p50")
        if report.verdict?.tail.bottleneck != SegmentName.redis.rawValue {
            reasons.append("the verdict names \(report.verdict?.tail.bottleneck ?? "nothing") for the slowest 1 %, not redis")
        }
        // Without the waits rebuilt on Redis's timeline, the held requests' time would be guest-stack's.
        reasons += noLeak(report, baseline, into: [.bridge, .tap, .guestStack], injectedUs: injected, statistic: \.p99Us, label: "p99")
        var details = [
            "\(stalls) EVALs while requests flowed (\(staller.stalls.count) in all); Redis INFO: \(eval.map { "\($0.calls) calls, \(us($0.usecPerCall)) per call" } ?? "none"); the script loops until Redis's TIME has advanced \(busyUs) us",
            "held requests: \(stalls) EVALs x (\(C.connections) connections + the EVAL) = \(TextReport.fmt(held.fraction * 100, 1)) % of \(requests)",
            "redis p99 \(us(redis?.p99Us)), baseline p50 \(us(base))",
        ]
        if let notFromClient = report.attribution?.notes.first(where: { $0.contains("no matching record of the load generator") }) {
            details.append("attribution note: \(notFromClient)")
        }
        details += segmentDetails(report, baseline)
        return SelftestRow(
            fault: SelftestFault.redisStall.rawValue, injectedWhere: "redis (EVAL from a 2nd client)", injectedUs: injected,
            injectedHow: "EVAL busy \(TextReport.fmt(C.stallMs, 0)) ms every \(TextReport.fmt(C.stallMs + Double(gap) / 1e6, 1)) ms: INFO usec/call",
            measuredSegment: "redis p99 - base p50", measuredUs: measured, measuredHow: "redis p99 less the baseline's redis p50",
            verdictSays: SelftestTable.verdict(report), passed: reasons.isEmpty, reasons: reasons, details: details, trace: captured.trace)
    }

    func segmentDetails(_ report: Report, _ baseline: Baseline) -> [String] {
        report.segments.filter(\.resolved).map { s in
            let b = baseline.segment(SegmentName(rawValue: s.name) ?? .client)
            return "\(s.name): p50 \(us(s.p50Us)), p99 \(us(s.p99Us)), mean \(us(s.meanUs)) (baseline \(us(b?.p50Us)), \(us(b?.p99Us)), \(us(b?.meanUs)))"
        }
    }
}

/// Microseconds for people: "1393 us", "20.3 ms", "-".
fileprivate func us(_ x: Double?) -> String {
    guard let x else { return "-" }
    if abs(x) >= 10_000 { return TextReport.fmt(x / 1000, 2) + " ms" }
    return TextReport.fmt(x, abs(x) < 10 ? 2 : 0) + " us"
}

/// The table on stdout.
enum SelftestTable {
    static func verdict(_ r: Report) -> String {
        guard let v = r.verdict else { return "-" }
        let network = v.networkIsBottleneck.map { $0 ? "yes" : "no" } ?? "inconclusive"
        return "typical: \(v.median.bottleneck ?? "-"), slowest 1%: \(v.tail.bottleneck ?? "-"), network: \(network)"
    }

    static func render(_ o: SelftestOutcome) -> String {
        let header = ["FAULT", "INJECTED WHERE", "INJECTED SIZE", "MEASURED AS", "MEASURED SIZE", "OFF BY", "VERDICT SAYS", "RESULT"]
        var rows: [[String]] = []
        func error(_ r: SelftestRow) -> String {
            guard let m = r.measuredUs, let i = r.injectedUs, i > 0 else { return "-" }
            return (m >= i ? "+" : "") + TextReport.fmt((m - i) / i * 100, 1) + " %"
        }
        if let b = o.baseline {
            rows.append([b.fault, b.injectedWhere, "-", b.measuredSegment, us(b.measuredUs), "-", b.verdictSays, b.passed ? "ok" : "odd"])
        }
        for r in o.rows {
            rows.append([r.fault, r.injectedWhere, us(r.injectedUs), r.measuredSegment, us(r.measuredUs), error(r), r.verdictSays, r.passed ? "PASS" : "FAIL"])
        }
        var widths = header.map(\.count)
        for row in rows { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            "  " + cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return [2, 4, 5].contains(i) ? pad + c : c + pad
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        var out = "\nnetprobe selftest: lab bridge\(o.hypervisor.map { " (\($0) guest)" } ?? ""), load netprobe load \(o.connections) connections pipeline 1, \(TextReport.fmt(o.durationSeconds, 1)) s per run\n"
        out += line(header) + "\n"
        for r in rows { out += line(r) + "\n" }
        if let e = o.error { out += "\nThe selftest could not run to the end: \(e)\n" }
        if o.interrupted { out += "\nInterrupted: the lab and the faults were removed.\n" }
        for r in o.rows {
            out += "\n\(r.fault): \(r.passed ? "PASS" : "FAIL")\n"
            out += "  injected: \(r.injectedHow)\n  measured: \(r.measuredHow)\n"
            for reason in r.reasons { out += "  FAIL: \(reason)\n" }
            for d in r.details { out += "  - \(d)\n" }
        }
        if let b = o.baseline, !b.reasons.isEmpty {
            out += "\nbaseline: " + b.reasons.joined(separator: "; ") + "\n"
        }
        if !o.definitions.isEmpty {
            out += "\nWhat is compared (tolerance ±\(Int(Netprobe.SelftestCommand.tolerance * 100)) %):\n"
            for d in o.definitions { out += "  \(d)\n" }
        }
        let passed = o.rows.filter(\.passed).count
        let tolerance = "±\(Int(Netprobe.SelftestCommand.tolerance * 100)) %"
        if o.interrupted {
            out += "\nINTERRUPTED after \(TextReport.fmt(o.seconds, 0)) s: \(passed) of \(o.rows.count) faults run so far passed"
        } else if o.error != nil {
            out += "\nCOULD NOT RUN (\(TextReport.fmt(o.seconds, 0)) s): \(passed) of \(o.rows.count) faults run so far passed"
        } else {
            out += "\n\(o.passed ? "PASS" : "FAIL"): \(passed) of \(o.rows.count) faults found in the right place and sized within \(tolerance) (\(TextReport.fmt(o.seconds, 0)) s)"
        }
        return out
    }
}
