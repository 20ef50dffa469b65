// Shapes "pcap", "pipelined" and "short-connections": redis-benchmark against Redis on loopback,
// as `tcpdump -i lo -w` records it (libpcap's writer, one vantage point, full snaplen).

enum LoopbackShapes {
    /// 50 connections, open from the start, taking turns every 20 us (closed loop: each sends
    /// again 1 ms later, long after its reply); `perSegment` requests per request segment (-P),
    /// replies 25-60 us later (60-120 us for a pipelined batch).
    static func steady(path: String, packets target: Int, perSegment: Int) throws -> ShapeSummary {
        let order = CaptureOrder(try LibpcapSink(path: path))
        let talk = Conversation(order: order, frames: .loopback, delays: .single)
        var t = syntheticStartNs
        var connections = try talk.openFifty(at: &t)
        var turn = 0
        var requests = 0
        while order.packets < target {
            try order.release(upTo: t)
            let (request, reply) = benchmarkBatch(first: requests, count: perSegment)
            let spread: Int64 = perSegment > 1 ? 60_000 : 35_000
            let latency = (perSegment > 1 ? 60_000 : 25_000) + Int64(turn &* 7919) % spread
            talk.exchange(&connections[turn % connections.count], request: request, reply: reply, at: t, latency: latency)
            requests += perSegment
            turn += 1
            t += 20_000
        }
        try order.finish()
        return ShapeSummary(packets: order.packets, requestsPerVantage: ["if0": requests], connections: connections.count)
    }

    /// 50 slots taking turns every 20 us; each slot's connection opens, sends 3 requests (one per
    /// turn) and closes, then the slot opens a new one on the next port: 12 packets a connection,
    /// 83,000 connections per million packets.
    static func shortConnections(path: String, packets target: Int) throws -> ShapeSummary {
        let order = CaptureOrder(try LibpcapSink(path: path))
        let talk = Conversation(order: order, frames: .loopback, delays: .single)
        let slots = 50
        var open = [SyntheticConnection?](repeating: nil, count: slots)
        var step = [Int](repeating: 0, count: slots)
        var opened = 0
        var requests = 0
        var turn = 0
        var t = syntheticStartNs
        while order.packets < target {
            try order.release(upTo: t)
            let s = turn % slots
            switch step[s] {
            case 0:
                // Linux's default ephemeral ports (ip_local_port_range 32768-60999), in turn: a
                // 4-tuple comes back after 28,232 connections, as it does under redis-benchmark.
                let port = UInt16(32_768 + opened % 28_232)
                let isn = UInt32(truncatingIfNeeded: opened &* 2_654_435_761)
                let c = SyntheticConnection(port: port, clientISN: isn, serverISN: isn ^ 0x5A5A_5A5A)
                talk.handshake(c, at: t)
                open[s] = c
                opened += 1
            case 4:
                talk.close(open[s]!, at: t)
                open[s] = nil
            default:
                let r = BenchmarkCommands.request(requests)
                talk.exchange(&open[s]!, request: r.request, reply: r.reply, at: t, latency: 25_000 + Int64(turn &* 7919) % 35_000)
                requests += 1
            }
            step[s] = (step[s] + 1) % 5
            turn += 1
            t += 20_000
        }
        try order.finish()
        return ShapeSummary(packets: order.packets, requestsPerVantage: ["if0": requests], connections: opened)
    }
}
