import CNetprobeShims
import Glibc

/// A child process started with a clean signal mask (see `CNetprobe_spawn`), so that SIGTERM
/// and SIGINT reach it whatever thread started it. Used for load commands and test servers.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let arguments: [String]
    private var status: Int32?

    /// Starts `arguments[0]` (looked up in PATH) with `arguments`. Output goes to the given
    /// descriptors, or is inherited.
    public init(_ arguments: [String], stdout: Int32? = nil, stderr: Int32? = nil) throws {
        precondition(!arguments.isEmpty)
        self.arguments = arguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for p in argv { free(p) } }
        let rc = CNetprobe_spawn(&argv, stdout ?? -1, stderr ?? -1)
        guard rc > 0 else {
            throw CaptureError("cannot start \(arguments[0]): \(String(cString: strerror(-rc)))")
        }
        pid = rc
    }

    /// True until the child has exited (reaps it without blocking).
    public var isRunning: Bool {
        if status != nil { return false }
        var s: Int32 = 0
        let r = waitpid(pid, &s, WNOHANG)
        if r == pid { status = Self.decode(s) }
        return status == nil
    }

    /// Sends `signal` (SIGTERM by default) if the child still runs.
    public func terminate(_ signal: Int32 = SIGTERM) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits for the child; returns its exit status (128 + signal number when a signal ended it).
    @discardableResult
    public func wait() -> Int32 {
        if let status { return status }
        var s: Int32 = 0
        while waitpid(pid, &s, 0) < 0 && errno == EINTR {}
        status = Self.decode(s)
        return status!
    }

    /// Waits up to `seconds`, then SIGKILLs a child that is still there.
    @discardableResult
    public func wait(timeout seconds: Double) -> Int32 {
        var waited = 0.0
        while isRunning && waited < seconds {
            usleep(20_000)
            waited += 0.02
        }
        if isRunning { kill(pid, SIGKILL) }
        return wait()
    }

    private static func decode(_ s: Int32) -> Int32 {
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros: decode the wait status by hand.
        let signal = s & 0x7f
        return signal == 0 ? (s >> 8) & 0xff : 128 + signal
    }
}
