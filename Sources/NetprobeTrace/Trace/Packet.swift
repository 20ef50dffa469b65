import NetprobeModel
/// A link-layer header type, as numbered by tcpdump.org's LINKTYPE_ registry (the same numbers in
/// pcap's header and pcapng's Interface Description Block).
public struct LinkType: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// BSD loopback: a 4-byte address family in host byte order of the writer.
    public static let null = LinkType(rawValue: 0)
    public static let ethernet = LinkType(rawValue: 1)
    /// Raw IP (IPv4 or IPv6 by the version nibble). 12 and 14 are historical aliases on some systems.
    public static let raw = LinkType(rawValue: 101)
    public static let rawAlias12 = LinkType(rawValue: 12)
    public static let rawAlias14 = LinkType(rawValue: 14)
    /// OpenBSD loopback: like `null` but the family is big endian.
    public static let loop = LinkType(rawValue: 108)
    /// Linux cooked capture v1 (tcpdump -i any, older libpcap).
    public static let linuxSLL = LinkType(rawValue: 113)
    public static let ipv4 = LinkType(rawValue: 228)
    public static let ipv6 = LinkType(rawValue: 229)
    /// Linux cooked capture v2 (tcpdump -i any, libpcap 1.10+).
    public static let linuxSLL2 = LinkType(rawValue: 276)

    public var description: String {
        switch self {
        case .null: "NULL"
        case .ethernet: "EN10MB"
        case .raw, .rawAlias12, .rawAlias14: "RAW"
        case .loop: "LOOP"
        case .linuxSLL: "LINUX_SLL"
        case .linuxSLL2: "LINUX_SLL2"
        case .ipv4: "IPV4"
        case .ipv6: "IPV6"
        default: "LINKTYPE_\(rawValue)"
        }
    }
}

/// Which way a packet went through its interface, when the trace says (pcapng epb_flags).
public enum PacketDirection: UInt8, Sendable, Codable {
    case unknown = 0, inbound = 1, outbound = 2
}

/// One capture point as described by the trace: a pcapng Interface Description Block, or the
/// single implicit interface of a classic pcap file.
public struct TraceInterface: Sendable, Codable, Equatable {
    /// `if_name`; for an interface without one, `if<N>` (N its index in its section; with several
    /// sections `s<S>.if<N>`).
    public var name: String
    /// Whether `name` came from the file (false: netprobe made it up).
    public var nameRecorded: Bool
    /// `if_description`: netprobe writes the vantage role here (bridge, tap, client ...).
    public var description: String?
    public var linkType: LinkType
    public var snapLength: UInt32
    /// `if_filter` as text, when it is a libpcap filter string.
    public var filter: String?
    /// `if_os`.
    public var os: String?
    /// Interface Statistics Block counters (the last ISB for this interface wins: they are
    /// cumulative). `nil` when the trace does not say.
    public var received: UInt64?
    public var interfaceDropped: UInt64?
    public var osDropped: UInt64?
    public var filterAccepted: UInt64?
    public var userDelivered: UInt64?
    /// Timestamp units: ticks per second as a power of ten (`decimalExponent`) or of two.
    var tsResolutionExponent: UInt8 = 6
    var tsResolutionIsBinary = false
    /// if_tsoffset: seconds added to every timestamp.
    var tsOffsetSeconds: Int64 = 0

    public init(name: String, nameRecorded: Bool, linkType: LinkType, snapLength: UInt32) {
        self.name = name
        self.nameRecorded = nameRecorded
        self.linkType = linkType
        self.snapLength = snapLength
    }

    /// Packets the capture lost for this interface, when known: isb_ifdrop + isb_osdrop.
    public var dropped: UInt64? {
        if interfaceDropped == nil && osDropped == nil { return nil }
        // A damaged ISB can hold any 64-bit counts: the sum stops at UInt64.max (the fuzzer found it).
        let (sum, overflow) = (interfaceDropped ?? 0).addingReportingOverflow(osDropped ?? 0)
        return overflow ? .max : sum
    }

    /// Converts a raw pcapng timestamp (units of if_tsresol) into nanoseconds since the epoch.
    func nanoseconds(fromTicks ticks: UInt64) -> Int64 {
        let offset = tsOffsetSeconds &* 1_000_000_000
        if tsResolutionIsBinary {
            // ticks / 2^e seconds = ticks * 1e9 / 2^e ns, in 128-bit arithmetic.
            let e = Int(tsResolutionExponent)
            let product = ticks.multipliedFullWidth(by: 1_000_000_000)
            let ns: UInt64
            if e == 0 {
                ns = product.low
            } else if e >= 64 {
                ns = product.high >> (e - 64)
            } else {
                ns = (product.high << (64 - e)) | (product.low >> e)
            }
            return Int64(truncatingIfNeeded: ns) &+ offset
        }
        let e = Int(tsResolutionExponent)
        if e <= 9 {
            var scale: UInt64 = 1
            for _ in 0..<(9 - e) { scale *= 10 }
            return Int64(truncatingIfNeeded: ticks &* scale) &+ offset
        }
        var divisor: UInt64 = 1
        for _ in 0..<min(e - 9, 19) { divisor *= 10 }
        return Int64(truncatingIfNeeded: ticks / divisor) &+ offset
    }
}

/// One captured packet as read from a trace.
///
/// `data` points into the reader's buffer and is valid only until the next call to `next()`:
/// decode it (or copy what must be kept) before asking for another packet.
public struct PacketRecord {
    /// Index into the source's `interfaces`.
    public var interface: Int
    /// Capture time, nanoseconds since the Unix epoch.
    public var timestampNs: Int64
    /// Length of the packet on the wire (it may be longer than `data` when the snapshot length cut it).
    public var originalLength: Int
    public var direction: PacketDirection
    /// The captured bytes, starting at the link-layer header.
    public var data: UnsafeRawBufferPointer
    /// Where the packet's record starts in the file (for diagnostics).
    public var fileOffset: Int64
}

/// Anything that yields captured packets: a pcap file, a pcapng file, a live capture.
public protocol PacketSource: AnyObject {
    /// Every interface seen so far (it can grow while reading: pcapng may add interfaces late).
    var interfaces: [TraceInterface] { get }
    /// Non-fatal remarks gathered so far.
    var warnings: [TraceWarning] { get }
    /// The next packet, `nil` at the end. Throws a `TraceError` on damage it cannot read past; the
    /// packets returned before stay valid for the analysis.
    func next() throws -> PacketRecord?
}
