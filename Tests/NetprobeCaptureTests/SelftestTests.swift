import Foundation
import Testing
import NetprobeCore
@testable import NetprobeHarness

/// `netprobe selftest` end to end: the real lab, a QEMU guest behind a bridge and a tap, four
/// injected faults, the built binary's table and JSON (root); and slow-backend's throttle on a
/// thread of this process (root). The replay that sizes the tap queue, the bpftrace output and
/// the tap reader's count are tested without root in NetprobeHarnessTests.
@Suite("selftest: injected faults are found and sized", .serialized)
struct SelftestTests {
    struct Outcome: Decodable {
        struct Row: Decodable {
            var fault: String
            var injectedUs: Double?
            var measuredUs: Double?
            var passed: Bool
            var reasons: [String]
        }
        var rows: [Row]
    }

    @Test("netprobe selftest: tap-queue, starved-guest, redis-stall and slow-backend all PASS within ±15 %, exit 0, lab and cgroup removed (root, QEMU guest)",
          .enabled(if: isRoot, rootNote))
    func allFaultsPass() throws {
        let out = tempPath("-selftest")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let (status, table) = try sh([CaptureCLITests.binary, "selftest", "-o", out], allowFailure: true)
        #expect(status == 0, "selftest exited with \(status):\n\(table)")
        let lines = table.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        for fault in SelftestFault.allCases.map(\.rawValue) {
            let row = lines.first { $0.hasPrefix(fault + " ") }
            #expect(row?.hasSuffix("PASS") == true, "\(fault): \(row ?? "not in the table")\n\(table)")
        }

        // selftest.json says the same, with the numbers.
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(out)/selftest.json"))
        let outcome = try JSONDecoder().decode(Outcome.self, from: data)
        #expect(outcome.rows.map(\.fault) == SelftestFault.allCases.map(\.rawValue))
        for r in outcome.rows {
            #expect(r.passed, "\(r.fault): \(r.reasons)")
            let injected = try #require(r.injectedUs, "\(r.fault): no injected size")
            let measured = try #require(r.measuredUs, "\(r.fault): no measured size")
            #expect(abs(measured - injected) <= 0.15 * injected, "\(r.fault): injected \(injected) us, measured \(measured) us")
        }

        // Nothing is left behind: no lab state, no namespace.
        let (_, namespaces) = try sh(["ip", "netns", "list"])
        #expect(!namespaces.contains("np-selftest"), "the selftest lab's namespace is still there")
        #expect(!FileManager.default.fileExists(atPath: "/run/netprobe/lab/selftest/state.json"))
        if let mount = ThreadCPUQuota.cpuControllerMount() {
            let left = (try? FileManager.default.contentsOfDirectory(atPath: mount.path))?.filter { $0.hasPrefix("netprobe-selftest-") } ?? []
            #expect(left.isEmpty, "slow-backend's cgroup is still there: \(left)")
        }
    }

    /// The calling thread's id (/proc/thread-self names it: glibc's gettid is not imported).
    static func currentThread() -> pid_t {
        let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? ""
        return pid_t(link.split(separator: "/").last ?? "") ?? 0
    }

    /// CPU time of one thread of this process, seconds (utime + stime, in clock ticks).
    static func cpuSeconds(thread tid: pid_t) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    @Test("slow-backend's throttle: one spinning thread of this process alone in a cgroup with 1 ms per 10 ms, throttled, then put back (root, cgroup v1 cpu)",
          .enabled(if: isRoot && ThreadCPUQuota.cpuControllerMount() != nil, "needs root and the cgroup v1 cpu controller"))
    func threadQuota() throws {
        final class Spinner: @unchecked Sendable {
            let lock = NSLock()
            var tid: pid_t = 0
            var stop = false
        }
        let spinner = Spinner()
        let thread = Thread {
            let me = SelftestTests.currentThread()
            spinner.lock.withLock { spinner.tid = me }
            while !spinner.lock.withLock({ spinner.stop }) {}
        }
        thread.start()
        defer { spinner.lock.withLock { spinner.stop = true } }
        var tid: pid_t = 0
        for _ in 0..<100 where tid == 0 {
            usleep(10_000)
            tid = spinner.lock.withLock { spinner.tid }
        }
        try #require(tid != 0, "the spinning thread did not start")
        let pid = getpid()
        let before = ThreadCPUQuota.cpuCgroup(ofThread: tid, process: pid)
        let callerBefore = ThreadCPUQuota.cpuCgroup(ofThread: Self.currentThread(), process: pid)
        let name = "netprobe-test-\(pid)"
        let quota = try ThreadCPUQuota(pid: pid, tid: tid, quotaUs: 1000, periodUs: 10_000, name: name)
        #expect(ThreadCPUQuota.cpuCgroup(ofThread: tid, process: pid)?.hasSuffix("/\(name)") == true)
        #expect(ThreadCPUQuota.cpuCgroup(ofThread: Self.currentThread(), process: pid) == callerBefore, "only the one thread moves")
        let written = try String(contentsOfFile: "\(quota.directory)/cpu.cfs_quota_us", encoding: .utf8)
        #expect(written.trimmingCharacters(in: .whitespacesAndNewlines) == "1000")
        let cpu0 = Self.cpuSeconds(thread: tid)
        usleep(500_000)
        let cpu1 = Self.cpuSeconds(thread: tid)
        let stats = try #require(quota.statistics())
        #expect(stats.throttled > 0 && stats.throttledNs > 0, "a spinning thread with 1 ms per 10 ms must be throttled: \(stats)")
        if let a = cpu0, let b = cpu1 {
            // At most 10 % of 0.5 s (50 ms), a tick's rounding more; unthrottled it would spin for most of it.
            #expect(b - a < 0.2, "the throttled thread ran \(b - a) s in 0.5 s")
        }
        quota.remove()
        #expect(ThreadCPUQuota.cpuCgroup(ofThread: tid, process: pid) == before, "the thread is back in its cgroup")
        #expect(!FileManager.default.fileExists(atPath: quota.directory), "the cgroup is removed")
        quota.remove() // idempotent
    }
}
