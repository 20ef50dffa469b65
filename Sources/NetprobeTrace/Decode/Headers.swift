import NetprobeModel
import Foundation

// Zero-copy header views. Each view checks its length once, in its failable initializer; after
// that its accessors cannot fail. Offsets are named constants from the RFCs.

/// An IPv4 or IPv6 address, stored without allocation. IPv4 lives in the low 32 bits of `low`.
public struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64
    public var isIPv6: Bool

    public init(ipv4: UInt32) {
        high = 0
        low = UInt64(ipv4)
        isIPv6 = false
    }

    public init(ipv6High: UInt64, low: UInt64) {
        high = ipv6High
        self.low = low
        isIPv6 = true
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        (a.isIPv6 ? 1 : 0, a.high, a.low) < (b.isIPv6 ? 1 : 0, b.high, b.low)
    }

    public var description: String {
        if !isIPv6 {
            let v = UInt32(truncatingIfNeeded: low)
            return "\(v >> 24).\((v >> 16) & 0xff).\((v >> 8) & 0xff).\(v & 0xff)"
        }
        let groups = (0..<8).map { i -> UInt16 in
            let word = i < 4 ? high : low
            return UInt16(truncatingIfNeeded: word >> (48 - 16 * UInt64(i % 4)))
        }
        return "[" + groups.map { String($0, radix: 16) }.joined(separator: ":") + "]"
    }
}

/// An address and a TCP port.
public struct Endpoint: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16
    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }
    public static func < (a: Endpoint, b: Endpoint) -> Bool { (a.address, a.port) < (b.address, b.port) }
    public var description: String { "\(address):\(port)" }

    /// The whole address, its family and the port. (Tables of connections hash both endpoints
    /// with a keyed `FlowHash` instead.)
    public func hash(into hasher: inout Hasher) {
        hasher.combine(address.high)
        hasher.combine(address.low)
        hasher.combine(UInt32(port) | (address.isIPv6 ? 1 << 16 : 0))
    }
}

/// Ethernet II with up to two 802.1Q / 802.1ad tags.
struct EthernetView {
    static let headerLength = 14
    static let etherTypeOffset = 12
    /// Length of the header including VLAN tags.
    let length: Int
    let etherType: UInt16

    init?(_ b: UnsafeRawBufferPointer) {
        guard b.count >= Self.headerLength else { return nil }
        var type = readBE16(b, Self.etherTypeOffset)
        var length = Self.headerLength
        var tags = 0
        while type == 0x8100 || type == 0x88A8 || type == 0x9100 {
            guard tags < 2, b.count >= length + 4 else { return nil }
            type = readBE16(b, length + 2)
            length += 4
            tags += 1
        }
        self.length = length
        etherType = type
    }
}

enum EtherType {
    static let ipv4: UInt16 = 0x0800
    static let ipv6: UInt16 = 0x86DD
}

/// IPv4 header (RFC 791).
struct IPv4View {
    static let minimumLength = 20
    static let totalLengthOffset = 2
    static let identificationOffset = 4
    static let flagsFragmentOffset = 6
    static let protocolOffset = 9
    static let sourceOffset = 12
    static let destinationOffset = 16

    let bytes: UnsafeRawBufferPointer
    let headerLength: Int

    init?(_ b: UnsafeRawBufferPointer) {
        guard b.count >= Self.minimumLength, b[0] >> 4 == 4 else { return nil }
        let ihl = Int(b[0] & 0x0F) * 4
        guard ihl >= Self.minimumLength, b.count >= ihl else { return nil }
        bytes = b
        headerLength = ihl
    }

    var totalLength: Int { Int(readBE16(bytes, Self.totalLengthOffset)) }
    var identification: UInt16 { readBE16(bytes, Self.identificationOffset) }
    /// True for any fragment (more-fragments set, or a non-zero offset).
    var isFragment: Bool { readBE16(bytes, Self.flagsFragmentOffset) & 0x3FFF != 0 }
    var protocolNumber: UInt8 { bytes[Self.protocolOffset] }
    var source: IPAddress { IPAddress(ipv4: readBE32(bytes, Self.sourceOffset)) }
    var destination: IPAddress { IPAddress(ipv4: readBE32(bytes, Self.destinationOffset)) }
}

/// IPv6 fixed header (RFC 8200).
struct IPv6View {
    static let headerLength = 40
    static let payloadLengthOffset = 4
    static let nextHeaderOffset = 6
    static let sourceOffset = 8
    static let destinationOffset = 24

    let bytes: UnsafeRawBufferPointer

    init?(_ b: UnsafeRawBufferPointer) {
        guard b.count >= Self.headerLength, b[0] >> 4 == 6 else { return nil }
        bytes = b
    }

    var payloadLength: Int { Int(readBE16(bytes, Self.payloadLengthOffset)) }
    var nextHeader: UInt8 { bytes[Self.nextHeaderOffset] }
    private func address(_ offset: Int) -> IPAddress {
        let hi = UInt64(readBE32(bytes, offset)) << 32 | UInt64(readBE32(bytes, offset + 4))
        let lo = UInt64(readBE32(bytes, offset + 8)) << 32 | UInt64(readBE32(bytes, offset + 12))
        return IPAddress(ipv6High: hi, low: lo)
    }
    var source: IPAddress { address(Self.sourceOffset) }
    var destination: IPAddress { address(Self.destinationOffset) }
}

/// TCP header (RFC 9293).
struct TCPView {
    static let minimumLength = 20
    static let sequenceOffset = 4
    static let acknowledgementOffset = 8
    static let dataOffsetOffset = 12
    static let flagsOffset = 13
    static let windowOffset = 14

    let bytes: UnsafeRawBufferPointer
    let headerLength: Int

    init?(_ b: UnsafeRawBufferPointer) {
        guard b.count >= Self.minimumLength else { return nil }
        let length = Int(b[Self.dataOffsetOffset] >> 4) * 4
        guard length >= Self.minimumLength, b.count >= length else { return nil }
        bytes = b
        headerLength = length
    }

    var sourcePort: UInt16 { readBE16(bytes, 0) }
    var destinationPort: UInt16 { readBE16(bytes, 2) }
    var sequence: UInt32 { readBE32(bytes, Self.sequenceOffset) }
    var acknowledgement: UInt32 { readBE32(bytes, Self.acknowledgementOffset) }
    var flags: TCPFlags { TCPFlags(rawValue: bytes[Self.flagsOffset]) }
    var window: UInt16 { readBE16(bytes, Self.windowOffset) }
}

/// TCP control bits.
public struct TCPFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
}

extension Endpoint {
    /// Parses what `description` writes ("a.b.c.d:port", and for IPv6 "v6:port" without brackets,
    /// as older traces store it) or "[v6]:port". Not `HostPort`: this format needs the port and
    /// reads the last colon as the port's even in an unbracketed IPv6 address.
    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let address = IPAddress(parsing: host) else { return nil }
        self.init(address: address, port: port)
    }
}

extension IPAddress {
    /// Parses dotted IPv4 or colon-hex IPv6 (with `::`).
    public init?(parsing text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4 {
            var v: UInt32 = 0
            for p in parts {
                guard let b = UInt8(p) else { return nil }
                v = v << 8 | UInt32(b)
            }
            self.init(ipv4: v)
            return
        }
        guard text.contains(":") else { return nil }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ s: String) -> [UInt16]? {
            s.isEmpty ? [] : s.split(separator: ":", omittingEmptySubsequences: false).map { UInt16($0, radix: 16) }
                .reduce([UInt16]?([])) { acc, g in g.flatMap { x in acc.map { $0 + [x] } } }
        }
        guard let head = groups(halves[0]) else { return nil }
        let tail = halves.count == 2 ? groups(halves[1]) : []
        guard let tail, head.count + tail.count <= 8, halves.count == 2 || head.count == 8 else { return nil }
        let all = head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        var hi: UInt64 = 0, lo: UInt64 = 0
        for (i, g) in all.enumerated() {
            if i < 4 { hi = hi << 16 | UInt64(g) } else { lo = lo << 16 | UInt64(g) }
        }
        self.init(ipv6High: hi, low: lo)
    }
}
