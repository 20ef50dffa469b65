import Foundation
import NetprobeCore
import NetprobeSystem

/// `report`'s progress on a terminal: one line on standard error, rewritten in place, with the
/// bytes read of the trace's size and the rate:
///
///     reading big.pcapng: 1.21 GB of 3.40 GB (35 %), 410.2 MB/s
///
/// Shown only when standard error is a terminal (never in a pipe or a file, and never on standard
/// output, where the report goes), only for a trace that is a regular file (a pipe has no size),
/// and not with --quiet. The first line comes after `delay` (a report that takes less shows
/// none), then one every `interval`; the line is erased before the report is printed.
///
/// It needs no hook in the trace pipeline: the kernel keeps the file position of the reader's
/// descriptor and shows it in /proc/self/fdinfo, so a thread of its own reads it there (the
/// descriptors open on the trace are found by device and inode). The reader is at most its
/// read-ahead buffer ahead of the analysis.
final class ReadProgress: @unchecked Sendable {
    private let name: String
    private let device: UInt64
    private let inode: UInt64
    private let total: Int64
    private let started = ContinuousClock.now
    private let condition = NSCondition()
    private var stopped = false // guarded by condition
    private var shown = false // guarded by condition
    private var thread: JoinableThread?

    /// Before the first line, unless NETPROBE_PROGRESS_DELAY_MS says otherwise (0 shows the first
    /// line at once: the tests use it, so that they need not race a timer).
    static let delay: Duration = .milliseconds(
        Int(ProcessInfo.processInfo.environment["NETPROBE_PROGRESS_DELAY_MS"] ?? "") ?? 500)
    /// Between lines: often enough to watch, seldom enough to cost nothing.
    static let interval: Duration = .milliseconds(250)

    /// Starts showing progress for the trace at `path` ("-": standard input), or returns nil when
    /// there is to be none (quiet, standard error not a terminal, not a regular file).
    static func start(path: String, quiet: Bool) -> ReadProgress? {
        guard !quiet, isatty(STDERR_FILENO) == 1, let progress = ReadProgress(tracing: path) else { return nil }
        if delay == .zero { progress.show() }
        progress.thread = try? JoinableThread(name: "np-progress") { progress.loop() }
        return progress
    }

    /// Progress of the reading of `path`, not yet shown; nil when it is not a regular file.
    init?(tracing path: String) {
        var st = stat()
        guard (path == "-" ? fstat(STDIN_FILENO, &st) : stat(path, &st)) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
        name = TerminalText.escape(path == "-" ? "standard input" : path)
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        total = Int64(st.st_size)
    }

    /// Stops the thread and erases the line. Call it before printing anything else.
    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
        thread?.join()
        thread = nil
        condition.lock()
        if shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        shown = false
        condition.unlock()
    }

    private func loop() {
        condition.lock()
        defer { condition.unlock() }
        var next = started + (Self.delay == .zero ? Self.interval : Self.delay)
        while !stopped {
            let wait = ContinuousClock.now.duration(to: next)
            if wait > .zero {
                let (s, atto) = wait.components
                _ = condition.wait(until: Date(timeIntervalSinceNow: Double(s) + Double(atto) / 1e18))
                continue
            }
            write()
            next = next + Self.interval
        }
    }

    private func show() {
        condition.lock()
        write()
        condition.unlock()
    }

    /// Called with the lock held, so that stop() cannot erase the line before it is written.
    private func write() {
        FileHandle.standardError.write(Data(("\r" + line(read: position() ?? 0) + "\u{1B}[K").utf8))
        shown = true
    }

    /// "reading NAME: 1.21 GB of 3.40 GB (35 %), 410.2 MB/s"; once all is read, the attribution
    /// still runs: "read NAME: 3.40 GB (100 %), analysing".
    func line(read: Int64) -> String {
        if total > 0 && read >= total { return "read \(name): \(Self.bytes(total)) (100 %), analysing" }
        let (s, atto) = started.duration(to: .now).components
        let seconds = Double(s) + Double(atto) / 1e18
        var text = "reading \(name): \(Self.bytes(read)) of \(Self.bytes(total))"
        if total > 0 { text += " (\(min(100, read * 100 / total)) %)" }
        if seconds > 0 { text += ", \(Self.bytes(Int64(Double(read) / seconds)))/s" }
        return text
    }

    /// The furthest file position of this process's descriptors open on the trace.
    func position() -> Int64? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return nil }
        var furthest: Int64?
        for entry in entries {
            guard let fd = Int32(entry) else { continue }
            var st = stat()
            guard fstat(fd, &st) == 0, UInt64(st.st_dev) == device, UInt64(st.st_ino) == inode,
                  let info = try? String(contentsOfFile: "/proc/self/fdinfo/\(fd)", encoding: .utf8),
                  let line = info.split(separator: "\n").first(where: { $0.hasPrefix("pos:") }),
                  let pos = Int64(line.dropFirst(4).trimmingCharacters(in: .whitespaces)) else { continue }
            furthest = max(furthest ?? 0, pos)
        }
        return furthest
    }

    /// Decimal units, as disks and network rates are counted: "512 B", "1.21 GB".
    static func bytes(_ n: Int64) -> String {
        let units: [(String, Double)] = [("GB", 1e9), ("MB", 1e6), ("kB", 1e3)]
        for (unit, size) in units where Double(n) >= size {
            return TextReport.fmt(Double(n) / size, 2) + " " + unit
        }
        return "\(n) B"
    }
}
