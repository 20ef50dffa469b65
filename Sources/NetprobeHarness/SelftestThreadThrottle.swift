import Foundation
import Glibc
import NetprobeSystem

/// slow-backend: caps the CPU time of ONE thread of a process (QEMU's thread that reads the tap)
/// with the cgroup v1 cpu controller's bandwidth limit, leaving its other threads (the vCPU) as
/// they were. In cgroup v1 a thread can sit in a cgroup of its own (its tid written to `tasks`);
/// the kernel then runs it for at most `quota` in every `period` and holds it off the CPU for
/// the rest (CFS bandwidth control, `cpu.cfs_quota_us` / `cpu.cfs_period_us`).
///
/// Made, changed and removed only through that cgroup's files; `remove()` puts the thread back
/// into the cgroup it came from and deletes the one made here (also when the thread is gone).
final class ThreadCPUQuota {
    let tid: pid_t
    let quotaUs: Int
    let periodUs: Int
    /// The cgroup made for the thread, and the `tasks` file of the one it was in.
    let directory: String
    private let homeTasks: String
    private var removed = false

    struct Failure: Error, CustomStringConvertible { var description: String }

    /// Where the cgroup v1 cpu controller is mounted, and the mount's root within the hierarchy
    /// (from /proc/self/mountinfo: a `cgroup` file system whose super options name `cpu`).
    static func cpuControllerMount(mountinfo: String? = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8))
        -> (path: String, root: String)? {
        for line in (mountinfo ?? "").split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " "), right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 3, right[0] == "cgroup",
                  right[2].split(separator: ",").contains("cpu") else { continue }
            return (String(left[4]), String(left[3]))
        }
        return nil
    }

    /// The thread's cgroup in the hierarchy that has the cpu controller (from /proc/PID/task/TID/cgroup).
    static func cpuCgroup(ofThread tid: pid_t, process pid: pid_t) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/cgroup", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            if parts.count == 3, parts[1].split(separator: ",").contains("cpu") { return String(parts[2]) }
        }
        return nil
    }

    /// The directory of cgroup `path` (as /proc/PID/cgroup names it) under `mount`, which may
    /// show only the part of the hierarchy below its root (in a container, say).
    static func directory(of path: String, in mount: (path: String, root: String)) -> String {
        var relative = path
        if mount.root != "/" && (path == mount.root || path.hasPrefix(mount.root + "/")) { relative = String(path.dropFirst(mount.root.count)) }
        let joined = mount.path + "/" + relative.drop { $0 == "/" }
        return joined.hasSuffix("/") ? String(joined.dropLast()) : joined
    }

    /// Moves thread `tid` of process `pid` into a new cgroup `name` limited to `quotaUs` of CPU
    /// time per `periodUs`. Throws, having undone what it did, when any step fails.
    init(pid: pid_t, tid: pid_t, quotaUs: Int, periodUs: Int, name: String) throws {
        guard let mount = Self.cpuControllerMount() else {
            throw Failure(description: "this host has no cgroup v1 cpu controller (no `cgroup` mount with the cpu option in /proc/self/mountinfo): "
                + "slow-backend throttles one thread of QEMU with cpu.cfs_quota_us, which only cgroup v1 can apply to a single thread")
        }
        guard let home = Self.cpuCgroup(ofThread: tid, process: pid) else {
            throw Failure(description: "cannot read the cpu cgroup of thread \(tid) of process \(pid) (/proc/\(pid)/task/\(tid)/cgroup)")
        }
        self.tid = tid
        self.quotaUs = quotaUs
        self.periodUs = periodUs
        directory = Self.directory(of: "/" + name, in: mount)
        homeTasks = Self.directory(of: home, in: mount) + "/tasks"
        guard mkdir(directory, 0o755) == 0 else {
            throw Failure(description: "\(SystemCallError.current("mkdir(\(directory))"))")
        }
        do {
            try Self.write("\(periodUs)", to: "\(directory)/cpu.cfs_period_us")
            try Self.write("\(quotaUs)", to: "\(directory)/cpu.cfs_quota_us")
            try Self.write("\(tid)", to: "\(directory)/tasks")
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    /// What the controller counted: periods, periods in which the thread was throttled, and
    /// for how long in all (`cpu.stat`).
    func statistics() -> (periods: Int, throttled: Int, throttledNs: Int64)? {
        guard let text = try? String(contentsOfFile: "\(directory)/cpu.stat", encoding: .utf8) else { return nil }
        var values: [String: Int64] = [:]
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: " ")
            if kv.count == 2, let v = Int64(kv[1]) { values[String(kv[0])] = v }
        }
        guard let p = values["nr_periods"], let t = values["nr_throttled"], let ns = values["throttled_time"] else { return nil }
        return (Int(p), Int(t), ns)
    }

    /// Puts the thread back where it was and deletes the cgroup (idempotent; a thread that has
    /// exited has left the cgroup by itself).
    func remove() {
        guard !removed else { return }
        removed = true
        try? Self.write("\(tid)", to: homeTasks)
        if rmdir(directory) != 0 && errno != ENOENT {
            FileHandle.standardError.write(Data("selftest: could not remove \(directory): \(String(cString: strerror(errno)))\n".utf8))
        }
    }

    /// Writes a control file in one write(2) (the kernel reads the value from that call).
    static func write(_ value: String, to path: String) throws {
        do {
            let fd = try FileDescriptor.open(path, .writeOnly)
            defer { try? fd.close() }
            _ = try fd.writeAll(Array(value.utf8))
        } catch {
            throw Failure(description: "cannot write \(value) to \(path): \(error)")
        }
    }
}
