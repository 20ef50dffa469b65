import Foundation
import Testing
import NetprobeSystem
@testable import netprobe

/// Runs netprobe with standard error on a terminal and standard output in a file: util-linux's
/// `script` gives the command a pseudo-terminal and copies what arrives there to its own standard
/// output. Returns (status, netprobe's standard output, what the terminal received).
func runWithTerminalStderr(_ arguments: [String], environment: [String: String] = [:]) throws -> (Int32, String, String) {
    let out = NSTemporaryDirectory() + "netprobe-tty-\(UUID().uuidString).out"
    defer { try? FileManager.default.removeItem(atPath: out) }
    func quoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
    let command = ([CLI.binary] + arguments).map(quoted).joined(separator: " ") + " >" + quoted(out)
    let r = try ChildProcess.run(["script", "-qec", command, "/dev/null"], timeout: 600,
                                 environment: ProcessInfo.processInfo.environment.merging(environment) { _, new in new },
                                 directory: CLI.packageRoot.path)
    let stdout = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
    return (r.status.code, stdout, r.stdout)
}

/// Issue 16, item 26: progress of a long report, on a terminal only.
@Suite("report shows how far it has read, on a terminal only", .serialized)
struct ProgressTests {
    static let trace = CLI.packageRoot.appendingPathComponent("traces/bridge-tap-nano.pcap").path
    static let now = ["NETPROBE_PROGRESS_DELAY_MS": "0"] // the first line at once: no timer to race

    @Test("on a terminal: 'reading FILE: X of SIZE (P %), RATE/s' on standard error, erased before the report; the report itself unchanged")
    func terminal() throws {
        let plain = try CLI.run(["report", Self.trace])
        let (status, stdout, terminal) = try runWithTerminalStderr(["report", Self.trace], environment: Self.now)
        #expect(status == plain.status)
        #expect(stdout == plain.stdout, "the report is the same with progress on")
        #expect(terminal.contains("\rreading \(Self.trace): "), "\(terminal.debugDescription)")
        #expect(terminal.contains(" of 8.47 MB (") && terminal.contains("B/s"), "\(terminal.debugDescription)")
        #expect(terminal.hasSuffix("\r\u{1B}[K"), "the line is erased at the end: \(terminal.debugDescription)")
        // JSON on standard output stays JSON.
        let (_, json, _) = try runWithTerminalStderr(["report", Self.trace, "--format", "json"], environment: Self.now)
        #expect((try? JSONSerialization.jsonObject(with: Data(json.utf8))) != nil)
        #expect(!json.contains("reading"))
    }

    @Test("--quiet and --no-progress: none on a terminal; none at all when standard error is not a terminal")
    func off() throws {
        for flag in ["--quiet", "--no-progress"] {
            let (status, _, terminal) = try runWithTerminalStderr(["report", Self.trace, flag], environment: Self.now)
            #expect(status == 0)
            #expect(!terminal.contains("reading"), "\(flag): \(terminal.debugDescription)")
        }
        let piped = try CLI.run(["report", Self.trace], environment: Self.now)
        #expect(piped.status == 0 && piped.stderr.isEmpty, "\(piped.stderr.debugDescription)")
    }

    @Test("the position is the kernel's for the descriptors open on the trace (found by device and inode), and the line says it")
    func position() throws {
        let progress = try #require(ReadProgress(tracing: Self.trace))
        #expect(progress.position() == nil, "nothing open on it yet")
        let fd = open(Self.trace, O_RDONLY)
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1_234_567)
        #expect(buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 1_234_567) } == 1_234_567)
        #expect(progress.position() == 1_234_567)
        #expect(progress.line(read: 1_234_567).hasPrefix("reading \(Self.trace): 1.23 MB of 8.47 MB (14 %), "))
        #expect(progress.line(read: 8_474_411) == "read \(Self.trace): 8.47 MB (100 %), analysing")
        #expect(ReadProgress(tracing: "/dev/null") == nil, "no size: no progress")
        #expect(ReadProgress.bytes(999) == "999 B" && ReadProgress.bytes(1_500) == "1.50 kB" && ReadProgress.bytes(3_400_000_000) == "3.40 GB")
    }
}
