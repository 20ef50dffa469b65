import Foundation

/// What a finished program printed and how it ended.
struct CommandOutput: Sendable {
    /// The exit status; 128 + N when the program was ended by signal N (as a shell reports it).
    var status: Int32
    var stdout: String
    var stderr: String
    var succeeded: Bool { status == 0 }
}

/// Runs programs through Foundation.Process with their output captured and failures surfaced.
///
/// Output goes to temporary files rather than pipes: a program that daemonizes (QEMU with
/// `-daemonize`, `redis-server --daemonize yes`, `libvirtd -d`) leaves a child that could hold a
/// pipe open and keep a reader waiting for end-of-file forever. Each run has a deadline.
enum Command {
    /// Where programs are looked up: root's usual PATH, also when sudo has trimmed the caller's.
    static let searchPath = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]

    /// The caller's environment with the search path in PATH and the C locale (parseable output).
    static let environment: [String: String] = {
        var env = ProcessInfo.processInfo.environment
        let own = (env["PATH"] ?? "").split(separator: ":").map(String.init)
        env["PATH"] = (own + searchPath.filter { !own.contains($0) }).joined(separator: ":")
        env["LC_ALL"] = "C"
        return env
    }()

    /// The full path of `tool` (returned as is when it already contains a slash), or nil.
    static func find(_ tool: String) -> String? {
        if tool.contains("/") { return FileManager.default.isExecutableFile(atPath: tool) ? tool : nil }
        let dirs = (environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for dir in dirs where FileManager.default.isExecutableFile(atPath: "\(dir)/\(tool)") {
            return "\(dir)/\(tool)"
        }
        return nil
    }

    /// Runs `argv` and waits for it (at most `timeout` seconds; then it is stopped and this throws).
    /// A non-zero exit status is returned, not thrown: see `check` for that.
    static func run(_ argv: [String], timeout: Double = 60, directory: String? = nil) throws -> CommandOutput {
        let running = try RunningCommand(argv, directory: directory)
        guard running.wait(timeout: timeout) else {
            running.stop()
            _ = running.finish()
            throw LabError.commandTimedOut(command: display(argv), seconds: timeout)
        }
        return running.finish()
    }

    /// Runs `argv` and throws `LabError.commandFailed` with its stderr when it exits non-zero.
    @discardableResult
    static func check(_ argv: [String], timeout: Double = 60, directory: String? = nil) throws -> CommandOutput {
        let output = try run(argv, timeout: timeout, directory: directory)
        guard output.succeeded else {
            let detail = output.stderr.isEmpty ? output.stdout : output.stderr
            throw LabError.commandFailed(command: display(argv), status: output.status, stderr: detail)
        }
        return output
    }

    /// `argv` as one would type it in a shell (for messages).
    static func display(_ argv: [String]) -> String {
        argv.map { word in
            let plain = !word.isEmpty && word.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=,@%+".contains($0) }
            return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }
}

/// A started program that the caller can watch while it runs (the KVM probe watches the guest
/// console while QEMU boots) and stop.
final class RunningCommand {
    let argv: [String]
    private let process = Process()
    private let exited = DispatchSemaphore(value: 0)
    private var hasExited = false
    /// The exit status when this class reaped the child itself (see `wait`).
    private var ownStatus: Int32?
    private let stdoutPath: String
    private let stderrPath: String

    /// Starts `argv` with standard input from /dev/null.
    init(_ argv: [String], directory: String? = nil) throws {
        self.argv = argv
        guard let name = argv.first, let executable = Command.find(name) else {
            throw LabError.commandNotStarted(command: Command.display(argv), reason: "\(argv.first ?? "(nothing)") is not installed (not found in \(Command.environment["PATH"] ?? ""))")
        }
        let base = "\(NSTemporaryDirectory())/netprobe-lab-\(getpid())-\(UUID().uuidString.prefix(8))"
        stdoutPath = base + ".out"
        stderrPath = base + ".err"
        guard FileManager.default.createFile(atPath: stdoutPath, contents: nil),
              FileManager.default.createFile(atPath: stderrPath, contents: nil),
              let out = FileHandle(forWritingAtPath: stdoutPath),
              let err = FileHandle(forWritingAtPath: stderrPath)
        else {
            throw LabError.commandNotStarted(command: Command.display(argv), reason: "cannot create temporary files in \(NSTemporaryDirectory())")
        }
        defer {
            try? out.close()
            try? err.close()
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(argv.dropFirst())
        process.environment = Command.environment
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        let exited = self.exited
        process.terminationHandler = { _ in exited.signal() }
        // Swift concurrency's worker threads block nearly every signal, and a spawned program
        // inherits the spawning thread's mask: QEMU and redis-server would then never see the
        // SIGTERM that `down` sends. Spawn with an empty mask, then restore this thread's.
        var empty = sigset_t(), saved = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        do {
            try process.run()
        } catch {
            removeFiles()
            throw LabError.commandNotStarted(command: Command.display(argv), reason: "\(error)")
        }
    }

    /// The process id.
    var pid: Int32 { process.processIdentifier }

    /// Waits until the program exits; false when `timeout` seconds passed first.
    ///
    /// Foundation's Process learns that its child exited when a socket the child inherited
    /// reaches end-of-file, that is when every process holding it has exited. A program that
    /// daemonizes (QEMU `-daemonize`, `redis-server --daemonize yes`, `libvirtd -d`) leaves a
    /// daemon holding that socket, so Process would report the parent as running for as long as
    /// the daemon lives. So the wait also watches for the child becoming a zombie and then reaps
    /// it here with waitpid(2), keeping the status itself.
    func wait(timeout: Double) -> Bool {
        if hasExited { return true }
        let deadline = Date().addingTimeInterval(max(0, timeout))
        while true {
            if exited.wait(timeout: .now() + 0.05) == .success {
                // Returns at once (Process already saw the exit) and drops the run loop source
                // that Process and its context retain from each other: without it, every
                // Process is leaked (found by LeakSanitizer).
                process.waitUntilExit()
                hasExited = true
                return true
            }
            if ProcessTable.state(pid) == "Z" {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid {
                    ownStatus = (raw & 0x7F) == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
                    hasExited = true
                    return true
                }
            }
            if Date() >= deadline { return false }
        }
    }

    /// True once the program has exited (does not block).
    var isFinished: Bool { wait(timeout: 0) }

    /// Ends the program: SIGTERM, and SIGKILL if it is still there after two seconds.
    func stop() {
        guard !wait(timeout: 0) else { return }
        process.terminate()
        if !wait(timeout: 2) {
            kill(process.processIdentifier, SIGKILL)
            _ = wait(timeout: 5)
        }
    }

    /// What the finished program printed, and its status; removes the temporary files.
    func finish() -> CommandOutput {
        _ = wait(timeout: 10)
        let stdout = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
        removeFiles()
        var status: Int32 = -1
        if let ownStatus {
            status = ownStatus
        } else if hasExited {
            status = process.terminationStatus
            if process.terminationReason == .uncaughtSignal { status += 128 }
        }
        return CommandOutput(status: status, stdout: stdout, stderr: stderr)
    }

    /// What the program has written to stdout and stderr so far.
    func outputSoFar() -> String {
        ((try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "") + ((try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "")
    }

    private func removeFiles() {
        try? FileManager.default.removeItem(atPath: stdoutPath)
        try? FileManager.default.removeItem(atPath: stderrPath)
    }

    deinit {
        if !hasExited { stop() }
        removeFiles()
    }
}
