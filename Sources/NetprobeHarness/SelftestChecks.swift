import Foundation
import NetprobeCore
import NetprobeLab
import NetprobeSystem

extension SelftestSession {
    // MARK: tap-queue

    func tapQueue(_ lab: SelftestLab, _ baseline: Baseline) throws -> SelftestRow {
        let ns = lab.state.namespace
        let add = ["ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", lab.tap, "root", "tbf",
                   "rate", C.tbfRate, "burst", "\(C.tbfBurstBytes)", "latency", "100ms"]
        say("tap-queue: \(add.dropFirst(4).joined(separator: " "))")
        let added = commandInLab(add)
        guard added.status == 0 else { throw Failure(description: "tc failed (\(added.status)): \(added.output)") }
        var removed = false
        func remove() {
            if !removed { commandInLab(["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", lab.tap, "root"]) }
            removed = true
        }
        defer { remove() }
        // Every frame that crosses the qdisc takes tokens: capture the few that are not Redis's
        // (ARP, IPv6 neighbour and router solicitations) too, so that the replay sees them.
        let captured = try capture(lab, name: SelftestFault.tapQueue.rawValue, filter: "tcp port \(lab.redis.port) or not ip")
        let tcStats = commandInLab(["ip", "netns", "exec", ns, "tc", "-s", "qdisc", "show", "dev", lab.tap]).output
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
        // Not part of the check: how long requests waited in the tun queue and whether QEMU's tap
        // reader ran meanwhile, measured without netprobe when bpftrace is there.
        let oracle: BackendWaitOracle?
        do {
            let reader = try tapReader(lab, baseline)
            oracle = try BackendWaitOracle(directory: directory, qemuPid: pid, backendTid: reader.tid, namespace: lab.state.namespace, tap: lab.tap)
        } catch {
            oracle = nil
            say("starved-guest: no independent look at the tun queue: \(error)")
        }
        let (captured, path) = try capture(lab, during: stopper, fault: .starvedGuest)
        let queue = try? oracle?.finish()
        let report = captured.report
        let stops = stopper.stops
        save(stops, fault: .starvedGuest, kind: "stops")
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
        // The requests that waited in the tun queue through a stop make the slowest 1 %'s waits:
        // the report must see the backend's thread stopped then, not busy or starved.
        let thread = Self.threadStateCheck(report, expected: .stopped, tail: true, onCPUShare: queue?.onCPUShare)
        reasons += thread.reasons
        var details = [
            "\(during.count) stops while requests flowed (\(stops.count) in all), each \(us(injected)) on average (min \(us(during.map { Double($0.endNs - $0.startNs) / 1000 }.min())), max \(us(during.map { Double($0.endNs - $0.startNs) / 1000 }.max()))); QEMU ran \(TextReport.fmt(Double(gap) / 1e6, 1)) ms between stops",
            "held requests: \(during.count) stops x \(C.connections) connections = \(TextReport.fmt(held.fraction * 100, 1)) % of \(requests)",
            "guest-stack p99 \(us(guest?.p99Us)), baseline p50 \(us(base))",
        ]
        if let q = queue {
            details.append("bpftrace: \(q.requests) request frames waited \(us(q.meanWaitNs.map { $0 / 1000 })) in the tun queue on average (vnic-backend mean \(us(Self.segment(report, .vnicBackend)?.meanUs)))"
                + (q.onCPUShare.map { "; QEMU's tap reader was on a CPU during \(TextReport.fmt($0 * 100, 1)) % of those waits" } ?? ""))
        }
        details.append(thread.detail)
        if let e = Self.backendEvidence(report) { details.append("the report's evidence: \(e)") }
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
        let (captured, path) = try capture(lab, during: staller, fault: .redisStall)
        let report = captured.report
        let stalls = path.count(staller.stalls)
        save(staller.stalls, fault: .redisStall, kind: "stalls")
        let eval = report.capture?.redisCommands.first { $0.command == "EVAL" }
        let injected = eval?.usecPerCall
        let redis = Self.segment(report, .redis)
        // Redis's segment is a mean per request (execution is INFO's mean per command); its wait
        // behind longer commands, rebuilt from the wire, is the per-request distribution to size.
        let base = baseline.segment(.redis)?.waitUs?.p50 ?? 0
        let measured = redis?.waitUs?.p99.map { $0 - base }
        let requests = report.attribution?.requestsJoined ?? 0
        let held = heldFractionCheck(stalls: stalls, perStall: C.connections + 1, requests: requests)
        var reasons = held.reasons
        if eval == nil { reasons.append("the trace has no Redis INFO for EVAL: the stall's length is unknown") }
        if redis?.resolved != true { reasons.append("the redis segment is unresolved: \(redis?.note ?? "missing")") }
        reasons += within(measured, injected, "redis wait p99 - baseline wait p50")
        if report.verdict?.tail.bottleneck != SegmentName.redis.rawValue {
            reasons.append("the verdict names \(report.verdict?.tail.bottleneck ?? "nothing") for the slowest 1 %, not redis")
        }
        // Without the waits rebuilt on Redis's timeline, the held requests' time would be guest-stack's.
        reasons += noLeak(report, baseline, into: [.bridge, .tap, .guestStack], injectedUs: injected, statistic: \.p99Us, label: "p99")
        var details = [
            "\(stalls) EVALs while requests flowed (\(staller.stalls.count) in all); Redis INFO: \(eval.map { "\($0.calls) calls, \(us($0.usecPerCall)) per call" } ?? "none"); the script loops until Redis's TIME has advanced \(busyUs) us",
            "held requests: \(stalls) EVALs x (\(C.connections) connections + the EVAL) = \(TextReport.fmt(held.fraction * 100, 1)) % of \(requests)",
            "redis wait p99 \(us(redis?.waitUs?.p99)), baseline wait p50 \(us(base))",
        ]
        if let notFromClient = report.attribution?.notes.first(where: { $0.contains("no matching record of the load generator") }) {
            details.append("attribution note: \(notFromClient)")
        }
        details += segmentDetails(report, baseline)
        return SelftestRow(
            fault: SelftestFault.redisStall.rawValue, injectedWhere: "redis (EVAL from a 2nd client)", injectedUs: injected,
            injectedHow: "EVAL busy \(TextReport.fmt(C.stallMs, 0)) ms every \(TextReport.fmt(C.stallMs + Double(gap) / 1e6, 1)) ms: INFO usec/call",
            measuredSegment: "redis wait p99", measuredUs: measured,
            measuredHow: "p99 of the requests' wait behind other commands on Redis's timeline, less the baseline's p50 wait",
            verdictSays: SelftestTable.verdict(report), passed: reasons.isEmpty, reasons: reasons, details: details, trace: captured.trace)
    }

    func segmentDetails(_ report: Report, _ baseline: Baseline) -> [String] {
        report.segments.filter(\.resolved).map { s in
            let b = baseline.segment(SegmentName(rawValue: s.name) ?? .client)
            return "\(s.name): p50 \(us(s.p50Us)), p99 \(us(s.p99Us)), mean \(us(s.meanUs)) (baseline \(us(b?.p50Us)), \(us(b?.p99Us)), \(us(b?.meanUs)))"
        }
    }

    /// Captures fault `fault` while `injector` runs (it is finished, and so undone, in every case),
    /// and reads the request path of the trace.
    func capture(_ lab: SelftestLab, during injector: some FaultInjector, fault: SelftestFault) throws
        -> (LabRun.Captured, RequestPathPackets) {
        injector.start()
        var finished = false
        defer { if !finished { injector.finish() } }
        let captured = try capture(lab, name: fault.rawValue)
        injector.finish()
        finished = true
        if let e = injector.error { throw Failure(description: e) }
        return (captured, try RequestPathPackets.read(path: captured.trace, bridge: lab.bridge, tap: lab.tap, redis: lab.redis))
    }

    /// Keeps the injected intervals beside the trace, as DIRECTORY/FAULT.KIND.csv (start,end in ns).
    func save(_ intervals: [(startNs: Int64, endNs: Int64)], fault: SelftestFault, kind: String) {
        try? Data(intervals.map { "\($0.startNs),\($0.endNs)\n" }.joined().utf8)
            .write(to: URL(fileURLWithPath: "\(directory)/\(fault.rawValue).\(kind).csv"))
    }
}

/// Runs `tc` (or any command) and returns its status and what it printed (stdout, then stderr).
@discardableResult
func commandInLab(_ argv: [String]) -> (status: Int32, output: String) {
    do {
        let r = try ChildProcess.run(argv, timeout: 60)
        return (r.status.code, r.stdout + r.stderr)
    } catch {
        return (127, "\(error)")
    }
}
