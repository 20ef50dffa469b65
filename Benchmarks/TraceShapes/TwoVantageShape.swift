// Shape "two-vantage": netprobe-bench's original synthetic trace, byte for byte (so figures stay
// comparable with those measured before the matrix). Its packets are written request then reply,
// not in capture-time order (a reply 400-700 us after its request comes before the requests sent
// meanwhile), which the reader takes as a capture on two interfaces merged loosely.
import Foundation
import NetprobeCore

enum TwoVantageShape {
    static func synthesise(path: String, packets target: Int) throws -> ShapeSummary {
        let e = PcapngEncoder()
        guard let out = fopen(path, "w") else { throw ShapeError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { fclose(out) }
        var buf: [UInt8] = []
        buf.reserveCapacity(1 << 22)
        func flush() {
            buf.withUnsafeBytes { _ = fwrite($0.baseAddress, 1, $0.count, out) }
            buf.removeAll(keepingCapacity: true)
        }
        let frames = FrameBuilder.guest
        func frame(client: UInt16, toServer: Bool, seq: UInt32, ack: UInt32, flags: UInt8, payload: [UInt8]) -> [UInt8] {
            frames.frame(clientPort: client, toServer: toServer, seq: seq, ack: ack, flags: flags, payload: payload)
        }
        func netlink(_ name: String, _ interface: UInt32, _ t: Int64, _ n: Int) {
            let sample = NetlinkSample(timeNs: t, interface: name, link: LinkCounters(
                rxPackets: UInt64(n), rxBytes: UInt64(n * 90), rxErrors: 0, rxDropped: 0,
                txPackets: UInt64(n), txBytes: UInt64(n * 80), txErrors: 0, txDropped: 0),
                qdisc: QdiscCounters(kind: "noqueue", backlog: 0, qlen: 0, drops: 0, overlimits: 0, requeues: 0))
            try! e.appendNetprobeData(to: &buf, payload: NetprobeBlock.netlink(sample).payload(), interface: interface, ticks: UInt64(t))
        }
        e.appendSectionHeader(to: &buf)
        e.appendInterfaceDescription(to: &buf, linkType: .ethernet, snapLength: 2048, name: "virbr0", description: "bridge")
        e.appendInterfaceDescription(to: &buf, linkType: .ethernet, snapLength: 2048, name: "vnet0", description: "tap")
        let connections = 50
        let pipelined = 0 // connection 0 sends 4 requests per packet
        var clientSeq = [UInt32](repeating: 1001, count: connections)
        var serverSeq = [UInt32](repeating: 5001, count: connections)
        var t: Int64 = 1_790_000_000_000_000_000
        var written = 0
        var nextSample = t
        var requests = 0
        for c in 0..<connections {
            let port = UInt16(40000 + c)
            let syn = frame(client: port, toServer: true, seq: 1000, ack: 0, flags: 0x02, payload: [])
            let synAck = frame(client: port, toServer: false, seq: 5000, ack: 1001, flags: 0x12, payload: [])
            for (f, dt) in [(syn, Int64(0)), (synAck, Int64(30_000))] {
                for i in 0..<2 { f.withUnsafeBytes { e.appendEnhancedPacket(to: &buf, interface: UInt32(i), ticks: UInt64(t + dt + Int64(i) * 1500), data: $0, originalLength: f.count) } }
                written += 2
            }
            t += 50_000
        }
        var n = 0
        while written < target {
            let c = n % connections
            let port = UInt16(40000 + c)
            let batch = c == pipelined ? 4 : 1
            var request: [UInt8] = []
            var reply: [UInt8] = []
            for b in 0..<batch {
                let key = "key:\(String(format: "%012d", (n * 7 + b) % 100_000))"
                if (n + b) % 2 == 0 {
                    request += Array("*3\r\n$3\r\nSET\r\n$16\r\n\(key)\r\n$3\r\nxxx\r\n".utf8)
                    reply += Array("+OK\r\n".utf8)
                } else {
                    request += Array("*2\r\n$3\r\nGET\r\n$16\r\n\(key)\r\n".utf8)
                    reply += Array("$3\r\nxxx\r\n".utf8)
                }
            }
            requests += batch
            let q = frame(client: port, toServer: true, seq: clientSeq[c], ack: serverSeq[c], flags: 0x18, payload: request)
            clientSeq[c] &+= UInt32(request.count)
            let r = frame(client: port, toServer: false, seq: serverSeq[c], ack: clientSeq[c], flags: 0x18, payload: reply)
            serverSeq[c] &+= UInt32(reply.count)
            // 20 us between requests (50 k requests/s), 400-700 us in the guest, tap 1.5 us after bridge.
            let inGuest = Int64(400_000 + (n * 7919) % 300_000)
            for i in 0..<2 {
                q.withUnsafeBytes { e.appendEnhancedPacket(to: &buf, interface: UInt32(i), ticks: UInt64(t + Int64(i) * 1500), data: $0, originalLength: q.count) }
            }
            for i in 0..<2 {
                r.withUnsafeBytes { e.appendEnhancedPacket(to: &buf, interface: UInt32(i), ticks: UInt64(t + inGuest + Int64(1 - i) * 1500), data: $0, originalLength: r.count) }
            }
            written += 4
            n += 1
            t += 20_000
            if t >= nextSample {
                netlink("virbr0", 0, t, n)
                netlink("vnet0", 1, t, n)
                nextSample += 100_000_000
            }
            if buf.count > 1 << 22 { flush() }
        }
        flush()
        return ShapeSummary(packets: written, requestsPerVantage: ["virbr0": requests, "vnet0": requests], connections: connections)
    }
}
