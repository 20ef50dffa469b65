import Foundation
import NetprobeCore

/// One seed input: a file name and its bytes.
public struct Seed {
    public var name: String
    public var bytes: [UInt8]
    public init(_ name: String, _ bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }
}

/// The largest input the targets are run with (Fuzz/run passes -max_len=4096); seeds stay below it.
public let maximumInput = 4096

func writeSeeds(_ seeds: [Seed], to directory: String) throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    for seed in seeds {
        try Data(seed.bytes.prefix(maximumInput)).write(to: URL(fileURLWithPath: "\(directory)/\(seed.name)"))
    }
}

/// The captures in `directory` (traces/), by name.
public func traceFiles(_ directory: String, suffix: String) throws -> [(name: String, path: String)] {
    try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(suffix) }.sorted()
        .map { (String($0.dropLast(suffix.count)), "\(directory)/\($0)") }
}

public func readFile(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// One packet taken from a real capture.
public struct Frame {
    public var linkType: LinkType
    public var interface: Int
    public var timestampNs: Int64
    public var originalLength: Int
    public var bytes: [UInt8]
}

/// The first `count` packets of the capture at `path`.
public func frames(_ path: String, count: Int) throws -> [Frame] {
    let reader = try TraceReader(path: path)
    var out: [Frame] = []
    while out.count < count, let p = try reader.next() {
        out.append(Frame(linkType: reader.interfaces[p.interface].linkType, interface: p.interface,
                         timestampNs: p.timestampNs, originalLength: p.originalLength, bytes: Array(p.data)))
    }
    return out
}

// MARK: pcap

/// Writes a classic pcap file: `nanosecond` and `modified` (Kuznetzov, 24-byte records) pick the
/// magic, `swapped` writes big endian.
public func pcapFile(_ frames: [Frame], linkType: UInt32 = 1, snapLength: UInt32 = 262_144,
                     nanosecond: Bool = true, modified: Bool = false, swapped: Bool = false) -> [UInt8] {
    var out: [UInt8] = []
    func u32(_ v: UInt32) { withUnsafeBytes(of: swapped ? v.bigEndian : v.littleEndian) { out += $0 } }
    func u16(_ v: UInt16) { withUnsafeBytes(of: swapped ? v.bigEndian : v.littleEndian) { out += $0 } }
    u32(modified ? 0xa1b2_cd34 : nanosecond ? 0xa1b2_3c4d : 0xa1b2_c3d4)
    u16(2)
    u16(4)
    u32(0)
    u32(0)
    u32(snapLength)
    u32(linkType)
    for f in frames {
        let record = (modified ? 24 : 16) + f.bytes.count
        if out.count + record > maximumInput { break }
        u32(UInt32(truncatingIfNeeded: f.timestampNs / 1_000_000_000))
        let fraction = f.timestampNs % 1_000_000_000
        u32(UInt32(truncatingIfNeeded: nanosecond ? fraction : fraction / 1000))
        u32(UInt32(f.bytes.count))
        u32(UInt32(f.originalLength))
        if modified { out += [0, 0, 0, 0, 1, 0, 0x08, 0x00] } // ifindex, protocol, pkt_type, pad
        out += f.bytes
    }
    return out
}

/// The first whole records of a pcap file that fit in `limit` bytes.
public func pcapHead(_ bytes: [UInt8], limit: Int = maximumInput) -> [UInt8] {
    guard bytes.count >= 24 else { return bytes }
    let swapped = bytes[0] == 0xa1
    var end = 24
    while end + 16 <= bytes.count {
        let b = bytes[(end + 8)..<(end + 12)].map(UInt32.init)
        let caplen = swapped ? b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3] : b[3] << 24 | b[2] << 16 | b[1] << 8 | b[0]
        let next = end + 16 + Int(caplen)
        if next > limit || next > bytes.count { break }
        end = next
    }
    return Array(bytes[..<end])
}

// MARK: pcapng

/// The byte ranges of the blocks of a pcapng file (up to the first damaged one).
public func pcapngBlocks(_ bytes: [UInt8]) -> [Range<Int>] {
    var blocks: [Range<Int>] = []
    var i = 0
    var swapped = false
    while i + 12 <= bytes.count {
        if bytes[i..<(i + 4)].elementsEqual([0x0a, 0x0d, 0x0d, 0x0a]) { swapped = bytes[i + 8] == 0x1a }
        let b = bytes[(i + 4)..<(i + 8)].map(Int.init)
        let length = swapped ? b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3] : b[3] << 24 | b[2] << 16 | b[1] << 8 | b[0]
        guard length >= 12, i + length <= bytes.count else { break }
        blocks.append(i..<(i + length))
        i += length
    }
    return blocks
}

/// Leading blocks of a real pcapng file that fit in `limit` bytes, optionally followed by its
/// trailing blocks that are not packets (the Interface Statistics Blocks dumpcap writes last).
public func pcapngHead(_ bytes: [UInt8], limit: Int = maximumInput, withTail: Bool = false) -> [UInt8] {
    let blocks = pcapngBlocks(bytes)
    var tail: [UInt8] = []
    if withTail {
        for block in blocks.reversed() {
            let type = bytes[block.lowerBound]
            if type == 6 || type == 3 || type == 2 { break }
            tail = Array(bytes[block]) + tail
        }
    }
    var out: [UInt8] = []
    for block in blocks {
        if out.count + block.count + tail.count > limit { break }
        out += bytes[block]
    }
    return out + tail
}

/// A small pcapng file with every kind of block and option the reader knows: two sections (the
/// second in the other byte order), interface options (name, description, binary and decimal
/// if_tsresol, if_tsoffset, filter, os), EPB flags, Simple and obsolete Packet Blocks, Name
/// Resolution, Interface Statistics with every counter, custom blocks and an unknown block.
public func syntheticPcapng(_ frames: [Frame], firstSwapped: Bool = false) -> [UInt8] {
    var out: [UInt8] = []
    let sample = frames.prefix(3)
    for (section, swapped) in [firstSwapped, !firstSwapped].enumerated() {
        let e = PcapngEncoder(swapped: swapped)
        e.appendSectionHeader(to: &out, options: [.init(1, string: "comment"), .init(2, string: "hw"),
                                                  .init(3, string: "os"), .init(4, string: "app")])
        e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 128, name: "virbr0",
                                     description: "bridge", tsResolution: 9, filter: "tcp port 6379", os: "Linux")
        e.appendInterfaceDescription(to: &out, linkType: .linuxSLL2, snapLength: 0, name: nil,
                                     tsResolution: section == 0 ? 0x80 | 20 : 6,
                                     extra: [.init(14, u64: 1_700_000_000, swapped: swapped)])
        for (n, f) in sample.enumerated() {
            f.bytes.withUnsafeBytes { data in
                e.appendEnhancedPacket(to: &out, interface: UInt32(n % 2), ticks: UInt64(f.timestampNs),
                                       data: data, originalLength: f.originalLength,
                                       direction: n == 0 ? .inbound : .outbound)
            }
        }
        if let f = sample.first {
            f.bytes.withUnsafeBytes { e.appendSimplePacket(to: &out, data: $0, originalLength: f.originalLength) }
            // Obsolete Packet Block (type 2): interface id u16, drops u16, timestamp, lengths, data.
            var body: [UInt8] = []
            func u32(_ v: UInt32) { withUnsafeBytes(of: swapped ? v.bigEndian : v.littleEndian) { body += $0 } }
            u32(0)
            u32(UInt32(truncatingIfNeeded: UInt64(f.timestampNs) >> 32))
            u32(UInt32(truncatingIfNeeded: f.timestampNs))
            u32(UInt32(f.bytes.count))
            u32(UInt32(f.originalLength))
            e.appendRaw(to: &out, type: 2, body: body + f.bytes)
        }
        // Name Resolution Block: one IPv4 record (type 1, length 8: address + "r\0\0\0"), end of records.
        let nrb: [UInt8] = swapped ? [0, 1, 0, 8, 10, 77, 0, 2, 0x72, 0, 0, 0, 0, 0, 0, 0]
                                   : [1, 0, 8, 0, 10, 77, 0, 2, 0x72, 0, 0, 0, 0, 0, 0, 0]
        e.appendRaw(to: &out, type: 4, body: nrb)
        e.appendInterfaceStatistics(to: &out, interface: 0, ticks: 1, received: 10, interfaceDropped: 1,
                                    filterAccepted: 9, osDropped: 2, userDelivered: 7, comment: "isb")
        e.appendInterfaceStatistics(to: &out, interface: 1, ticks: 2, received: 3)
        e.appendCustom(to: &out, enterpriseNumber: 32473, payload: Array("netprobe".utf8), copiable: true)
        e.appendCustom(to: &out, enterpriseNumber: 32473, payload: [1, 2, 3], copiable: false)
        e.appendRaw(to: &out, type: 0x0000_000A, body: [0, 0, 0, 0]) // Decryption Secrets: skipped
    }
    return out
}

// MARK: RESP

/// The TCP payloads of the first `count` Redis segments of a capture, requests (to port 6379)
/// and replies (from it) each joined into one stream.
public func respStreams(_ path: String, count: Int) throws -> (requests: [UInt8], replies: [UInt8]) {
    var requests: [UInt8] = []
    var replies: [UInt8] = []
    for f in try frames(path, count: count) {
        f.bytes.withUnsafeBytes { raw in
            if case let .success(s) = PacketDecoder().decode(raw, linkType: f.linkType), !s.payload.isEmpty {
                if s.destination.port == 6379 { requests += s.payload } else if s.source.port == 6379 { replies += s.payload }
            }
        }
    }
    return (requests, replies)
}

// MARK: Seed sets shared by several targets

/// Classic pcap seeds: the head of each .pcap trace as captured, and its first packets rewritten
/// in every pcap flavour (micro/nanosecond, either byte order, the modified format).
public func pcapSeeds(_ traces: String) throws -> [Seed] {
    var seeds: [Seed] = []
    for (name, path) in try traceFiles(traces, suffix: ".pcap") {
        seeds.append(Seed("\(name)-head.pcap", pcapHead(try readFile(path))))
        let sample = try frames(path, count: 40)
        seeds.append(Seed("\(name)-usec.pcap", pcapFile(sample, nanosecond: false)))
        seeds.append(Seed("\(name)-nsec-be.pcap", pcapFile(sample, swapped: true)))
        seeds.append(Seed("\(name)-modified-be.pcap", pcapFile(sample, nanosecond: false, modified: true, swapped: true)))
        seeds.append(Seed("\(name)-snap64.pcap", pcapFile(sample.map { f in
            var cut = f
            cut.bytes = Array(f.bytes.prefix(64))
            return cut
        }, snapLength: 64)))
    }
    return seeds
}

/// pcapng seeds: the head of each .pcapng trace (whole blocks), the same with its trailing
/// statistics blocks, and the synthetic file with every block type in both byte orders.
public func pcapngSeeds(_ traces: String) throws -> [Seed] {
    var seeds: [Seed] = []
    var sample: [Frame] = []
    for (name, path) in try traceFiles(traces, suffix: ".pcapng") {
        let bytes = try readFile(path)
        seeds.append(Seed("\(name)-head.pcapng", pcapngHead(bytes)))
        seeds.append(Seed("\(name)-head-isb.pcapng", pcapngHead(bytes, withTail: true)))
        if sample.isEmpty { sample = try frames(path, count: 3) }
    }
    seeds.append(Seed("synthetic-le.pcapng", syntheticPcapng(sample)))
    seeds.append(Seed("synthetic-be.pcapng", syntheticPcapng(sample, firstSwapped: true)))
    return seeds
}
