#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetprobeCore

/// A request queued or sent on a connection and not yet answered.
struct InFlightRequest {
    var command: LoadCommandKind
    /// Stream offset of its first byte.
    var offset: UInt64
    var length: Int
    /// CLOCK_REALTIME before the send(2) that carried its last byte; 0 until then.
    var sendNs: Int64
}

/// One connection's state in a run: its socket, the bytes waiting to be sent, the requests
/// waiting for replies (oldest first) and the reply decoder. Buffers are sized once, for
/// `pipeline` requests, and reused for the whole run.
final class LoadConnection {
    let socket: TCPSocket
    let info: ClientConnection
    var decoder = RESPStreamDecoder(role: .responses)

    /// Queued bytes not yet accepted by the kernel are `sendBuffer[sendStart..<sendEnd]`.
    private let sendBuffer: UnsafeMutableRawPointer
    private let sendCapacity: Int
    private(set) var sendStart = 0
    private(set) var sendEnd = 0

    /// In-flight requests: a ring of `pipeline` slots; `stamped` of them (from the oldest) have
    /// been sent completely.
    private let ring: UnsafeMutablePointer<InFlightRequest>
    let pipeline: Int
    private var head = 0
    private(set) var inFlight = 0
    private var stamped = 0

    /// Stream offsets: bytes queued (the next request's offset), sent, and received so far.
    private(set) var bytesQueued: UInt64 = 0
    private(set) var bytesSent: UInt64 = 0
    var bytesReceived: UInt64 = 0

    /// EPOLLOUT is being watched (the kernel's send buffer was full).
    var watchingWritable = false
    /// Why the connection stopped during the run; nil while it is usable.
    var failure: String?

    init(socket: TCPSocket, index: Int, pipeline: Int, maximumRequestLength: Int, connectedNs: Int64) {
        self.socket = socket
        self.pipeline = pipeline
        info = ClientConnection(index: index, client: socket.local, server: socket.remote, connectedNs: connectedNs)
        sendCapacity = pipeline * maximumRequestLength
        sendBuffer = UnsafeMutableRawPointer.allocate(byteCount: sendCapacity, alignment: 16)
        ring = UnsafeMutablePointer<InFlightRequest>.allocate(capacity: pipeline)
    }

    deinit {
        sendBuffer.deallocate()
        ring.deallocate()
    }

    var fd: Int32 { socket.fd }
    var hasRoom: Bool { inFlight < pipeline }
    var hasUnsentBytes: Bool { sendEnd > sendStart }

    /// Queues one request (its bytes and its in-flight slot). The caller checked `hasRoom`.
    @inline(__always)
    func enqueue(_ command: LoadCommandKind, key: UInt64, encoder: RequestEncoder) {
        // Bytes still queued belong to in-flight requests, so moving them to the front always
        // leaves room for one more request (the buffer holds `pipeline` of the longest).
        if sendEnd + encoder.maximumLength > sendCapacity {
            sendBuffer.copyMemory(from: sendBuffer + sendStart, byteCount: sendEnd - sendStart)
            sendEnd -= sendStart
            sendStart = 0
        }
        let length = encoder.encode(command, key: key, into: sendBuffer + sendEnd)
        sendEnd += length
        var slot = head + inFlight
        if slot >= pipeline { slot -= pipeline }
        ring[slot] = InFlightRequest(command: command, offset: bytesQueued, length: length, sendNs: 0)
        bytesQueued += UInt64(length)
        inFlight += 1
    }

    /// One send(2) of the queued bytes (MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE).
    /// Requests whose last byte went out are stamped with the time read just before the call.
    /// Returns 0 when done or blocked (`hasUnsentBytes` tells which), else an errno.
    @inline(__always)
    func sendQueued() -> Int32 {
        while true {
            let before = LoadClock.realtimeNs()
            let n = send(socket.fd, sendBuffer + sendStart, sendEnd - sendStart, Int32(MSG_NOSIGNAL))
            if n > 0 {
                sendStart += n
                bytesSent += UInt64(n)
                stampSent(at: before)
                if sendStart == sendEnd {
                    sendStart = 0
                    sendEnd = 0
                }
                return 0
            }
            let code = errno
            if code == EINTR { continue }
            return code == EAGAIN || code == EWOULDBLOCK ? 0 : code
        }
    }

    @inline(__always)
    private func stampSent(at ns: Int64) {
        while stamped < inFlight {
            var slot = head + stamped
            if slot >= pipeline { slot -= pipeline }
            guard ring[slot].offset + UInt64(ring[slot].length) <= bytesSent else { return }
            ring[slot].sendNs = ns
            stamped += 1
        }
    }

    /// Removes and returns the oldest in-flight request; nil when none is waiting.
    @inline(__always)
    func completeOldest() -> InFlightRequest? {
        guard stamped > 0 else { return nil }
        let r = ring[head]
        head += 1
        if head == pipeline { head = 0 }
        inFlight -= 1
        stamped -= 1
        return r
    }

    /// Forgets every in-flight request (the connection failed); returns how many there were.
    func abandonInFlight() -> Int {
        let n = inFlight
        inFlight = 0
        stamped = 0
        head = 0
        sendStart = 0
        sendEnd = 0
        return n
    }
}
