import Glibc
import NetprobeCore

/// A minimal blocking Redis client for a few commands (INFO, PING), with a timeout.
///
/// Create it inside the namespace where Redis is reachable (the socket stays there).
public final class RedisClient {
    public let address: String
    private let fd: Int32

    /// Connects to HOST:PORT ("[v6]:port" for IPv6) with `timeoutMs` for connect and each read.
    public init(address: String, timeoutMs: Int = 2000) throws {
        self.address = address
        guard let (host, port) = Self.split(address) else {
            throw CaptureError("\(address) is not HOST:PORT")
        }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, port, &hints, &result)
        guard rc == 0, let info = result else {
            throw CaptureError("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(result) }
        let s = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw CaptureError.posix("socket") }
        var tv = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard connect(s, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let e = errno
            close(s)
            throw CaptureError.posix("cannot connect to Redis at \(address)", e)
        }
        fd = s
    }

    deinit { close(fd) }

    static func split(_ address: String) -> (String, String)? {
        HostPort(parsing: address).map { ($0.host, String($0.port)) }
    }

    /// Sends one command and returns its reply: the text of a simple or bulk string, "(nil)",
    /// or "(error) ..." for an error reply.
    public func command(_ words: [String]) throws -> String {
        var request = "*\(words.count)\r\n"
        for w in words { request += "$\(w.utf8.count)\r\n\(w)\r\n" }
        let bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw CaptureError.posix("sending to Redis at \(address)") }
            sent += n
        }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            if let text = Self.parse(reply) { return text }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw n == 0 ? CaptureError("Redis at \(address) closed the connection") : CaptureError.posix("reading from Redis at \(address)")
            }
            reply += buffer[0..<n]
            if reply.count > 64 << 20 { throw CaptureError("reply from \(address) larger than 64 MiB") }
        }
    }

    /// A complete simple/error/bulk reply, or nil when more bytes are needed.
    static func parse(_ r: [UInt8]) -> String? {
        guard let first = r.first, let crlf = firstCRLF(r) else { return nil }
        let line = String(decoding: r[1..<crlf], as: UTF8.self)
        switch first {
        case UInt8(ascii: "+"), UInt8(ascii: ":"): return line
        case UInt8(ascii: "-"): return "(error) " + line
        case UInt8(ascii: "$"):
            guard let n = Int(line) else { return "(unparsable reply)" }
            if n < 0 { return "(nil)" }
            let start = crlf + 2
            guard r.count >= start + n + 2 else { return nil }
            return String(decoding: r[start..<(start + n)], as: UTF8.self)
        default:
            return "(unsupported reply type)"
        }
    }

    private static func firstCRLF(_ r: [UInt8]) -> Int? {
        guard r.count >= 2 else { return nil }
        for i in 0..<(r.count - 1) where r[i] == 0x0D && r[i + 1] == 0x0A { return i }
        return nil
    }

    /// AUTH with `password` (Redis's default user). A Redis without a password accepts the
    /// connection anyway; a refusal is an error with Redis's reason (never the password).
    public func authenticate(password: String) throws {
        let reply = try command(["AUTH", password])
        if Self.authAccepted(reply) { return }
        throw CaptureError("Redis at \(address) refused the password: \(Self.errorText(reply))")
    }

    /// Whether AUTH's reply lets INFO go on: OK, or a Redis without a password saying so, in the
    /// words of Redis 6+ ("AUTH <password> called without any password configured for the
    /// default user") or of Redis before 6 ("Client sent AUTH, but no password is set": 3.0 and
    /// 3.2, as in OSv and Rumprun).
    static func authAccepted(_ reply: String) -> Bool {
        reply == "OK" || reply.contains("without any password configured") || reply.contains("no password is set")
    }

    /// An error reply without its "(error) " mark.
    static func errorText(_ reply: String) -> String {
        reply.hasPrefix("(error) ") ? String(reply.dropFirst(8)) : reply
    }

    /// INFO commandstats, INFO latencystats (empty before Redis 7: an unknown section is answered
    /// with nothing) and the version from INFO server (nil if that fails: the rest is still of
    /// use), after AUTH when a password is given. An error reply to INFO commandstats (NOAUTH:
    /// Redis wants a password) is an error.
    public func infoSnapshot(phase: String, password: String? = nil) throws -> RedisInfoSnapshot {
        if let password { try authenticate(password: password) }
        let commands = try command(["INFO", "commandstats"])
        if commands.hasPrefix("(error)") {
            let needsPassword = commands.contains("NOAUTH") || commands.contains("NOPERM")
            throw CaptureError("Redis at \(address) answered INFO with \(Self.errorText(commands))"
                + (needsPassword && password == nil ? " (give capture --redis-password-file FILE, or set REDISCLI_AUTH)" : ""))
        }
        let latency = try command(["INFO", "latencystats"])
        let server = try command(["INFO", "server"])
        return RedisInfoSnapshot(phase: phase, timeNs: realtimeNanoseconds(), address: address,
                                 commandstats: commands, latencystats: latency.hasPrefix("(error)") ? "" : latency,
                                 redisVersion: RedisInfo.version(server))
    }
}
