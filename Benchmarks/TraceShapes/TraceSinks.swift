// Where the synthetic packets go: the writers a user's trace comes from (libpcap's dumper, as
// tcpdump -w uses; netprobe capture's pcapng encoder), in capture-time order.
import CPcap
import Foundation
import NetprobeCore

/// A trace file being written, one packet at a time.
protocol PacketSink: AnyObject {
    func packet(interface: Int, timeNs: Int64, frame: [UInt8]) throws
    /// A netlink sample for `interface` (pcapng only; ignored in a classic pcap).
    func netlink(interface: Int, timeNs: Int64, packets: Int) throws
    func finish() throws
}

/// A classic pcap written by libpcap itself (pcap_dump_open / pcap_dump): what `tcpdump -w` writes,
/// microsecond timestamps, one link, full snaplen.
final class LibpcapSink: PacketSink {
    private let dead: OpaquePointer
    private let dumper: OpaquePointer
    private var closed = false

    init(path: String, snapLength: Int32 = 262_144) throws {
        guard let dead = pcap_open_dead_with_tstamp_precision(1 /* DLT_EN10MB */, snapLength, UInt32(PCAP_TSTAMP_PRECISION_MICRO)) else {
            throw ShapeError("pcap_open_dead failed")
        }
        guard let dumper = pcap_dump_open(dead, path) else {
            let message = String(cString: pcap_geterr(dead))
            pcap_close(dead)
            throw ShapeError("pcap_dump_open \(path): \(message)")
        }
        self.dead = dead
        self.dumper = dumper
    }

    deinit { try? finish() }

    func packet(interface: Int, timeNs: Int64, frame: [UInt8]) throws {
        var header = pcap_pkthdr()
        header.ts.tv_sec = Int(timeNs / 1_000_000_000)
        header.ts.tv_usec = Int(timeNs % 1_000_000_000) / 1000
        header.caplen = UInt32(frame.count)
        header.len = UInt32(frame.count)
        frame.withUnsafeBufferPointer { pcap_dump(UnsafeMutablePointer<UInt8>(dumper), &header, $0.baseAddress) }
    }

    func netlink(interface: Int, timeNs: Int64, packets: Int) throws {}

    func finish() throws {
        guard !closed else { return }
        closed = true
        pcap_dump_close(dumper)
        pcap_close(dead)
    }
}

/// A pcapng as `netprobe capture` writes it, through the encoder its PcapngFileWriter uses (the
/// writer itself is not linked: NetprobeCapture brings libvirt and libnl, ~11 MiB of resident
/// pages in every child the benchmark measures): one IDB per vantage point (name, role in
/// if_description, nanosecond stamps), Enhanced Packet Blocks without options, netlink samples
/// and other data as netprobe stores them (`MetadataCarriage`).
final class NetprobePcapngSink: PacketSink {
    private let encoder = PcapngEncoder()
    private let file: UnsafeMutablePointer<FILE>
    private var buffer: [UInt8] = []
    private let names: [String]
    private var closed = false

    init(path: String, vantages: [(name: String, role: VantageRole)], snapLength: UInt32 = 2048) throws {
        guard let file = fopen(path, "w") else { throw ShapeError("cannot create \(path): \(String(cString: strerror(errno)))") }
        self.file = file
        names = vantages.map(\.name)
        buffer.reserveCapacity(1 << 22)
        encoder.appendSectionHeader(to: &buffer, options: [.init(4, string: "netprobe-bench synthetic trace")])
        for v in vantages {
            encoder.appendInterfaceDescription(to: &buffer, linkType: .ethernet, snapLength: snapLength, name: v.name,
                                               description: v.role.rawValue, tsResolution: 9)
        }
    }

    deinit { try? finish() }

    func packet(interface: Int, timeNs: Int64, frame: [UInt8]) throws {
        frame.withUnsafeBytes {
            encoder.appendEnhancedPacket(to: &buffer, interface: UInt32(interface), ticks: UInt64(timeNs), data: $0, originalLength: $0.count)
        }
        if buffer.count >= 1 << 22 { try flush() }
    }

    func netlink(interface: Int, timeNs: Int64, packets n: Int) throws {
        let sample = NetlinkSample(timeNs: timeNs, interface: names[interface], link: LinkCounters(
            rxPackets: UInt64(n), rxBytes: UInt64(n * 90), rxErrors: 0, rxDropped: 0,
            txPackets: UInt64(n), txBytes: UInt64(n * 80), txErrors: 0, txDropped: 0),
            qdisc: QdiscCounters(kind: "noqueue", backlog: 0, qlen: 0, drops: 0, overlimits: 0, requeues: 0))
        try netprobeData(try NetprobeBlock.netlink(sample).payload(), interface: interface, timeNs: timeNs)
    }

    /// One item of netprobe's data, as PcapngFileWriter.appendNetprobeData stores it.
    func netprobeData(_ payload: [UInt8], interface: Int = 0, timeNs: Int64) throws {
        try encoder.appendNetprobeData(to: &buffer, payload: payload, interface: UInt32(interface), ticks: UInt64(max(timeNs, 0)))
        if buffer.count >= 1 << 22 { try flush() }
    }

    private func flush() throws {
        let n = buffer.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        guard n == buffer.count else { throw ShapeError("writing a synthetic trace failed: \(String(cString: strerror(errno)))") }
        buffer.removeAll(keepingCapacity: true)
    }

    func finish() throws {
        guard !closed else { return }
        closed = true
        try flush()
        guard fclose(file) == 0 else { throw ShapeError("closing a synthetic trace failed: \(String(cString: strerror(errno)))") }
    }
}

/// Puts packets into the file in capture-time order, as a capture does: generators schedule each
/// packet (at every vantage point) when they decide it, and `release(upTo:)` writes those whose
/// time has come. Everything scheduled later must be at or after the released time.
final class CaptureOrder {
    let sink: PacketSink
    private var pending: [(timeNs: Int64, order: Int, interface: Int, frame: [UInt8])] = []
    private var order = 0
    /// Packets scheduled so far (written or waiting).
    private(set) var packets = 0

    init(_ sink: PacketSink) { self.sink = sink }

    func schedule(_ timeNs: Int64, interface: Int, _ frame: [UInt8]) {
        order += 1
        packets += 1
        var i = pending.count
        while i > 0 && pending[i - 1].timeNs > timeNs { i -= 1 }
        pending.insert((timeNs, order, interface, frame), at: i)
    }

    func release(upTo timeNs: Int64) throws {
        var n = 0
        while n < pending.count && pending[n].timeNs <= timeNs {
            try sink.packet(interface: pending[n].interface, timeNs: pending[n].timeNs, frame: pending[n].frame)
            n += 1
        }
        if n > 0 { pending.removeFirst(n) }
    }

    func finish() throws {
        try release(upTo: .max)
        try sink.finish()
    }
}

/// Why a shape could not be written.
struct ShapeError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
