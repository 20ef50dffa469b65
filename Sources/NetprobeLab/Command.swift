import Foundation
import NetprobeSystem

/// What a finished program printed and how it ended.
struct CommandOutput: Sendable {
    /// The exit status; 128 + N when the program was ended by signal N (as a shell reports it).
    var status: Int32
    var stdout: String
    var stderr: String
    var succeeded: Bool { status == 0 }

    init(_ result: ChildResult) {
        status = result.status.code
        stdout = result.stdout
        stderr = result.stderr
    }
}

/// Runs the lab's programs (ip, tc, QEMU, redis-cli, virsh, apt-get ...) through the project's one
/// spawner (`ChildProcess`): output captured from both pipes at once, each run with a deadline,
/// and a program that daemonizes (QEMU `-daemonize`, `redis-server --daemonize yes`,
/// `libvirtd -d`) counts as finished when it exits, whatever its daemon holds open.
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
        ChildProcess.find(tool, in: ChildProcess.searchPath(environment))
    }

    /// Starts `argv` with the lab's environment, standard input from /dev/null and its output
    /// captured, for a caller that watches it while it runs (the KVM probe watches the guest console).
    static func start(_ argv: [String], directory: String? = nil) throws -> ChildProcess {
        do {
            return try ChildProcess(argv, environment: environment, directory: directory, stdout: .capture, stderr: .capture)
        } catch {
            throw labError(error, argv)
        }
    }

    /// Runs `argv` and waits for it (at most `timeout` seconds; then it is stopped and this throws).
    /// A non-zero exit status is returned, not thrown: see `check` for that.
    static func run(_ argv: [String], timeout: Double = 60, directory: String? = nil) throws -> CommandOutput {
        do {
            return CommandOutput(try ChildProcess.run(argv, timeout: timeout, environment: environment, directory: directory))
        } catch {
            throw labError(error, argv)
        }
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
    static func display(_ argv: [String]) -> String { ChildProcess.display(argv) }

    /// The spawner's error in the lab's terms.
    private static func labError(_ error: ChildProcessError, _ argv: [String]) -> LabError {
        switch error {
        case .timedOut(_, let seconds): return .commandTimedOut(command: display(argv), seconds: seconds)
        case .exited(_, let code, let stderr): return .commandFailed(command: display(argv), status: code, stderr: stderr)
        case .signalled(_, let signal, let stderr): return .commandFailed(command: display(argv), status: 128 + signal, stderr: stderr)
        case .notFound: return .commandNotStarted(command: display(argv), reason: "\(error)")
        case .cannotStart(_, let errno): return .commandNotStarted(command: display(argv), reason: errno.message)
        }
    }
}
