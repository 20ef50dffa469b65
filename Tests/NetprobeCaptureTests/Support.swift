import Foundation
import Testing
@testable import NetprobeCapture
import NetprobeCore

/// Runs a command; returns (status, stdout). A failure (unless allowed) throws with stderr.
@discardableResult
func sh(_ args: [String], allowFailure: Bool = false) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    // stderr goes to a file, not a second pipe: reading one pipe to its end while the child fills
    // the other (64 KiB, e.g. a sanitizer report) would block both forever.
    let out = Pipe(), errPath = tempPath(".stderr")
    guard FileManager.default.createFile(atPath: errPath, contents: nil), let err = FileHandle(forWritingAtPath: errPath) else {
        throw CaptureError("cannot create \(errPath)")
    }
    defer { try? FileManager.default.removeItem(atPath: errPath) }
    p.standardOutput = out
    p.standardError = err
    try p.run()
    try? err.close()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let errors = FileManager.default.contents(atPath: errPath) ?? Data()
    let text = String(decoding: data, as: UTF8.self)
    if p.terminationStatus != 0 && !allowFailure {
        throw CaptureError("\(args.joined(separator: " ")) failed (\(p.terminationStatus)): \(String(decoding: errors, as: UTF8.self))")
    }
    return (p.terminationStatus, text)
}

let isRoot = getuid() == 0
let rootNote: Comment = "needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN) and redis-server: CI runs as root; run `sudo swift test`"

/// A throw-away topology for capture tests, torn down in deinit (also when a test fails):
/// namespace `client` with a bridge `npbr0` (10.78.0.1/24) and a veth `npv0` enslaved to it whose
/// peer sits in namespace `server` (10.78.0.2/24) where a real redis-server listens.
/// All traffic stays inside these two namespaces.
final class TestTopology {
    let client: String
    let server: String
    var redis: ChildProcess?

    /// Redis's port in the server namespace.
    let port: Int

    init(loopbackOnly: Bool = false, port: Int = 6379) throws {
        self.port = port
        let tag = "\(getpid())-\(Int.random(in: 1000...9999))"
        client = "npt-c-\(tag)"
        server = "npt-s-\(tag)"
        try sh(["ip", "netns", "add", client])
        do {
            try sh(["ip", "-n", client, "link", "set", "lo", "up"])
            if loopbackOnly {
                try startRedis(namespace: client, bind: "127.0.0.1")
                return
            }
            try sh(["ip", "netns", "add", server])
            try sh(["ip", "-n", server, "link", "set", "lo", "up"])
            try sh(["ip", "-n", client, "link", "add", "npbr0", "type", "bridge"])
            try sh(["ip", "-n", client, "addr", "add", "10.78.0.1/24", "dev", "npbr0"])
            try sh(["ip", "-n", client, "link", "add", "npv0", "type", "veth", "peer", "name", "npv1", "netns", server])
            try sh(["ip", "-n", client, "link", "set", "npv0", "master", "npbr0"])
            try sh(["ip", "-n", client, "link", "set", "npv0", "up"])
            try sh(["ip", "-n", client, "link", "set", "npbr0", "up"])
            try sh(["ip", "-n", server, "addr", "add", "10.78.0.2/24", "dev", "npv1"])
            try sh(["ip", "-n", server, "link", "set", "npv1", "up"])
            try startRedis(namespace: server, bind: "10.78.0.2")
        } catch {
            teardown()
            throw error
        }
    }

    private func startRedis(namespace: String, bind: String) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server") else {
            throw CaptureError("redis-server is not installed (scripts/deps installs it)")
        }
        let devnull = open("/dev/null", O_WRONLY)
        defer { close(devnull) }
        redis = try ChildProcess(["ip", "netns", "exec", namespace, "redis-server", "--bind", bind, "--port", "\(port)",
                                  "--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no"],
                                 stdout: devnull)
        let address = "\(bind):\(port)"
        for _ in 0..<100 {
            if (try? NetworkNamespace.withNamespace(client, { try RedisClient(address: address).command(["PING"]) })) == "PONG" { return }
            usleep(50_000)
        }
        throw CaptureError("redis-server in \(namespace) did not answer PING")
    }

    func teardown() {
        if let redis {
            redis.terminate()
            redis.wait(timeout: 5)
        }
        redis = nil
        _ = try? sh(["ip", "netns", "del", client], allowFailure: true)
        _ = try? sh(["ip", "netns", "del", server], allowFailure: true)
    }

    deinit { teardown() }
}

func tempPath(_ suffix: String) -> String {
    NSTemporaryDirectory() + "netprobe-capture-\(UUID().uuidString)\(suffix)"
}
