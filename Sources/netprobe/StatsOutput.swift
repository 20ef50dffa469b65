import NetprobeCore

/// One interface's rates between two netlink samples: a row of `stats`' table, or an element of
/// its JSON line. Rates are per second; a counter the kernel does not give is null in JSON ("-"
/// in the table).
struct StatsRow: Encodable {
    var interface: String
    /// True when the interface went away since the last sample (no figures then).
    var gone = false
    var rxPacketsPerSecond: Double?
    var rxBytesPerSecond: Double?
    var rxDroppedPerSecond: Double?
    var txPacketsPerSecond: Double?
    var txBytesPerSecond: Double?
    var txDroppedPerSecond: Double?
    var errorsPerSecond: Double?
    /// The root qdisc's kind (null: none); its backlog and queue length now, its drops and
    /// overlimits per second.
    var qdisc: String?
    var qdiscBacklogBytes: UInt64?
    var qdiscQueueLength: UInt64?
    var qdiscDropsPerSecond: Double?
    var qdiscOverlimitsPerSecond: Double?

    init(gone interface: String) {
        self.interface = interface
        gone = true
    }

    init(from a: NetlinkSample, to b: NetlinkSample) {
        interface = b.interface
        let dt = max(Double(b.timeNs - a.timeNs) / 1e9, 1e-9)
        func rate(_ x: UInt64?, _ y: UInt64?) -> Double? {
            guard let x, let y else { return nil }
            return Double(y &- x) / dt
        }
        let la = a.link, lb = b.link
        rxPacketsPerSecond = rate(la?.rxPackets, lb?.rxPackets)
        rxBytesPerSecond = rate(la?.rxBytes, lb?.rxBytes)
        rxDroppedPerSecond = rate(la?.rxDropped, lb?.rxDropped)
        txPacketsPerSecond = rate(la?.txPackets, lb?.txPackets)
        txBytesPerSecond = rate(la?.txBytes, lb?.txBytes)
        txDroppedPerSecond = rate(la?.txDropped, lb?.txDropped)
        errorsPerSecond = rate(la.map { $0.rxErrors + $0.txErrors }, lb.map { $0.rxErrors + $0.txErrors })
        qdisc = b.qdisc?.kind
        qdiscBacklogBytes = b.qdisc?.backlog
        qdiscQueueLength = b.qdisc?.qlen
        qdiscDropsPerSecond = rate(a.qdisc?.drops, b.qdisc?.drops)
        qdiscOverlimitsPerSecond = rate(a.qdisc?.overlimits, b.qdisc?.overlimits)
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(interface, forKey: .interface)
        try c.encode(gone, forKey: .gone)
        try c.encode(rxPacketsPerSecond, forKey: .rxPacketsPerSecond)
        try c.encode(rxBytesPerSecond, forKey: .rxBytesPerSecond)
        try c.encode(rxDroppedPerSecond, forKey: .rxDroppedPerSecond)
        try c.encode(txPacketsPerSecond, forKey: .txPacketsPerSecond)
        try c.encode(txBytesPerSecond, forKey: .txBytesPerSecond)
        try c.encode(txDroppedPerSecond, forKey: .txDroppedPerSecond)
        try c.encode(errorsPerSecond, forKey: .errorsPerSecond)
        try c.encode(qdisc, forKey: .qdisc)
        try c.encode(qdiscBacklogBytes, forKey: .qdiscBacklogBytes)
        try c.encode(qdiscQueueLength, forKey: .qdiscQueueLength)
        try c.encode(qdiscDropsPerSecond, forKey: .qdiscDropsPerSecond)
        try c.encode(qdiscOverlimitsPerSecond, forKey: .qdiscOverlimitsPerSecond)
    }

    enum CodingKeys: String, CodingKey {
        case interface, gone, rxPacketsPerSecond, rxBytesPerSecond, rxDroppedPerSecond, txPacketsPerSecond, txBytesPerSecond,
             txDroppedPerSecond, errorsPerSecond, qdisc, qdiscBacklogBytes, qdiscQueueLength, qdiscDropsPerSecond,
             qdiscOverlimitsPerSecond
    }
}

/// One interval of `stats --format json`: a line of its own (JSON Lines), so that a script can
/// read the stream as it comes.
struct StatsInterval: Encodable {
    /// CLOCK_REALTIME nanoseconds at the end of the interval (the packets' clock).
    var timeNs: Int64
    var interfaces: [StatsRow]
}

/// One block of `stats`' text output.
enum StatsTable {
    static func render(_ rows: [StatsRow]) -> String {
        func n(_ x: Double?) -> String { x.map { TextReport.fmt($0, 0) } ?? "-" }
        func mb(_ x: Double?) -> String { x.map { TextReport.fmt($0 / 1e6, 2) } ?? "-" }
        var table = [["IFACE", "RX pkt/s", "RX MB/s", "RX drop/s", "TX pkt/s", "TX MB/s", "TX drop/s", "ERR/s", "QDISC", "BACKLOG B", "QLEN", "Q drop/s", "OVERLIM/s"]]
        for r in rows {
            if r.gone {
                table.append([r.interface, "(gone)"])
                continue
            }
            table.append([
                r.interface, n(r.rxPacketsPerSecond), mb(r.rxBytesPerSecond), n(r.rxDroppedPerSecond), n(r.txPacketsPerSecond),
                mb(r.txBytesPerSecond), n(r.txDroppedPerSecond), n(r.errorsPerSecond), r.qdisc ?? "none",
                r.qdiscBacklogBytes.map { "\($0)" } ?? "-", r.qdiscQueueLength.map { "\($0)" } ?? "-",
                n(r.qdiscDropsPerSecond), n(r.qdiscOverlimitsPerSecond),
            ])
        }
        var widths = [Int](repeating: 0, count: table[0].count)
        for r in table { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        return table.map { r in
            r.enumerated().map { i, c in i == 0 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[i] - c.count) + c }
                .joined(separator: "  ")
        }.joined(separator: "\n") + "\n\n"
    }
}
