import Foundation
import NetprobeCore
@testable import NetprobeLoad

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
/// Spawned with posix_spawn and an empty signal mask: the test runner's worker threads block
/// SIGTERM, and a child started from one (Foundation's Process does not reset the mask) would
/// ignore `terminate()` and outlive the tests.
final class LoopbackRedis: @unchecked Sendable {
    static let binary = "/usr/bin/redis-server"
    let port: UInt16
    private var pid: pid_t = 0
    private let lock = NSLock()

    init(extraArguments: [String] = []) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw TestFailure("redis-server is not installed at \(Self.binary): run scripts/deps (CI installs it)")
        }
        port = try freeLoopbackPort()
        let arguments = [Self.binary, "--bind", "127.0.0.1", "--port", "\(port)", "--save", "", "--appendonly", "no",
                         "--daemonize", "no", "--loglevel", "warning"] + extraArguments
        pid = try spawn(arguments)
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if let reply = try? command(["PING"]), reply.hasPrefix("+PONG") || reply.hasPrefix("-NOAUTH") { return }
            usleep(20_000)
        }
        stop()
        throw TestFailure("redis-server on 127.0.0.1:\(port) did not answer PING within 5 s")
    }

    deinit { stop() }

    var target: LoadTarget { LoadTarget(host: "127.0.0.1", port: port) }

    /// SIGTERM, then SIGKILL after 3 s; reaps the child. Safe to call twice, from any thread.
    func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(3)
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                break
            }
            usleep(10_000)
        }
        pid = 0
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

/// posix_spawn with default signal dispositions, an empty signal mask, output to /dev/null.
private func spawn(_ arguments: [String]) throws -> pid_t {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t(), all = sigset_t()
    sigemptyset(&empty)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attributes, &empty)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let status = posix_spawn(&pid, arguments[0], &actions, &attributes, &argv, environ)
    guard status == 0 else { throw TestFailure("posix_spawn \(arguments[0]) failed: \(String(cString: strerror(status)))") }
    return pid
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
