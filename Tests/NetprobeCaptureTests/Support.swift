import Foundation
import Testing
@testable import NetprobeCapture
import NetprobeCore
import NetprobeSystem

/// Runs a command; returns (status, stdout). A failure (unless allowed) throws with stderr.
/// stdout and stderr are drained together by the project's spawner: a child that fills one pipe
/// (a sanitizer report on stderr) while the other is being read cannot block.
@discardableResult
func sh(_ args: [String], allowFailure: Bool = false) throws -> (Int32, String) {
    let r = try ChildProcess.run(args, timeout: 900)
    if !r.status.succeeded && !allowFailure {
        throw CaptureError("\(args.joined(separator: " ")) failed (\(r.status)): \(r.stderr)")
    }
    return (r.status.code, r.stdout)
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
    let redisArguments: [String]

    /// `redisArguments`: more redis-server options (e.g. to make it answer as an older Redis would).
    init(loopbackOnly: Bool = false, port: Int = 6379, redisArguments: [String] = []) throws {
        self.port = port
        self.redisArguments = redisArguments
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
        redis = try ChildProcess(["ip", "netns", "exec", namespace, "redis-server", "--bind", bind, "--port", "\(port)",
                                  "--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no"] + redisArguments,
                                 stdout: .discard)
        let address = "\(bind):\(port)"
        // Readiness, not a measurement: up to a minute on a loaded machine.
        for _ in 0..<1200 {
            if (try? NetworkNamespace.withNamespace(client, { try RedisClient(address: address).command(["PING"]) })) == "PONG" { return }
            usleep(50_000)
        }
        throw CaptureError("redis-server in \(namespace) did not answer PING")
    }

    func teardown() {
        if let redis {
            redis.stop(grace: 5)
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
