import Foundation
import NetprobeCore
@testable import NetprobeLoad
import NetprobeSystem

#if canImport(Glibc)
import Glibc
#endif

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A redis-server child process on 127.0.0.1 and a free port, stopped by `stop()` (or deinit).
/// Only loopback: these tests never send traffic anywhere else.
///
/// Started through the project's one spawner (`ChildProcess`), which clears the signal mask: the
/// test runner's worker threads block SIGTERM, and a child that inherited that mask would ignore
/// `stop()` and outlive the tests.
final class LoopbackRedis: @unchecked Sendable {
    static let binary = "/usr/bin/redis-server"
    let port: UInt16
    private var child: ChildProcess?
    private let lock = NSLock()

    init(extraArguments: [String] = []) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw TestFailure("redis-server is not installed at \(Self.binary): run scripts/deps (CI installs it)")
        }
        port = try freeLoopbackPort()
        let arguments = [Self.binary, "--bind", "127.0.0.1", "--port", "\(port)", "--save", "", "--appendonly", "no",
                         "--daemonize", "no", "--loglevel", "warning"] + extraArguments
        child = try ChildProcess(arguments, stdout: .discard, stderr: .discard)
        // Readiness, not a measurement: generous for a loaded machine under sanitizers.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let reply = try? command(["PING"]), reply.hasPrefix("+PONG") || reply.hasPrefix("-NOAUTH") { return }
            usleep(20_000)
        }
        stop()
        throw TestFailure("redis-server on 127.0.0.1:\(port) did not answer PING within 60 s")
    }

    deinit { stop() }

    var target: LoadTarget { LoadTarget(host: "127.0.0.1", port: port) }

    /// SIGTERM, then SIGKILL after 3 s; reaps the child. Safe to call twice, from any thread.
    func stop() {
        lock.lock()
        defer { lock.unlock() }
        child?.stop(grace: 3)
        child = nil
    }

    /// Sends one command on a fresh blocking connection; returns the raw reply (one read until
    /// the reply looks complete, enough for PING and INFO).
    func command(_ words: [String]) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestFailure("connect to 127.0.0.1:\(port) failed") }
        var request = "*\(words.count)\r\n"
        for w in words { request += "$\(w.utf8.count)\r\n\(w)\r\n" }
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var reply = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            reply += buffer[0..<n]
            if Self.isComplete(reply) { break }
        }
        return String(decoding: reply, as: UTF8.self)
    }

    /// Calls per command from `INFO commandstats`, upper-cased ("SET", "GET").
    func commandCalls() throws -> [String: UInt64] {
        RedisInfo.commandStats(try command(["INFO", "commandstats"])).mapValues(\.calls)
    }

    private static func isComplete(_ reply: [UInt8]) -> Bool {
        guard let first = reply.first, let lineEnd = reply.firstIndex(of: 10) else { return false }
        guard first == UInt8(ascii: "$") else { return true }
        let length = Int(String(decoding: reply[1..<(lineEnd - 1)], as: UTF8.self)) ?? 0
        return length < 0 || reply.count >= lineEnd + 1 + length + 2
    }
}


/// A TCP port on 127.0.0.1 that nothing listens on: bind port 0, read the port, close.
func freeLoopbackPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
            guard bind(fd, p, length) == 0 else { return -1 }
            return getsockname(fd, p, &length)
        }
    }
    guard bound == 0 else { throw TestFailure("could not bind a free port on 127.0.0.1") }
    return UInt16(bigEndian: address.sin_port)
}

/// Runs a load and collects every record.
func runCollecting(_ configuration: LoadConfiguration) throws -> (LoadResult, [ClientConnection], [ClientRequestRecord]) {
    var connections: [ClientConnection] = []
    var records: [ClientRequestRecord] = []
    let result = try LoadGenerator(configuration: configuration).run(
        onConnected: { connections = $0 }, onRequest: { records.append($0) })
    return (result, connections, records)
}

/// Wall-clock now in ns via Foundation (independent of the generator's clock code).
func foundationNowNs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1e9) }
