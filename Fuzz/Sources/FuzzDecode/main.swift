import FuzzSupport
import NetprobeCore

/// The link types the first input byte picks from (low four bits, modulo the count); the last is
/// one PacketDecoder does not support.
let linkTypes: [LinkType] = [.ethernet, .linuxSLL, .linuxSLL2, .null, .loop, .raw, .rawAlias12, .rawAlias14,
                             .ipv4, .ipv6, LinkType(rawValue: 147)]
/// Capture time between two frames of an input.
let frameInterval: Int64 = 1_000_000

/// libFuzzer entry for the packet decoders and TCP reassembly.
///
/// Input: one control byte, then frames, each a 2-byte big-endian length and that many bytes (the
/// last one cut at the end of the input). Control bits 0-3 pick the link type; bit 4 makes the
/// per-stream reassembly cap 128 bytes, bit 5 the global budget 256 bytes, bit 6 the hold time
/// two frames. Each frame is decoded (Ethernet with 802.1Q/802.1ad tags, Linux SLL v1/v2, BSD
/// loopback, raw IPv4/IPv6, IPv6 extension headers, TCP); each TCP segment goes to one of two
/// StreamReassemblers (by direction), ended on FIN or RST and at the end of the input.
///
/// Checked besides memory safety: a segment's payload lies inside its frame and is no longer than
/// its wire length; reassembly delivers contiguous, non-empty chunks, keeps its caps, and holds
/// nothing once finished.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecode(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 1 else { return -1 }
    let control = data[0]
    let linkType = linkTypes[Int(control & 0x0F) % linkTypes.count]
    let perStreamLimit = control & 0x10 != 0 ? 128 : 1 << 20
    let budget = ReassemblyBudget(limit: control & 0x20 != 0 ? 256 : 64 << 20)
    let holdTime = control & 0x40 != 0 ? 2 * frameInterval : 2_000_000_000
    var streams = [StreamReassembler(perStreamLimit: perStreamLimit, holdTimeNs: holdTime),
                   StreamReassembler(perStreamLimit: perStreamLimit, holdTimeNs: holdTime)]
    var expected: [UInt32?] = [nil, nil]
    let decoder = PacketDecoder()
    let input = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    var offset = 0
    var frames = 0
    var acc = 0
    var roundTripped = false

    func take(_ chunk: StreamChunk, _ direction: Int) {
        switch chunk {
        case let .data(bytes, sequence, timestampNs, acknowledgement):
            check(!bytes.isEmpty, "empty data chunk at \(sequence)")
            if let next = expected[direction] { check(sequence == next, "data chunk at \(sequence), expected \(next)") }
            expected[direction] = sequence &+ UInt32(truncatingIfNeeded: bytes.count)
            acc &+= Int(bytes[0]) &+ Int(bytes[bytes.count - 1]) &+ Int(truncatingIfNeeded: timestampNs) &+ Int(acknowledgement)
        case let .missing(count, sequence, timestampNs, cutBySnaplen):
            check(count > 0, "missing chunk of \(count) bytes at \(sequence)")
            if let next = expected[direction] { check(sequence == next, "missing chunk at \(sequence), expected \(next)") }
            expected[direction] = sequence &+ UInt32(truncatingIfNeeded: count)
            acc &+= count &+ Int(truncatingIfNeeded: timestampNs) &+ (cutBySnaplen ? 1 : 0)
        }
    }

    while input.count - offset >= 2 {
        let claimed = Int(input[offset]) << 8 | Int(input[offset + 1])
        offset += 2
        let n = min(claimed, input.count - offset)
        let frame = UnsafeRawBufferPointer(rebasing: input[offset..<(offset + n)])
        offset += n
        frames += 1
        switch decoder.decode(frame, linkType: linkType) {
        case let .failure(error):
            acc &+= error.outcome.isProblem ? 1 : 2
        case let .success(s):
            check(contains(frame, s.payload), "payload outside its frame")
            check(s.payload.count <= s.payloadLength, "captured payload \(s.payload.count) > wire length \(s.payloadLength)")
            acc &+= Int(s.source.port) &+ Int(s.destination.port) &+ Int(s.sequence) &+ Int(s.acknowledgement)
            acc &+= Int(s.flags.rawValue) &+ Int(s.window) &+ Int(s.ipID ?? 0) &+ s.payloadLength
            acc &+= s.source.address.hashValue &+ s.destination.address.hashValue
            if let last = s.payload.indices.last { acc &+= Int(s.payload[0]) &+ Int(s.payload[last]) }
            if !roundTripped {
                // Endpoint's text form reads back as the same endpoint.
                roundTripped = true
                for e in [s.source, s.destination] {
                    check(Endpoint(parsing: e.description) == e, "\(e) does not parse back")
                }
            }
            let direction = s.source < s.destination ? 0 : 1
            streams[direction].accept(
                sequence: s.sequence, acknowledgement: s.acknowledgement, syn: s.flags.contains(.syn),
                payload: s.payload, wireLength: s.payloadLength, timestampNs: Int64(frames) * frameInterval,
                budget: budget) { take($0, direction) }
            check(streams[direction].heldByteCount <= perStreamLimit,
                  "stream holds \(streams[direction].heldByteCount) bytes, cap \(perStreamLimit)")
            check(budget.used >= 0 && budget.used <= budget.limit, "budget used \(budget.used) of \(budget.limit)")
            if !s.flags.isDisjoint(with: [.fin, .rst]) {
                streams[direction].finish(budget: budget) { take($0, direction) }
            }
        }
    }
    for direction in 0..<2 {
        streams[direction].finish(budget: budget) { take($0, direction) }
        check(streams[direction].heldByteCount == 0, "a finished stream still holds bytes")
        let c = streams[direction].counters
        acc &+= c.retransmittedSegments &+ c.outOfOrderSegments &+ c.gaps &+ c.gapBytes &+ c.snaplenCutBytes
    }
    check(budget.used == 0, "budget still counts \(budget.used) bytes after every stream finished")
    sink &+= acc &+ frames
    return 0
}

// MARK: Seeds

/// One input: the control byte, then each frame with its 2-byte length (up to the input size).
func input(_ control: UInt8, _ frames: [[UInt8]]) -> [UInt8] {
    var out = [control]
    for f in frames {
        if out.count + 2 + f.count > maximumInput { break }
        out += [UInt8(f.count >> 8), UInt8(f.count & 0xFF)] + f
    }
    return out
}

/// The IPv4 packet inside an Ethernet frame rewritten as IPv6 (same TCP segment), optionally
/// behind a hop-by-hop options header.
func ipv6(_ ip: [UInt8], hopByHop: Bool) -> [UInt8]? {
    guard ip.count >= 20, ip[0] >> 4 == 4 else { return nil }
    let ihl = Int(ip[0] & 0x0F) * 4
    let total = min(Int(ip[2]) << 8 | Int(ip[3]), ip.count)
    guard total >= ihl else { return nil }
    let tcp = Array(ip[ihl..<total])
    let ext: [UInt8] = hopByHop ? [6, 0, 1, 4, 0, 0, 0, 0] : []
    let payload = ext.count + tcp.count
    var out: [UInt8] = [0x60, 0, 0, 0, UInt8(payload >> 8), UInt8(payload & 0xFF), hopByHop ? 0 : 6, 64]
    out += [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 8) + ip[12..<16]
    out += [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 8) + ip[16..<20]
    return out + ext + tcp
}

/// Seeds: single frames of each trace in every link-layer framing, and runs of consecutive frames
/// (in order, reversed, with small reassembly limits) so reassembly sees real streams.
func decodeSeeds(_ traces: String) throws -> [Seed] {
    var seeds: [Seed] = []
    for (name, path) in try traceFiles(traces, suffix: ".pcap") + traceFiles(traces, suffix: ".pcapng") {
        let sample = try frames(path, count: 24).filter { $0.linkType == .ethernet && $0.bytes.count > 14 }
        guard !sample.isEmpty else { continue }
        let ethernet = sample.map(\.bytes)
        seeds.append(Seed("\(name)-stream", input(0x00, ethernet)))
        seeds.append(Seed("\(name)-stream-reversed-small", input(0x70, ethernet.reversed())))
        seeds.append(Seed("\(name)-stream-small-budget", input(0x20, ethernet.enumerated().filter { $0.offset % 3 != 1 }.map(\.element))))
        // Single frames: the first with payload (a request), and the first two (SYN, SYN-ACK).
        let withPayload = sample.first { $0.bytes.count > 70 } ?? sample[0]
        for (label, f) in [("syn", sample[0]), ("data", withPayload)] {
            let eth = f.bytes
            let ip = Array(eth[14...])
            let mac = Array(eth[0..<12])
            let proto = Array(eth[12..<14])
            let variants: [(String, UInt8, [UInt8])] = [
                ("ethernet", 0, eth),
                ("vlan", 0, mac + [0x81, 0x00, 0x00, 0x05] + proto + ip),
                ("qinq", 0, mac + [0x88, 0xA8, 0x00, 0x07, 0x81, 0x00, 0x00, 0x05] + proto + ip),
                ("sll", 1, [0, 4, 0, 1, 0, 6] + mac[6..<12] + [0, 0] + proto + ip),
                ("sll2", 2, proto + [0, 0, 0, 0, 0, 2, 0, 1, 4, 6] + mac[6..<12] + [0, 0] + ip),
                ("null", 3, [2, 0, 0, 0] + ip),
                ("loop", 4, [0, 0, 0, 2] + ip),
                ("raw", 5, ip),
                ("ipv4", 8, ip),
            ]
            for (kind, control, frame) in variants {
                seeds.append(Seed("\(name)-\(label)-\(kind)", input(control, [frame])))
            }
            if let v6 = ipv6(ip, hopByHop: false) {
                seeds.append(Seed("\(name)-\(label)-ipv6", input(9, [v6])))
                seeds.append(Seed("\(name)-\(label)-ethernet-ipv6", input(0, [mac + [0x86, 0xDD] + v6])))
            }
            if let v6 = ipv6(ip, hopByHop: true) {
                seeds.append(Seed("\(name)-\(label)-ipv6-hop-by-hop", input(6, [v6])))
            }
        }
    }
    return seeds
}

@_cdecl("FuzzDecode_main")
public func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    fuzzerMain(argc, argv, seeds: decodeSeeds) { fuzzDecode($0, $1) }
}
