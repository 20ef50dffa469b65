#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetprobeCore
import NetprobeSystem

/// A resolved IPv4 or IPv6 socket address (a sockaddr_storage and its length).
struct SocketAddress {
    var storage = sockaddr_storage()
    var length: socklen_t = 0

    var family: Int32 { Int32(storage.ss_family) }

    /// The address as netprobe's `Endpoint`, the type the trace analyzer keys connections by.
    var endpoint: Endpoint {
        withUnsafeBytes(of: storage) { raw -> Endpoint in
            if family == AF_INET6 {
                let sin6 = raw.load(as: sockaddr_in6.self)
                let bytes = withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }
                var high: UInt64 = 0, low: UInt64 = 0
                for i in 0..<8 { high = high << 8 | UInt64(bytes[i]) }
                for i in 8..<16 { low = low << 8 | UInt64(bytes[i]) }
                return Endpoint(address: IPAddress(ipv6High: high, low: low), port: UInt16(bigEndian: sin6.sin6_port))
            }
            let sin = raw.load(as: sockaddr_in.self)
            return Endpoint(address: IPAddress(ipv4: UInt32(bigEndian: sin.sin_addr.s_addr)),
                            port: UInt16(bigEndian: sin.sin_port))
        }
    }

    /// getaddrinfo(3) for a TCP target: every address the name resolves to, in the resolver's order.
    static func resolve(_ target: LoadTarget) throws(LoadError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(target.host, String(target.port), &hints, &list)
        guard status == 0 else {
            throw .resolve(target: target.description, message: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(list) }
        var out: [SocketAddress] = []
        var item = list
        while let info = item?.pointee {
            if let address = info.ai_addr, info.ai_family == AF_INET || info.ai_family == AF_INET6 {
                var resolved = SocketAddress()
                withUnsafeMutableBytes(of: &resolved.storage) { dst in
                    dst.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(info.ai_addrlen)))
                }
                resolved.length = info.ai_addrlen
                out.append(resolved)
            }
            item = info.ai_next
        }
        if out.isEmpty { throw .resolve(target: target.description, message: "no IPv4 or IPv6 address") }
        return out
    }
}

/// A connected, non-blocking TCP socket with TCP_NODELAY set. Closes its descriptor on deinit.
final class TCPSocket {
    let fd: Int32
    let local: Endpoint
    let remote: Endpoint

    /// Connects within `timeoutNs` (a non-blocking connect(2), then poll(2) for writability and
    /// SO_ERROR). Throws a `LoadError.connect` that names the address and the reason.
    init(connectingTo address: SocketAddress, target: LoadTarget, timeoutNs: Int64) throws(LoadError) {
        let remote = address.endpoint
        func failure(_ code: Int32) -> LoadError {
            .connect(target: target.description, address: remote.description, errno: Errno(rawValue: code))
        }
        let flags = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = socket(address.family, flags, 0)
        guard fd >= 0 else { throw failure(errno) }
        var ok = false
        defer { if !ok { close(fd) } }

        var one: Int32 = 1
        guard setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw failure(errno)
        }
        var storage = address.storage
        let started = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, address.length) }
        }
        if started != 0 {
            guard errno == EINPROGRESS || errno == EINTR else { throw failure(errno) }
            let deadline = LoadClock.monotonicNs() + timeoutNs
            var waiting = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            while true {
                let left = deadline - LoadClock.monotonicNs()
                guard left > 0 else { throw failure(ETIMEDOUT) }
                let n = poll(&waiting, 1, Int32(min((left + 999_999) / 1_000_000, Int64(Int32.max))))
                if n > 0 { break }
                if n < 0 && errno != EINTR { throw failure(errno) }
            }
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length) == 0 else { throw failure(errno) }
            guard soError == 0 else { throw failure(soError) }
        }

        var localAddress = SocketAddress()
        localAddress.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &localAddress.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &localAddress.length) }
        }
        guard named == 0 else { throw failure(errno) }
        self.fd = fd
        self.local = localAddress.endpoint
        self.remote = remote
        ok = true
    }

    deinit { close(fd) }
}
