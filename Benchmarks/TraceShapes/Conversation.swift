// Request/reply traffic over synthetic connections, seen at one or more vantage points.

/// The vantage points a shape's packets are seen at: for each interface, how long after the
/// first sighting a segment towards the server (or back to the client) passes it.
struct VantageDelays {
    var towardsServer: [Int64]
    var towardsClient: [Int64]
    static let single = VantageDelays(towardsServer: [0], towardsClient: [0])
}

/// Schedules the packets of synthetic connections at every vantage point.
struct Conversation {
    let order: CaptureOrder
    let frames: FrameBuilder
    let delays: VantageDelays

    /// 50 connections from port 40000 up, their handshakes 20 us apart from `t` (advanced past
    /// the last): the steady shapes' clients, open from the start. `opened` hears of each, with
    /// its number and its handshake's time.
    func openFifty(at t: inout Int64, opened: (Int, SyntheticConnection, Int64) throws -> Void = { _, _, _ in }) throws -> [SyntheticConnection] {
        let connections = (0..<50).map { SyntheticConnection(port: UInt16(40_000 + $0)) }
        for (i, c) in connections.enumerated() {
            try order.release(upTo: t)
            handshake(c, at: t)
            try opened(i, c, t)
            t += 20_000
        }
        return connections
    }

    func send(_ t: Int64, toServer: Bool, _ frame: [UInt8]) {
        for (i, d) in (toServer ? delays.towardsServer : delays.towardsClient).enumerated() {
            order.schedule(t + d, interface: i, frame)
        }
    }

    /// SYN, SYN-ACK, ACK; `c`'s sequence numbers must be its ISNs + 1.
    func handshake(_ c: SyntheticConnection, at t: Int64) {
        send(t, toServer: true, frames.frame(clientPort: c.port, toServer: true, seq: c.clientSeq &- 1, ack: 0, flags: TCPFlags.syn))
        send(t + 8_000, toServer: false, frames.frame(clientPort: c.port, toServer: false, seq: c.serverSeq &- 1, ack: c.clientSeq, flags: TCPFlags.synAck))
        send(t + 12_000, toServer: true, frames.frame(clientPort: c.port, toServer: true, seq: c.clientSeq, ack: c.serverSeq, flags: TCPFlags.ack))
    }

    /// One request segment at `t` and its reply segment `latency` later.
    func exchange(_ c: inout SyntheticConnection, request: [UInt8], reply: [UInt8], at t: Int64, latency: Int64) {
        send(t, toServer: true, frames.frame(clientPort: c.port, toServer: true, seq: c.clientSeq, ack: c.serverSeq, flags: TCPFlags.push, payload: request))
        c.clientSeq &+= UInt32(request.count)
        c.sent += UInt64(request.count)
        send(t + latency, toServer: false, frames.frame(clientPort: c.port, toServer: false, seq: c.serverSeq, ack: c.clientSeq, flags: TCPFlags.push, payload: reply))
        c.serverSeq &+= UInt32(reply.count)
        c.received += UInt64(reply.count)
    }

    /// The client closes: FIN, the server's FIN, the last ACK.
    func close(_ c: SyntheticConnection, at t: Int64) {
        send(t, toServer: true, frames.frame(clientPort: c.port, toServer: true, seq: c.clientSeq, ack: c.serverSeq, flags: TCPFlags.finAck))
        send(t + 8_000, toServer: false, frames.frame(clientPort: c.port, toServer: false, seq: c.serverSeq, ack: c.clientSeq &+ 1, flags: TCPFlags.finAck))
        send(t + 12_000, toServer: true, frames.frame(clientPort: c.port, toServer: true, seq: c.clientSeq &+ 1, ack: c.serverSeq &+ 1, flags: TCPFlags.ack))
    }
}

/// The request and reply bytes of `count` redis-benchmark requests starting at number `first`.
func benchmarkBatch(first: Int, count: Int) -> (request: [UInt8], reply: [UInt8]) {
    var request: [UInt8] = []
    var reply: [UInt8] = []
    for k in first..<first + count {
        let r = BenchmarkCommands.request(k)
        request += r.request
        reply += r.reply
    }
    return (request, reply)
}

/// When synthetic captures start (2026-09-21, on the capture clock).
let syntheticStartNs: Int64 = 1_790_000_000_000_000_000
