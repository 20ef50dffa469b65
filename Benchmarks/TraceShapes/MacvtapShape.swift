// Shape "macvtap": `netprobe capture` on a macvtap guest's three vantage points.

enum MacvtapShape {
    /// 50 connections taking turns every 20 us; a request is seen at the client's interface, 2 us
    /// later at the parent link and 1 us after that at the macvtap; the reply leaves the macvtap
    /// 400-700 us later (the guest), passes the parent 1 us and the client 4 us after that.
    /// Netlink samples for each interface every 100 ms.
    static func synthesise(path: String, packets target: Int) throws -> ShapeSummary {
        let names = ["np-cli", "np-parent", "macvtap0"]
        let sink = try NetprobePcapngSink(path: path, vantages: [(names[0], .client), (names[1], .parent), (names[2], .macvtap)])
        let order = CaptureOrder(sink)
        let delays = VantageDelays(towardsServer: [0, 2_000, 3_000], towardsClient: [4_000, 1_000, 0])
        let talk = Conversation(order: order, frames: .guest, delays: delays)
        var t = syntheticStartNs
        var connections = try talk.openFifty(at: &t)
        var requests = 0
        var nextSample = t
        while order.packets < target {
            try order.release(upTo: t)
            if t >= nextSample {
                for i in names.indices { try sink.netlink(interface: i, timeNs: t, packets: order.packets / 3) }
                nextSample += 100_000_000
            }
            let r = BenchmarkCommands.request(requests)
            talk.exchange(&connections[requests % connections.count], request: r.request, reply: r.reply, at: t,
                          latency: 400_000 + Int64(requests &* 7919) % 300_000)
            requests += 1
            t += 20_000
        }
        try order.finish()
        return ShapeSummary(packets: order.packets, requestsPerVantage: Dictionary(uniqueKeysWithValues: names.map { ($0, requests) }),
                            connections: connections.count)
    }
}
