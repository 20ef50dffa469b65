// Shape "client-records": `netprobe capture -i lo -- netprobe load`, written with the same types a
// capture uses: the load generator's ClientRecordWriter fills a records file while the packets
// are written; at the end ClientRecordReader cuts it into blocks, each stored as an item of
// netprobe's data (CapturePlanner's ClientRecordBlocks.read, CaptureSession's finalBlocks).
import Foundation
import NetprobeCore
import NetprobeLoad

enum ClientRecordsShape {
    /// 50 connections taking turns every 20 us, replies 25-60 us later; the load generator stamps
    /// its send 6 us before the request's packet and its receive 9 us after the reply's.
    static func synthesise(path: String, packets target: Int) throws -> ShapeSummary {
        let sink = try NetprobePcapngSink(path: path, vantages: [("lo", .host)])
        let order = CaptureOrder(sink)
        let talk = Conversation(order: order, frames: .loopback, delays: .single)
        let recordsPath = path + ".npts"
        defer { try? FileManager.default.removeItem(atPath: recordsPath) }
        let records = try ClientRecordWriter(path: recordsPath)
        let localhost = IPAddress(ipv4: 0x7F00_0001)
        let server = Endpoint(address: localhost, port: 6379)
        var t = syntheticStartNs
        var connections = try talk.openFifty(at: &t) { i, c, at in
            records.add(ClientConnection(index: i, client: Endpoint(address: localhost, port: c.port), server: server, connectedNs: at + 12_000))
        }
        var requests = 0
        while order.packets < target {
            try order.release(upTo: t)
            let i = requests % connections.count
            let r = BenchmarkCommands.request(requests)
            let latency = 25_000 + Int64(requests &* 7919) % 35_000
            let before = connections[i]
            talk.exchange(&connections[i], request: r.request, reply: r.reply, at: t, latency: latency)
            records.add(ClientRequestRecord(
                connection: i, client: Endpoint(address: localhost, port: before.port), server: server,
                command: r.isSet ? .set : .get, isErrorReply: false, requestOffset: before.sent, requestLength: r.request.count,
                replyOffset: before.received, sendNs: t - 6_000, receiveNs: t + latency + 9_000))
            requests += 1
            t += 20_000
        }
        try records.finish()
        try order.release(upTo: .max)
        try ClientRecordReader(path: recordsPath).forEachBlock { block in
            try sink.netprobeData(block, timeNs: t)
        }
        try sink.finish()
        return ShapeSummary(packets: order.packets, requestsPerVantage: ["lo": requests], connections: connections.count,
                            clientRecords: requests)
    }
}
