import Foundation
import Testing
@testable import NetprobeCapture
import NetprobeCore
import NetprobeSystem

/// Captures that end badly still leave a file every reader accepts.
@Suite("capture under faults (root)", .serialized, .enabled(if: isRoot, rootNote))
struct CaptureFaultTests {
    /// Reads a trace with netprobe (no error allowed) and with tshark (exit 0); returns the packets.
    func assertValid(_ path: String, _ label: String) throws -> Int {
        let reader = try TraceReader(path: path)
        var n = 0
        do {
            while try reader.next() != nil { n += 1 }
        } catch {
            Issue.record("\(label): netprobe could not read \(path): \(error)")
        }
        #expect(reader.warnings.isEmpty, "\(label): \(reader.warnings)")
        let (status, _) = try sh(["tshark", "-r", path, "-T", "fields", "-e", "frame.number"], allowFailure: true)
        #expect(status == 0, "\(label): tshark could not read \(path)")
        return n
    }

    @Test("SIGINT, SIGTERM or SIGHUP at 21 random moments: the file is always complete and valid")
    func randomSignals() throws {
        let topo = try TestTopology()
        defer { topo.teardown() }
        var rng = SystemRandomNumberGenerator()
        let signals: [(Int32, String)] = [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM"), (SIGHUP, "SIGHUP")]
        var withPackets = 0
        for k in 0..<21 {
            let out = tempPath(".pcapng")
            defer { try? FileManager.default.removeItem(atPath: out) }
            let capture = try ChildProcess([CaptureCLITests.binary, "capture", "-i", "npbr0", "-i", "npv0", "--netns", topo.client,
                                            "-w", out, "--quiet", "--", "redis-benchmark", "-h", "10.78.0.2", "-n", "10000000", "-q"],
                                           stdout: .discard, stderr: .discard)
            let (signal, name) = signals[k % 3]
            // Odd rounds first wait until packets reach the file (however long a loaded machine
            // takes to open the handles), so that at least 10 rounds stop a capture in full flow;
            // even rounds stop it at any moment, its start included.
            if k % 2 == 1 {
                var size = 0
                for _ in 0..<1200 where size < 16_384 && capture.isRunning {
                    usleep(50_000)
                    size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
                }
            }
            let delay = Double.random(in: 0.05...0.8, using: &rng)
            usleep(useconds_t(delay * 1_000_000))
            capture.signal(signal)
            let status = capture.wait(orStopAfter: 60)
            #expect(status == .exited(0), "\(name) after \(delay) s: \(status)")
            if FileManager.default.fileExists(atPath: out) {
                if try assertValid(out, "\(name) after \(delay) s") > 0 { withPackets += 1 }
            } else {
                // Stopped before the handles were open: nothing to write, nothing lost. Only a
                // round that did not wait for packets can end so.
                #expect(k % 2 == 0, "\(name) after \(delay) s left no file")
            }
        }
        #expect(withPackets >= 10)
    }

    /// A tmpfs of `megabytes` under the temporary directory: a disk that fills.
    static func smallDisk(_ name: String, megabytes: Int) throws -> String {
        let dir = NSTemporaryDirectory() + "\(name)-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try sh(["mount", "-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", dir])
        return dir
    }

    static func remove(disk dir: String) {
        _ = try? sh(["umount", dir], allowFailure: true)
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test("a full disk stops the capture with a clear error; the file is valid up to its last complete block")
    func diskFull() throws {
        let topo = try TestTopology()
        defer { topo.teardown() }
        let dir = try Self.smallDisk("netprobe-full", megabytes: 2)
        defer { Self.remove(disk: dir) }
        let out = dir + "/full.pcapng"
        let (status, text) = try sh([CaptureCLITests.binary, "capture", "-i", "npbr0", "-i", "npv0", "--netns", topo.client,
                                     "-w", out, "--quiet", "--duration", "60s", "--",
                                     "redis-benchmark", "-h", "10.78.0.2", "-n", "10000000", "-q"], allowFailure: true)
        #expect(status == 1)
        // sh() returns stdout only; the error went to stderr: run the check through the file.
        _ = text
        let packets = try assertValid(out, "disk full")
        #expect(packets > 1000)
    }

    @Test("when the capture fails, the load generator's own records are kept and named, not lost")
    func loadRecordsKept() throws {
        let topo = try TestTopology()
        defer { topo.teardown() }
        // Paced, so that the disk fills seconds into the run, long after the load has started.
        let dir = try Self.smallDisk("netprobe-full-records", megabytes: 4)
        defer { Self.remove(disk: dir) }
        let r = try ChildProcess.run([CaptureCLITests.binary, "capture", "-i", "npbr0", "-i", "npv0", "--netns", topo.client,
                                      "-w", dir + "/full.pcapng", "--quiet", "--duration", "60s", "--",
                                      "netprobe", "load", "--target", "10.78.0.2:6379", "-c", "4", "--rate", "2000", "--duration", "60s"], timeout: 120)
        #expect(r.status.code == 1)
        let line = try #require(r.stderr.split(separator: "\n").first { $0.contains("records are kept in") }, "stderr: \(r.stderr.suffix(600))")
        let path = try #require(line.split(separator: " ").first { $0.hasSuffix(".npts") }.map(String.init))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        #expect(size > 1000, "the kept records file \(path) has \(size) bytes")
    }
}
