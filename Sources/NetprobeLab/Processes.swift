import Foundation

/// Looks at and ends processes through /proc and signals.
enum ProcessTable {
    /// True when `pid` exists and is not a zombie.
    static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        return state(pid).map { $0 != "Z" && $0 != "X" } ?? false
    }

    /// The one-letter state from /proc/PID/stat (R, S, D, Z ...).
    static func state(_ pid: Int32) -> Character? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].first(where: { !$0.isWhitespace })
    }

    /// The command line of `pid` (arguments joined by spaces), or "" when it is gone.
    static func commandLine(_ pid: Int32) -> String {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return "" }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
    }

    /// The working directory of `pid` (the target of /proc/PID/cwd), or nil.
    static func workingDirectory(_ pid: Int32) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd")
    }

    /// The network namespace identity of `pid` (the target of /proc/PID/ns/net), or nil.
    static func networkNamespace(_ pid: Int32) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net")
    }

    /// Ends `pids`: SIGTERM (and SIGCONT, so that a stopped process, such as a guest the
    /// selftest starves or a hung daemon someone stopped, acts on it at once), up to `grace`
    /// seconds to exit, then SIGKILL for the rest. Returns the pids that were still alive to be signalled.
    @discardableResult
    static func terminate(_ pids: [Int32], grace: Double = 5) -> [Int32] {
        let alive = Array(Set(pids.filter { $0 > 1 && $0 != getpid() && isAlive($0) })).sorted()
        guard !alive.isEmpty else { return [] }
        for pid in alive {
            kill(pid, SIGTERM)
            kill(pid, SIGCONT)
        }
        let deadline = Date().addingTimeInterval(grace)
        while Date() < deadline, alive.contains(where: isAlive) { usleep(50_000) }
        for pid in alive where isAlive(pid) { kill(pid, SIGKILL) }
        let killDeadline = Date().addingTimeInterval(3)
        while Date() < killDeadline, alive.contains(where: isAlive) { usleep(50_000) }
        return alive
    }
}
