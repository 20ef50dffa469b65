import Foundation
import Glibc
import NetprobeCore

extension SelftestSession {
    // MARK: slow-backend

    /// QEMU's thread that reads the tap: the one that made most of QEMU's copies out of the tun
    /// queue in the baseline trace's kernel events (under TCG the main loop, not the vCPU thread).
    func tapReader(_ lab: SelftestLab, _ baseline: Baseline) throws -> (pid: pid_t, tid: pid_t, copies: Int, of: Int) {
        guard let pid = lab.qemuPid, kill(pid, 0) == 0 else {
            throw Failure(description: "the lab's QEMU process is not known or not running")
        }
        let copies: [Int32: Int]
        do {
            copies = try TapReaderThreads.count(path: baseline.trace, pid: pid)
        } catch {
            throw Failure(description: "cannot read the kernel events in the baseline trace \(baseline.trace): \(error)")
        }
        guard let top = copies.max(by: { ($0.value, -$0.key) < ($1.value, -$1.key) }) else {
            throw Failure(description: "the baseline trace has no kernel event of QEMU (pid \(pid)) copying a packet out of \(lab.tap)'s queue: "
                + "capture recorded no kernel events (its notes in baseline.json say why), so the tap's reader cannot be found")
        }
        return (pid, top.key, top.value, copies.values.reduce(0, +))
    }

    func slowBackend(_ lab: SelftestLab, _ baseline: Baseline) throws -> SelftestRow {
        let reader = try tapReader(lab, baseline)
        let threads = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(reader.pid)/task")) ?? []).compactMap(Int32.init).sorted()
        let quotaText = "\(TextReport.fmt(Double(C.backendQuotaUs) / 1000, 0)) ms of CPU per \(TextReport.fmt(Double(C.backendPeriodUs) / 1000, 0)) ms"
        say("slow-backend: QEMU's tap reader (pid \(reader.pid), thread \(reader.tid) of \(threads.map(String.init).joined(separator: ", "))) limited to \(quotaText); bpftrace measures the tun queue")
        let oracle = try BackendWaitOracle(directory: directory, qemuPid: reader.pid, backendTid: reader.tid, namespace: lab.state.namespace, tap: lab.tap)
        let quota = try ThreadCPUQuota(pid: reader.pid, tid: reader.tid, quotaUs: C.backendQuotaUs, periodUs: C.backendPeriodUs,
                                       name: "netprobe-\(labName)-\(getpid())")
        defer { quota.remove() }
        let captured = try capture(lab, name: SelftestFault.slowBackend.rawValue)
        let throttled = quota.statistics()
        quota.remove()
        let oracleResult = try oracle.finish()
        let report = captured.report

        let injected = oracleResult.meanWaitNs.map { $0 / 1000 }
        let backend = Self.segment(report, .vnicBackend)
        let base = baseline.segment(.vnicBackend)
        var reasons: [String] = []
        if oracleResult.requests < 100 {
            reasons.append("bpftrace saw only \(oracleResult.requests) request frames copied by QEMU: too few to size the wait")
        }
        let byReader = oracleResult.copiesByThread[reader.tid] ?? 0
        let copied = oracleResult.copiesByThread.values.reduce(0, +)
        if copied > 0 && Double(byReader) < 0.95 * Double(copied) {
            reasons.append("only \(byReader) of the \(copied) request copies were made by the throttled thread \(reader.tid): it is not QEMU's only tap reader")
        }
        if backend?.resolved != true { reasons.append("the vnic-backend segment is unresolved: \(backend?.note ?? "missing")") }
        reasons += within(backend?.meanUs, injected, "vnic-backend mean")
        if let i = injected, let b = base?.meanUs, b > 0, i < C.backendMinimumGrowth * b {
            reasons.append("the throttle made the requests wait \(us(i)) in the tun queue, not even \(TextReport.fmt(C.backendMinimumGrowth, 0))x the baseline's \(us(b)): too little to test the placement")
        } else if base?.meanUs == nil {
            reasons.append("the baseline has no vnic-backend mean to compare the fault with: \(base?.note ?? "missing")")
        }
        // The tun queue is after the tap's qdisc and capture point: a wait there that netprobe
        // missed could only show as guest-stack, never as bridge or tap.
        reasons += noLeak(report, baseline, into: [.bridge, .tap], injectedUs: injected, statistic: \.meanUs, label: "mean")
        // A thread held to its CPU quota is ready to run but not given a CPU: starved, not busy.
        let thread = Self.threadStateCheck(report, expected: .runnable, tail: false, onCPUShare: oracleResult.onCPUShare)
        reasons += thread.reasons

        var details = [
            "QEMU pid \(reader.pid), threads \(threads.map(String.init).joined(separator: ", ")); thread \(reader.tid) made \(reader.copies) of QEMU's \(reader.of) copies out of \(lab.tap)'s queue in the baseline trace: only it was limited",
            "cgroup cpu quota \(C.backendQuotaUs) us per \(C.backendPeriodUs) us period: " + (throttled.map {
                "throttled in \($0.throttled) of \($0.periods) periods, \(TextReport.fmt(Double($0.throttledNs) / 1e6, 0)) ms in all"
            } ?? "cpu.stat unreadable"),
            "bpftrace: \(oracleResult.requests) request frames copied by QEMU (\(oracleResult.copiesByThread.sorted { $0.key < $1.key }.map { "thread \($0.key): \($0.value)" }.joined(separator: ", "))), mean wait in the tun queue \(us(injected))"
                + (oracleResult.onCPUShare.map { "; the reader was on a CPU during \(TextReport.fmt($0 * 100, 1)) % of those waits" } ?? ""),
            "vnic-backend mean \(us(base?.meanUs)) in the baseline, \(us(backend?.meanUs)) with the fault",
            "guest-stack mean \(us(baseline.segment(.guestStack)?.meanUs)) in the baseline, \(us(Self.segment(report, .guestStack)?.meanUs)) with the fault: the throttled thread also writes the guest's replies to the tap, and under TCG the host sees no event when a reply is ready, so that delay stays in guest-stack",
        ]
        details.append(thread.detail)
        if let e = Self.backendEvidence(report) { details.append("the report's evidence: \(e)") }
        details += segmentDetails(report, baseline)
        return SelftestRow(
            fault: SelftestFault.slowBackend.rawValue, injectedWhere: "vnic-backend (QEMU thread \(reader.tid) throttled)", injectedUs: injected,
            injectedHow: "cgroup cpu quota \(quotaText) on QEMU's tap reader alone: bpftrace's mean tun-queue wait of the requests",
            measuredSegment: "vnic-backend mean", measuredUs: backend?.meanUs, measuredHow: "mean of the vnic-backend segment over all requests",
            verdictSays: SelftestTable.verdict(report), passed: reasons.isEmpty, reasons: reasons, details: details, trace: captured.trace)
    }

    /// The verdict's line on the backend's wait (busy or silent), as the report words it.
    static func backendEvidence(_ report: Report) -> String? {
        report.verdict?.evidence.first { $0.hasPrefix("slow backend or stopped hypervisor?") }
    }

    /// How the report tells this fault's backend apart (the scheduler's events of the backend's
    /// reading thread): `expected` must be the state with the most of the waiting (of the slowest
    /// 1 % when `tail`), and the share in which the thread ran must agree with bpftrace's.
    static func threadStateCheck(_ report: Report, expected: ThreadState, tail: Bool, onCPUShare: Double?) -> (reasons: [String], detail: String) {
        guard let t = report.attribution?.backendThread else {
            return (["the report has no scheduler events of the backend's thread: it cannot tell a \(expected == .stopped ? "stopped" : "starved") backend from a busy one"], "backend thread: no scheduler events")
        }
        var reasons: [String] = []
        let shares = tail ? (t.tail ?? t.all) : t.all
        func pct(_ x: Double) -> String { TextReport.fmt(x * 100, 1) + " %" }
        let states = shares.text
        let dominant = shares.dominant
        if dominant != expected {
            reasons.append("the backend's thread was mostly \(dominant.rawValue), not \(expected.rawValue), in \(tail ? "the slowest 1 %'s" : "the") waits (\(states))")
        }
        if let on = onCPUShare, abs(t.all.running - on) > C.runningShareTolerance {
            reasons.append("the report has the backend's thread running \(pct(t.all.running)) of the waiting, bpftrace on a CPU \(pct(on)): more than \(TextReport.fmt(C.runningShareTolerance * 100, 0)) points apart")
        }
        let detail = "backend thread \(t.threads.map(String.init).joined(separator: ", ")) during the waits (scheduler's events)\(tail ? ", slowest 1 %" : ""): \(states)"
            + (onCPUShare.map { "; bpftrace: on a CPU \(pct($0)), the report: running \(pct(t.all.running)) of all waits" } ?? "")
        return (reasons, detail)
    }
}
