#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CNetprobeSystem
import SystemPackage

/// Where a child's standard input comes from.
public enum ChildInput: Sendable {
    /// /dev/null (the default: nothing netprobe runs reads its input).
    case null
    /// The parent's standard input.
    case inherit
}

/// Where a child's standard output or error goes.
public enum ChildOutput: Sendable {
    /// The parent's descriptor.
    case inherit
    /// /dev/null, opened in the child (the parent opens nothing).
    case discard
    /// Into memory, read through a pipe while the child runs (`ChildProcess.standardOutput`).
    case capture
    /// A descriptor the caller owns and keeps open (a log file).
    case descriptor(FileDescriptor)
}

/// How a child ended.
public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    /// exit(code).
    case exited(Int32)
    /// Ended by signal number N.
    case signalled(Int32)

    /// As a shell reports it: the exit code, or 128 + the signal number.
    public var code: Int32 {
        switch self {
        case .exited(let c): c
        case .signalled(let s): 128 + s
        }
    }

    public var succeeded: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case .exited(let c): "exit status \(c)"
        case .signalled(let s): "killed by signal \(s)\(signalName(s).map { " (\($0))" } ?? "")"
        }
    }
}

/// Why a child could not run, or ran and failed: typed, with what a reader needs to act.
public enum ChildProcessError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The program is not in any folder of the search path.
    case notFound(program: String, searchPath: [String])
    /// posix_spawn (or a pipe for its output) failed.
    case cannotStart(command: String, errno: Errno)
    /// It exited with a non-zero code (`check`).
    case exited(command: String, code: Int32, stderr: String)
    /// A signal ended it (`check`).
    case signalled(command: String, signal: Int32, stderr: String)
    /// It did not finish in time and was stopped.
    case timedOut(command: String, seconds: Double)

    public var description: String {
        switch self {
        case let .notFound(program, searchPath):
            return "\(program) is not installed (not found in \(searchPath.joined(separator: ":")))"
        case let .cannotStart(command, errno):
            return "could not start `\(command)`: \(errno.message)"
        case let .exited(command, code, stderr):
            return "`\(command)` failed (exit status \(code))" + Self.detail(stderr)
        case let .signalled(command, signal, stderr):
            return "`\(command)` was \(ExitStatus.signalled(signal))" + Self.detail(stderr)
        case let .timedOut(command, seconds):
            return "`\(command)` did not finish within \(Int(seconds)) s and was stopped"
        }
    }

    private static func detail(_ stderr: String) -> String {
        let text = stderr.trimmingWhitespace
        return text.isEmpty ? "" : ":\n\(text)"
    }
}

/// What a finished child printed (when captured) and how it ended.
public struct ChildResult: Sendable, Equatable {
    public var command: [String]
    public var status: ExitStatus
    public var stdout: String
    public var stderr: String

    /// Throws `.exited` or `.signalled` (with stderr, or stdout when stderr is empty) unless it succeeded.
    @discardableResult
    public func check() throws(ChildProcessError) -> ChildResult {
        let text = stderr.trimmingWhitespace.isEmpty ? stdout : stderr
        switch status {
        case .exited(0): return self
        case .exited(let code): throw .exited(command: ChildProcess.display(command), code: code, stderr: text)
        case .signalled(let s): throw .signalled(command: ChildProcess.display(command), signal: s, stderr: text)
        }
    }
}

/// A child process: netprobe's one spawner.
///
/// Started with posix_spawn, every signal unblocked and at its default disposition (see
/// `CNetprobeSystem_spawn`), so that SIGTERM reaches it whatever thread started it. Output that is
/// captured comes through two pipes that are read together (poll(2)): a child that fills one
/// while the other is being read to its end cannot block both. A program that daemonizes (QEMU
/// `-daemonize`, `redis-server --daemonize yes`, `libvirtd -d`) may leave a daemon holding the
/// pipes: the child counts as finished when it exits (its pidfd, or waitpid), what is in the pipes
/// then is read, and the pipes are closed without waiting for an end-of-file that may never come.
///
/// Not for use from several threads at once.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let arguments: [String]
    private var status: ExitStatus?
    private var pipes: [(fd: Int32, isError: Bool)] = []
    private var pidfd: Int32 = -1
    private var out: [UInt8] = []
    private var err: [UInt8] = []
    /// The CPU time (user + system) the child used, once it has been reaped (wait4's rusage).
    public private(set) var cpuSeconds: Double?

    /// Starts `arguments[0]` (looked up in `searchPath`, by default the PATH of `environment` or of
    /// this process, unless it contains a slash) with `arguments`.
    /// - Parameters:
    ///   - environment: the child's environment; nil passes this process's own.
    ///   - directory: the child's working directory; nil keeps this process's.
    public init(_ arguments: [String], environment: [String: String]? = nil, directory: String? = nil,
                searchPath: [String]? = nil, stdin: ChildInput = .null, stdout: ChildOutput = .inherit,
                stderr: ChildOutput = .inherit) throws(ChildProcessError) {
        precondition(!arguments.isEmpty, "a child process needs a program")
        self.arguments = arguments
        let path = searchPath ?? Self.searchPath(environment)
        guard let program = Self.find(arguments[0], in: path) else {
            throw .notFound(program: arguments[0], searchPath: path)
        }
        var parentEnds: [(fd: Int32, isError: Bool)] = []
        var childEnds: [Int32] = []
        defer { for fd in childEnds { close(fd) } }
        func target(_ o: ChildOutput, isError: Bool) throws(ChildProcessError) -> Int32 {
            switch o {
            case .inherit: return CNETPROBE_SYSTEM_INHERIT
            case .discard: return CNETPROBE_SYSTEM_DEV_NULL
            case .descriptor(let fd): return fd.rawValue
            case .capture:
                var fds: [Int32] = [-1, -1]
                do {
                    _ = try systemCall("pipe2") { CNetprobeSystem_pipe_cloexec(&fds) }
                } catch {
                    throw .cannotStart(command: Self.display(arguments), errno: error.errno)
                }
                parentEnds.append((fds[0], isError))
                childEnds.append(fds[1])
                return fds[1]
            }
        }
        let outFD: Int32, errFD: Int32
        do {
            outFD = try target(stdout, isError: false)
            errFD = try target(stderr, isError: true)
        } catch {
            for p in parentEnds { close(p.fd) }
            throw error
        }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { $0.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil] } ?? []
        defer { for p in envp { free(p) } }
        var child: Int32 = -1
        let rc = envp.isEmpty
            ? CNetprobeSystem_spawn(program, &argv, environ, stdin == .null ? CNETPROBE_SYSTEM_DEV_NULL : CNETPROBE_SYSTEM_INHERIT,
                                    outFD, errFD, directory, &child)
            : CNetprobeSystem_spawn(program, &argv, &envp, stdin == .null ? CNETPROBE_SYSTEM_DEV_NULL : CNETPROBE_SYSTEM_INHERIT,
                                    outFD, errFD, directory, &child)
        guard rc == 0 else {
            for p in parentEnds { close(p.fd) }
            throw .cannotStart(command: Self.display(arguments), errno: Errno(rawValue: rc))
        }
        pid = child
        pipes = parentEnds
        for p in pipes { _ = fcntl(p.fd, F_SETFL, fcntl(p.fd, F_GETFL) | O_NONBLOCK) }
        pidfd = CNetprobeSystem_pidfd_open(child)
    }

    deinit {
        if status == nil {
            kill(pid, SIGKILL)
            _ = wait()
        }
        closeDescriptors()
    }

    // MARK: running it

    /// Runs `arguments` to the end with stdout and stderr captured. A non-zero exit is returned,
    /// not thrown: `check()` the result for that. After `timeout` seconds the child is stopped
    /// (SIGTERM, then SIGKILL) and this throws `.timedOut`.
    public static func run(_ arguments: [String], timeout: Double? = nil, environment: [String: String]? = nil,
                           directory: String? = nil, searchPath: [String]? = nil) throws(ChildProcessError) -> ChildResult {
        let child = try ChildProcess(arguments, environment: environment, directory: directory, searchPath: searchPath,
                                     stdout: .capture, stderr: .capture)
        guard let status = child.wait(timeout: timeout) else {
            child.stop()
            throw .timedOut(command: display(arguments), seconds: timeout ?? 0)
        }
        return ChildResult(command: arguments, status: status, stdout: child.standardOutput, stderr: child.standardError)
    }

    /// True until the child has exited. Does not block; reads what captured output is waiting.
    public var isRunning: Bool {
        if status != nil { return false }
        pump(timeoutMs: 0)
        return !reap()
    }

    /// Waits for the child to exit, reading captured output meanwhile; its status, or nil when
    /// `timeout` seconds (nil: no limit) passed first.
    @discardableResult
    public func wait(timeout: Double? = nil) -> ExitStatus? {
        let deadline = timeout.map { monotonicNs() + Int64(max(0, $0) * 1e9) }
        while true {
            if let status { return status }
            if reap() { return status }
            let left = deadline.map { $0 - monotonicNs() }
            if let left, left <= 0 { return nil }
            // With a pidfd poll wakes at the exit; without one, look again every 10 ms.
            let slice: Int64 = pidfd >= 0 ? 1_000 : 10
            pump(timeoutMs: Int32(min(slice, left.map { max(1, $0 / 1_000_000) } ?? slice)))
        }
    }

    /// Waits up to `seconds`, then stops a child that is still there (`stop`).
    @discardableResult
    public func wait(orStopAfter seconds: Double) -> ExitStatus {
        if let s = wait(timeout: seconds) { return s }
        return stop()
    }

    /// Sends `signal` if the child has not been reaped yet.
    public func signal(_ signal: Int32) {
        if status == nil, !reap() { kill(pid, signal) }
    }

    /// Ends the child: SIGTERM (and SIGCONT, so that a stopped child acts on it), up to `grace`
    /// seconds, then SIGKILL. Returns how it ended.
    @discardableResult
    public func stop(grace: Double = 2) -> ExitStatus {
        if let status { return status }
        signal(SIGTERM)
        signal(SIGCONT)
        if let s = wait(timeout: grace) { return s }
        signal(SIGKILL)
        return wait()!
    }

    /// Captured standard output so far (all of it once the child has been waited for).
    public var standardOutput: String { String(decoding: out, as: UTF8.self) }
    /// Captured standard error so far.
    public var standardError: String { String(decoding: err, as: UTF8.self) }

    // MARK: plumbing

    /// Reaps the child if it has exited; then reads what is left in the pipes and closes them.
    private func reap() -> Bool {
        if status != nil { return true }
        var raw: Int32 = 0
        var usage = rusage()
        let r = wait4(pid, &raw, WNOHANG, &usage)
        if r == 0 { return false }
        if r == pid {
            cpuSeconds = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
                + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
            status = CNetprobeSystem_signalled(raw) != 0
                ? .signalled(CNetprobeSystem_term_signal(raw)) : .exited(CNetprobeSystem_exit_code(raw))
        } else if Glibc.errno == EINTR {
            return false
        } else {
            // ECHILD: someone else reaped it (it is gone either way).
            status = .exited(-1)
        }
        // Everything the child wrote is in the pipes now: read it without waiting for an
        // end-of-file that a daemon it left behind could hold off forever.
        while !pipes.isEmpty && pump(timeoutMs: 0) {}
        closeDescriptors()
        return true
    }

    /// poll(2) over the open pipes (and the pidfd) for up to `timeoutMs`, then reads every pipe
    /// that has data until it would block. Returns whether anything was read.
    @discardableResult
    private func pump(timeoutMs: Int32) -> Bool {
        var fds = pipes.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        if status == nil && pidfd >= 0 { fds.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
        if fds.isEmpty {
            if timeoutMs > 0 { usleep(useconds_t(timeoutMs) * 1000) }
            return false
        }
        let n = poll(&fds, nfds_t(fds.count), timeoutMs)
        guard n > 0 else { return false }
        var readSomething = false
        var closed: [Int32] = []
        for (k, p) in pipes.enumerated() where fds[k].revents != 0 {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let got = buffer.withUnsafeMutableBytes { read(p.fd, $0.baseAddress, $0.count) }
                if got > 0 {
                    if p.isError { err += buffer[0..<got] } else { out += buffer[0..<got] }
                    readSomething = true
                    continue
                }
                if got < 0 && Glibc.errno == EINTR { continue }
                if got == 0 || (Glibc.errno != EAGAIN && Glibc.errno != EWOULDBLOCK) { closed.append(p.fd) }
                break
            }
        }
        for fd in closed { close(fd) }
        pipes.removeAll { closed.contains($0.fd) }
        return readSomething
    }

    private func closeDescriptors() {
        for p in pipes { close(p.fd) }
        pipes = []
        if pidfd >= 0 { close(pidfd) }
        pidfd = -1
    }

    // MARK: helpers

    /// The PATH of `environment` (or of this process).
    public static func searchPath(_ environment: [String: String]? = nil) -> [String] {
        let path = environment?["PATH"] ?? getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        return path.split(separator: ":").map(String.init)
    }

    /// The full path of `program` (as is when it contains a slash) if it is an executable file.
    public static func find(_ program: String, in searchPath: [String]? = nil) -> String? {
        if program.contains("/") { return access(program, X_OK) == 0 ? program : nil }
        for dir in searchPath ?? Self.searchPath() {
            let candidate = "\(dir)/\(program)"
            var st = stat()
            if stat(candidate, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// `arguments` as one would type them in a shell (for messages).
    public static func display(_ arguments: [String]) -> String {
        arguments.map { word in
            let plain = !word.isEmpty && word.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=,@%+".contains($0) }
            return plain ? word : "'" + word.replacing("'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
@inline(__always)
func monotonicNs() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// SIGTERM, SIGKILL ... for messages.
func signalName(_ s: Int32) -> String? {
    switch s {
    case SIGHUP: "SIGHUP"
    case SIGINT: "SIGINT"
    case SIGQUIT: "SIGQUIT"
    case SIGILL: "SIGILL"
    case SIGABRT: "SIGABRT"
    case SIGBUS: "SIGBUS"
    case SIGFPE: "SIGFPE"
    case SIGKILL: "SIGKILL"
    case SIGSEGV: "SIGSEGV"
    case SIGPIPE: "SIGPIPE"
    case SIGTERM: "SIGTERM"
    default: nil
    }
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
