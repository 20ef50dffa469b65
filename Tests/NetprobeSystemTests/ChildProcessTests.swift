import Glibc
import NetprobeSystem
import Testing

/// The one spawner: output drained from both pipes at once, how a child ended, typed failures.
/// No root, no lab: part of `scripts/test --fast`.
@Suite("child processes: one spawner")
struct ChildProcessTests {
    @Test("stdout and stderr each far larger than a pipe buffer (64 KiB) are read to the end, without a hang")
    func bothPipesFull() throws {
        // 1 MiB to stderr first, then 1 MiB to stdout: a reader waiting for stdout's end alone would
        // block the child on a full stderr pipe forever.
        let script = "head -c 1048576 /dev/zero | tr '\\0' e >&2; head -c 1048576 /dev/zero | tr '\\0' o"
        let result = try ChildProcess.run(["sh", "-c", script], timeout: 120)
        #expect(result.status == .exited(0))
        #expect(result.stdout.utf8.count == 1_048_576)
        #expect(result.stderr.utf8.count == 1_048_576)
        #expect(result.stdout.utf8.allSatisfy { $0 == UInt8(ascii: "o") })
        #expect(result.stderr.utf8.allSatisfy { $0 == UInt8(ascii: "e") })
    }

    @Test("interleaved writes to both pipes arrive whole, in order per pipe")
    func interleaved() throws {
        let script = "i=0; while [ $i -lt 2000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done"
        let result = try ChildProcess.run(["sh", "-c", script], timeout: 120).check()
        #expect(result.stdout.split(separator: "\n") == (0..<2000).map { "out\($0)"[...] })
        #expect(result.stderr.split(separator: "\n") == (0..<2000).map { "err\($0)"[...] })
    }

    @Test("a non-zero exit is a status, and check() throws it typed with stderr")
    func exitStatus() throws {
        let result = try ChildProcess.run(["sh", "-c", "echo broken >&2; exit 3"], timeout: 60)
        #expect(result.status == .exited(3))
        #expect(result.status.code == 3)
        #expect(throws: ChildProcessError.exited(command: "sh -c 'echo broken >&2; exit 3'", code: 3, stderr: "broken\n")) {
            try result.check()
        }
    }

    @Test("death by a signal is reported as that signal, not as an exit code")
    func signalDeath() throws {
        let result = try ChildProcess.run(["sh", "-c", "kill -KILL $$"], timeout: 60)
        #expect(result.status == .signalled(SIGKILL))
        #expect(result.status.code == 128 + SIGKILL)
        do {
            try result.check()
            Issue.record("check() passed a killed child")
        } catch {
            guard case .signalled(_, let signal, _) = error else { Issue.record("unexpected \(error)"); return }
            #expect(signal == SIGKILL)
            #expect(error.description.contains("SIGKILL"))
        }
    }

    @Test("a program that is not installed is a typed error naming it and where it was looked for")
    func missingProgram() {
        #expect(throws: ChildProcessError.notFound(program: "netprobe-no-such-program", searchPath: ["/usr/bin", "/bin"])) {
            _ = try ChildProcess(["netprobe-no-such-program"], searchPath: ["/usr/bin", "/bin"])
        }
        #expect(throws: ChildProcessError.notFound(program: "/nonexistent/tool", searchPath: ["/usr/bin"])) {
            _ = try ChildProcess(["/nonexistent/tool"], searchPath: ["/usr/bin"])
        }
    }

    @Test("a working directory that does not exist: the spawn fails with ENOENT, typed")
    func missingDirectory() {
        #expect(throws: ChildProcessError.cannotStart(command: "true", errno: .noSuchFileOrDirectory)) {
            _ = try ChildProcess(["true"], directory: "/nonexistent-netprobe-dir")
        }
    }

    @Test("a child past its deadline is stopped and the run throws timedOut")
    func timeout() {
        // sleep ignores nothing: SIGTERM ends it; what is checked is the error, not how fast.
        #expect(throws: ChildProcessError.timedOut(command: "sleep 600", seconds: 0.2)) {
            _ = try ChildProcess.run(["sleep", "600"], timeout: 0.2)
        }
    }

    @Test("a child that leaves a daemon holding its pipes still counts as finished when it exits")
    func daemonHoldsPipes() throws {
        // The background sleep inherits stdout and stderr: they never reach end-of-file while it lives.
        let result = try ChildProcess.run(["sh", "-c", "sleep 600 & echo $!; exit 4"], timeout: 300)
        #expect(result.status == .exited(4))
        let daemon = try #require(Int32(result.stdout.split(separator: "\n").first ?? ""))
        kill(daemon, SIGKILL)
    }

    @Test("children start with no signal blocked and default handlers, so SIGTERM ends them")
    func signalMask() throws {
        let result = try ChildProcess.run(["grep", "-E", "SigBlk|SigIgn", "/proc/self/status"], timeout: 60).check()
        #expect(result.stdout.contains("SigBlk:\t0000000000000000"), "\(result.stdout)")
        // No standard signal ignored (glibc keeps its own real-time signals 32 and 33 to itself).
        let ignored = result.stdout.split(separator: "\n").first { $0.hasPrefix("SigIgn:") }.flatMap { UInt64($0.dropFirst(7).drop { $0 == "\t" }, radix: 16) }
        #expect(ignored.map { $0 & 0x7fff_ffff } == 0, "\(result.stdout)")
        let child = try ChildProcess(["sleep", "600"])
        child.signal(SIGTERM)
        #expect(child.wait() == .signalled(SIGTERM))
    }

    @Test("environment, working directory, discarded output and a caller's descriptor")
    func options() throws {
        let env = try ChildProcess.run(["sh", "-c", "echo $NETPROBE_X; pwd"], environment: ["NETPROBE_X": "42", "PATH": "/usr/bin:/bin"],
                                       directory: "/tmp").check()
        #expect(env.stdout == "42\n/tmp\n")
        let quiet = try ChildProcess(["sh", "-c", "echo gone; echo gone >&2"], stdout: .discard, stderr: .discard)
        #expect(quiet.wait() == .exited(0))
        #expect(quiet.standardOutput.isEmpty)
        let path = "/tmp/netprobe-spawn-\(getpid()).log"
        defer { unlink(path) }
        let log = try FileDescriptor.open(path, .writeOnly, options: [.create, .truncate], permissions: [.ownerReadWrite])
        defer { try? log.close() }
        let logged = try ChildProcess(["sh", "-c", "echo one; echo two >&2"], stdout: .descriptor(log), stderr: .descriptor(log))
        #expect(logged.wait() == .exited(0))
        let text = try ChildProcess.run(["cat", path], timeout: 60).check().stdout
        #expect(text == "one\ntwo\n")
    }

    @Test("isRunning turns false once the child exits; stop() ends a running one")
    func lifecycle() throws {
        let child = try ChildProcess(["sleep", "600"])
        #expect(child.isRunning)
        #expect(child.stop(grace: 30) == .signalled(SIGTERM))
        #expect(!child.isRunning)
    }
}

@Suite("system calls and threads")
struct SystemCallTests {
    @Test("systemCall retries EINTR and throws other errors typed, with the call's name")
    func errors() {
        var calls = 0
        let value = try? systemCall("fake") { () -> Int32 in
            calls += 1
            if calls < 3 {
                errno = EINTR
                return -1
            }
            return 7
        }
        #expect(value == 7)
        #expect(calls == 3)
        #expect(throws: SystemCallError("open /nonexistent", errno: .noSuchFileOrDirectory)) {
            _ = try systemCall("open /nonexistent") { open("/nonexistent", O_RDONLY) }
        }
        #expect(SystemCallError("open /x", errno: .permissionDenied).description == "open /x failed: permission denied")
    }

    @Test("a thread runs its body and join waits for it")
    func thread() throws {
        final class Box: @unchecked Sendable { var value = 0 }
        let box = Box()
        let t = try JoinableThread(name: "netprobe-test") { box.value = 42 }
        t.join()
        t.join()
        #expect(box.value == 42)
    }
}
