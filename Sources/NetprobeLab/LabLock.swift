import Foundation
import NetprobeSystem
import NetprobeCore

/// One `netprobe lab` command at a time per lab name: `up` and `down` of the same lab from two
/// processes (two terminals, two test runs) would otherwise tear down each other's half-built lab.
///
/// The lock is an flock(2) on `/run/netprobe/lab/.<name>.lock`, which holds the holder's pid for
/// the waiting side's message. The kernel drops it when the holder exits, even by SIGKILL, so a
/// crash never leaves a lab locked. Within one process the lock is re-entrant (`up` calls `down`).
enum LabLock {
    /// How long a command waits for another one on the same lab before giving up.
    static let patience: Double = 600

    private static let mutex = NSLock()
    nonisolated(unsafe) private static var held: [String: (fd: Int32, depth: Int)] = [:]

    static func path(_ name: String) -> String { "\(LabState.stateDirectory)/.\(name).lock" }

    /// Runs `body` holding lab `name`'s lock.
    static func with<T>(_ name: String, progress: LabProgress, _ body: () throws -> T) throws -> T {
        try acquire(name, progress: progress)
        defer { release(name) }
        return try body()
    }

    private static func acquire(_ name: String, progress: LabProgress) throws {
        mutex.lock()
        if let h = held[name] {
            held[name] = (h.fd, h.depth + 1)
            mutex.unlock()
            return
        }
        mutex.unlock()
        try FileManager.default.createDirectory(atPath: LabState.stateDirectory, withIntermediateDirectories: true)
        let fd: Int32
        do {
            fd = try systemCall("open") { open(path(name), O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        } catch {
            throw LabError.file(path: path(name), detail: "cannot open the lab's lock file: \(error.errno.message)")
        }
        let start = Date()
        var told = false
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let reason = Errno(rawValue: errno).message
                close(fd)
                throw LabError.file(path: path(name), detail: "cannot lock: \(reason)")
            }
            let holder = holderPid(fd)
            if !told {
                progress("lab \(name): waiting for another netprobe lab command on this lab\(holder.map { " (pid \($0))" } ?? "") to finish")
                told = true
            }
            if Date().timeIntervalSince(start) > patience {
                close(fd)
                throw LabError.conflict("lab \(name) is busy: another netprobe\(holder.map { " (pid \($0))" } ?? "") has held its lock (\(path(name))) for over \(Int(patience)) s; if that process hangs, end it and run the command again")
            }
            usleep(100_000)
        }
        // Record ourselves as the holder, for the next waiter's message.
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        mutex.lock()
        held[name] = (fd, 1)
        mutex.unlock()
    }

    private static func release(_ name: String) {
        mutex.lock()
        defer { mutex.unlock() }
        guard let h = held[name] else { return }
        if h.depth > 1 {
            held[name] = (h.fd, h.depth - 1)
            return
        }
        held[name] = nil
        _ = ftruncate(h.fd, 0)
        close(h.fd) // releases the flock
    }

    private static func holderPid(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        return Int32(String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
