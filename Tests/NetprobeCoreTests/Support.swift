import Foundation
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

/// A small deterministic generator (a test built on it fails the same way every time).
struct SeededNumbers {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    /// A number in 0..<n.
    mutating func next(_ n: Int) -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int((state >> 33) % UInt64(n))
    }
}

/// Builds Ethernet + IPv4/IPv6 + TCP frames for tests.
struct FrameBuilder {
    static func ipv4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> UInt32 {
        UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    static func tcp(src: UInt32 = ipv4(10, 0, 0, 1), dst: UInt32 = ipv4(10, 0, 0, 2), sport: UInt16 = 40000,
                    dport: UInt16 = 6379, seq: UInt32, ack: UInt32 = 0, flags: UInt8 = 0x18,
                    payload: [UInt8] = [], ipID: UInt16 = 1, vlan: UInt16? = nil, padTo: Int = 0) -> [UInt8] {
        var f: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]
        if let vlan {
            f += [0x81, 0x00] + be16(vlan)
        }
        f += [0x08, 0x00]
        f += ipv4Header(src: src, dst: dst, payloadLength: 20 + payload.count, ipID: ipID)
        f += tcpHeader(sport: sport, dport: dport, seq: seq, ack: ack, flags: flags)
        f += payload
        while f.count < padTo { f.append(0) } // Ethernet padding: must never be read as payload
        return f
    }

    static func ipv4Header(src: UInt32, dst: UInt32, payloadLength: Int, ipID: UInt16 = 1, proto: UInt8 = 6) -> [UInt8] {
        [0x45, 0] + be16(UInt16(20 + payloadLength)) + be16(ipID) + [0x40, 0, 64, proto, 0, 0] + be32(src) + be32(dst)
    }

    static func tcpHeader(sport: UInt16, dport: UInt16, seq: UInt32, ack: UInt32, flags: UInt8) -> [UInt8] {
        be16(sport) + be16(dport) + be32(seq) + be32(ack) + [0x50, flags] + be16(65535) + [0, 0, 0, 0]
    }

    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] }
}

/// Writes a classic pcap file into memory.
struct PcapBuilder {
    var nanosecond = true
    var swapped = false
    var linkType: UInt32 = 1
    var snapLength: UInt32 = 65535
    var bytes: [UInt8] = []

    init(nanosecond: Bool = true, swapped: Bool = false, linkType: UInt32 = 1, snapLength: UInt32 = 65535) {
        self.nanosecond = nanosecond
        self.swapped = swapped
        self.linkType = linkType
        self.snapLength = snapLength
        u32(nanosecond ? 0xa1b2_3c4d : 0xa1b2_c3d4)
        u16(2); u16(4); u32(0); u32(0); u32(snapLength); u32(linkType)
    }

    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: swapped ? v.byteSwapped : v) { bytes += $0 } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: swapped ? v.byteSwapped : v) { bytes += $0 } }

    mutating func add(_ frame: [UInt8], ns: Int64, caplen: Int? = nil) {
        let seconds = UInt32(ns / 1_000_000_000)
        let fraction = UInt32(nanosecond ? ns % 1_000_000_000 : (ns % 1_000_000_000) / 1000)
        let cap = min(caplen ?? frame.count, frame.count)
        u32(seconds); u32(fraction); u32(UInt32(cap)); u32(UInt32(frame.count))
        bytes += frame[0..<cap]
    }
}

/// A temporary file that is removed when the test ends.
final class TempFile {
    let path: String
    init(_ bytes: [UInt8], suffix: String = ".pcap") throws {
        path = NSTemporaryDirectory() + "netprobe-test-\(UUID().uuidString)\(suffix)"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Reads every packet of a trace; returns (interface, timestamp, bytes) copies plus the reader.
func readAll(_ path: String) throws -> (packets: [(Int, Int64, [UInt8])], reader: TraceReader) {
    let reader = try TraceReader(path: path)
    var out: [(Int, Int64, [UInt8])] = []
    while let p = try reader.next() { out.append((p.interface, p.timestampNs, Array(p.data))) }
    return (out, reader)
}

/// The repository's traces/ folder.
let tracesDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.appendingPathComponent("traces").path
}()

/// RESP encoding of a command as an array of bulk strings.
func resp(_ words: String...) -> [UInt8] {
    var s = "*\(words.count)\r\n"
    for w in words { s += "$\(w.utf8.count)\r\n\(w)\r\n" }
    return Array(s.utf8)
}
