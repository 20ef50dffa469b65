import Foundation
import NetprobeCore
import Testing
@testable import NetprobeLab

/// The lab tests build real namespaces, bridges, taps, macvtaps, QEMU guests and libvirtd: they
/// need root. They do not skip: without root they fail with this note (CI runs as root).
let rootNote: Comment = "netprobe lab tests need root (namespaces, links, QEMU, libvirtd): run `sudo swift test --filter NetprobeLabTests`; CI runs as root"

func requireRoot() throws {
    try #require(geteuid() == 0, rootNote)
}

/// What the host looks like from the root namespace: `ip netns list` and `ip -d link`.
/// A lab must leave both exactly as it found them.
struct HostSnapshot: Equatable {
    var namespaces: [String]
    var links: String

    /// Namespaces that other test suites in the same run create and remove on their own
    /// (the capture tests' npt-c-* / npt-s-*): not the lab's, so left out of the comparison.
    static let foreignPrefixes = ["npt-"]

    /// The snapshot around a test of lab `name`. Namespaces of *other* labs that have state
    /// (a lab someone else brought up meanwhile) are left out too; the tested lab's never are.
    static func take(testing name: String) throws -> HostSnapshot {
        let otherLabs = LabStore.names().filter { $0 != name }
        let others = Set(otherLabs.flatMap { [Lab.namespace(for: $0), Lab.serverNamespace(for: $0)] })
        let list = try Command.check(["ip", "netns", "list"]).stdout
        let names = list.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
            .filter { name in !foreignPrefixes.contains { name.hasPrefix($0) } && !others.contains(name) }
        return HostSnapshot(namespaces: names.sorted(), links: try Command.check(["ip", "-d", "link"]).stdout)
    }
}

/// `redis-cli -h HOST -p PORT ping` from inside `namespace`.
func ping(_ address: String, from namespace: String) throws -> String {
    let (host, port) = RedisPing.split(address)
    let out = try Command.run(["ip", "netns", "exec", namespace, "redis-cli", "-h", host, "-p", port, "ping"], timeout: 10)
    return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Running processes (zombies waiting for their reaper do not count) whose command name is `name`.
func livePids(named name: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return comm == name && ProcessTable.isAlive(pid)
    }
}

/// Waits up to `seconds` for `condition`.
func eventually(_ seconds: Double = 60, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(100_000)
    }
    return condition()
}

/// Progress lines from the library, kept for failure messages.
final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [(at: Date, text: String)] = []
    var sink: LabProgress { { [self] line in lock.lock(); lines.append((Date(), line)); lock.unlock() } }
    var text: String { lock.lock(); defer { lock.unlock() }; return lines.map(\.text).joined(separator: "\n") }
    /// Seconds from the first line containing `marker` to the line after it (nil when there is none).
    func secondsAfter(_ marker: String) -> Double? {
        lock.lock()
        defer { lock.unlock() }
        guard let k = lines.firstIndex(where: { $0.text.contains(marker) }), k + 1 < lines.count else { return nil }
        return lines[k + 1].at.timeIntervalSince(lines[k].at)
    }
}

/// The built `netprobe` binary, run as a user would.
enum NetprobeBinary {
    static let path: String = {
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let nextToTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("netprobe").path
        if FileManager.default.isExecutableFile(atPath: nextToTests) { return nextToTests }
        for candidate in [".build/debug/netprobe", ".build-lab/debug/netprobe", ".build/release/netprobe"] {
            let path = packageRoot.appendingPathComponent(candidate).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nextToTests
    }()

    static func run(_ arguments: [String], timeout: Double = 900) throws -> CommandOutput {
        try Command.run([path] + arguments, timeout: timeout)
    }
}
