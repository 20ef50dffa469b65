import Foundation
import Testing
import NetprobeCore
import NetprobeSystem

/// Whether the tests run as root: live capture needs CAP_NET_RAW and CAP_NET_ADMIN, and the
/// network namespaces these tests make need CAP_SYS_ADMIN.
let isRoot = getuid() == 0
let rootNote: Comment = "needs root (capture, network namespaces): CI runs as root; run `sudo swift test`"

/// A network namespace of its own with only `lo` up, deleted in deinit (also when a test fails):
/// the capture tests below capture there, so no traffic outside it is ever touched.
final class LoopbackNamespace {
    let name = "npt-cli-\(getpid())-\(Int.random(in: 1000...9999))"

    init() throws {
        try Self.ip(["netns", "add", name])
        do { try Self.ip(["-n", name, "link", "set", "lo", "up"]) } catch {
            _ = try? Self.ip(["netns", "del", name])
            throw error
        }
    }

    deinit { _ = try? Self.ip(["netns", "del", name]) }

    static func ip(_ arguments: [String]) throws {
        try ChildProcess.run(["ip"] + arguments, timeout: 30).check()
    }
}

/// Issue 16: "Say only what the data backs, and survive every input".
@Suite("netprobe survives hostile input and says what happened", .serialized)
struct SafetyTests {
    static func tempPath(_ suffix: String) -> String {
        NSTemporaryDirectory() + "netprobe-cli-\(UUID().uuidString)\(suffix)"
    }

    @Test("capture with a filter libpcap cannot compile: exit 1, the error names filter, interface and libpcap's text (was a double free, exit 134)",
          .enabled(if: isRoot, rootNote),
          arguments: ["bad filter (((", "tcp port", ")", "tcp port 99999"])
    func badFilter(filter: String) throws {
        let ns = try LoopbackNamespace()
        let out = Self.tempPath(".pcapng")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try CLI.run(["capture", "-i", "lo", "--netns", ns.name, "-f", filter, "-w", out, "--duration", "1s", "--quiet"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("capture filter \"\(filter)\""))
        #expect(r.stderr.contains(" on lo: "))
        #expect(r.stderr.contains("syntax error") || r.stderr.contains("port"), "libpcap's own message: \(r.stderr)")
        #expect(!r.stderr.contains("double free"))
        #expect(!FileManager.default.fileExists(atPath: out), "no trace is created when a handle cannot be opened")
    }
}
