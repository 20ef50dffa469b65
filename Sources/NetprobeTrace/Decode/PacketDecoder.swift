import NetprobeModel
/// Why a packet did not yield a TCP segment. Malformed packets are data: they are counted by
/// reason and reported, never fatal.
public enum DecodeOutcome: String, Sendable, Codable, CaseIterable {
    // Not problems: traffic netprobe does not analyse.
    case notIP = "not-ip"
    case notTCP = "not-tcp"
    case ipFragment = "ip-fragment"
    // Problems: the packet claims to be something it cannot be.
    case unsupportedLinkType = "unsupported-link-type"
    case truncatedLinkHeader = "truncated-link-header"
    case truncatedIPHeader = "truncated-ip-header"
    case badIPHeader = "bad-ip-header"
    case truncatedTCPHeader = "truncated-tcp-header"
    case badTCPHeader = "bad-tcp-header"

    /// True for a damaged or cut packet (as opposed to other protocols).
    public var isProblem: Bool {
        switch self {
        case .notIP, .notTCP, .ipFragment: false
        default: true
        }
    }
}

/// One decoded TCP segment. `payload` points into the packet's bytes (valid as long as they are).
public struct TCPSegment {
    public var source: Endpoint
    public var destination: Endpoint
    public var sequence: UInt32
    public var acknowledgement: UInt32
    public var flags: TCPFlags
    public var window: UInt16
    /// IPv4 identification (nil for IPv6): with the sequence numbers it tells segments apart.
    public var ipID: UInt16?
    /// The payload bytes that were captured.
    public var payload: UnsafeRawBufferPointer
    /// The payload length on the wire, from the IP length fields. Larger than `payload.count` when
    /// the snapshot length cut the packet.
    public var payloadLength: Int
}

/// Decodes link, network and transport headers down to TCP without copying.
public struct PacketDecoder {
    public init() {}

    /// Decodes `bytes` captured with link type `linkType`. `originalLength` is the wire length.
    public func decode(_ bytes: UnsafeRawBufferPointer, linkType: LinkType) -> Result<TCPSegment, DecodeError> {
        let network: UnsafeRawBufferPointer
        var etherType: UInt16? // nil = decide by the IP version nibble
        switch linkType {
        case .ethernet:
            guard let eth = EthernetView(bytes) else { return .failure(.init(.truncatedLinkHeader)) }
            etherType = eth.etherType
            network = UnsafeRawBufferPointer(rebasing: bytes[eth.length...])
        case .linuxSLL:
            guard bytes.count >= 16 else { return .failure(.init(.truncatedLinkHeader)) }
            etherType = readBE16(bytes, 14)
            network = UnsafeRawBufferPointer(rebasing: bytes[16...])
        case .linuxSLL2:
            guard bytes.count >= 20 else { return .failure(.init(.truncatedLinkHeader)) }
            etherType = readBE16(bytes, 0)
            network = UnsafeRawBufferPointer(rebasing: bytes[20...])
        case .null, .loop:
            guard bytes.count >= 4 else { return .failure(.init(.truncatedLinkHeader)) }
            network = UnsafeRawBufferPointer(rebasing: bytes[4...])
        case .raw, .rawAlias12, .rawAlias14, .ipv4, .ipv6:
            network = bytes
        default:
            return .failure(.init(.unsupportedLinkType))
        }
        if let type = etherType, type != EtherType.ipv4, type != EtherType.ipv6 {
            return .failure(.init(.notIP))
        }
        guard network.count >= 1 else { return .failure(.init(.truncatedIPHeader)) }
        switch network[0] >> 4 {
        case 4: return decodeIPv4(network)
        case 6: return decodeIPv6(network)
        default: return .failure(.init(etherType == nil ? .notIP : .badIPHeader))
        }
    }

    private func decodeIPv4(_ b: UnsafeRawBufferPointer) -> Result<TCPSegment, DecodeError> {
        guard b.count >= IPv4View.minimumLength else { return .failure(.init(.truncatedIPHeader)) }
        guard let ip = IPv4View(b) else {
            return .failure(.init(Int(b[0] & 0x0F) * 4 > b.count ? .truncatedIPHeader : .badIPHeader))
        }
        guard ip.protocolNumber == 6 else { return .failure(.init(.notTCP)) }
        guard !ip.isFragment else { return .failure(.init(.ipFragment)) }
        var total = ip.totalLength
        // Segmentation offload: a captured super-frame may carry total length 0. Fall back to what
        // was captured, which is then the whole frame (the kernel does not cut it).
        if total == 0 { total = b.count }
        guard total >= ip.headerLength else { return .failure(.init(.badIPHeader)) }
        return decodeTCP(b, from: ip.headerLength, ipEnd: total,
                         source: ip.source, destination: ip.destination, ipID: ip.identification)
    }

    private func decodeIPv6(_ b: UnsafeRawBufferPointer) -> Result<TCPSegment, DecodeError> {
        guard let ip = IPv6View(b) else { return .failure(.init(.truncatedIPHeader)) }
        var next = ip.nextHeader
        var offset = IPv6View.headerLength
        let payload = ip.payloadLength
        let end = payload == 0 ? b.count : IPv6View.headerLength + payload // 0: jumbogram or offload
        // Walk extension headers (hop-by-hop, routing, destination options); fragments are skipped.
        var hops = 0
        while next == 0 || next == 43 || next == 60 || next == 44 || next == 51 {
            if next == 44 { return .failure(.init(.ipFragment)) }
            guard hops < 8, b.count >= offset + 8 else { return .failure(.init(.truncatedIPHeader)) }
            let length = next == 51 ? (Int(b[offset + 1]) + 2) * 4 : (Int(b[offset + 1]) + 1) * 8
            next = b[offset]
            offset += length
            hops += 1
        }
        guard next == 6 else { return .failure(.init(.notTCP)) }
        guard end >= offset else { return .failure(.init(.badIPHeader)) }
        return decodeTCP(b, from: offset, ipEnd: end, source: ip.source, destination: ip.destination, ipID: nil)
    }

    private func decodeTCP(_ b: UnsafeRawBufferPointer, from offset: Int, ipEnd: Int,
                           source: IPAddress, destination: IPAddress, ipID: UInt16?) -> Result<TCPSegment, DecodeError> {
        guard b.count > offset else { return .failure(.init(.truncatedTCPHeader)) }
        // Bytes past the IP length are link padding, never payload.
        let segment = UnsafeRawBufferPointer(rebasing: b[offset..<min(b.count, max(ipEnd, offset))])
        guard segment.count >= TCPView.minimumLength else { return .failure(.init(.truncatedTCPHeader)) }
        guard let tcp = TCPView(segment) else {
            let claimed = Int(segment[TCPView.dataOffsetOffset] >> 4) * 4
            return .failure(.init(claimed < TCPView.minimumLength ? .badTCPHeader : .truncatedTCPHeader))
        }
        let wireLength = ipEnd - offset - tcp.headerLength
        guard wireLength >= 0 else { return .failure(.init(.badTCPHeader)) }
        let captured = UnsafeRawBufferPointer(rebasing: segment[tcp.headerLength...])
        return .success(TCPSegment(
            source: Endpoint(address: source, port: tcp.sourcePort),
            destination: Endpoint(address: destination, port: tcp.destinationPort),
            sequence: tcp.sequence, acknowledgement: tcp.acknowledgement, flags: tcp.flags,
            window: tcp.window, ipID: ipID, payload: captured, payloadLength: wireLength))
    }
}

/// The reason a packet was not decoded to TCP (an `Error` so it can ride in a `Result`).
public struct DecodeError: Error, Sendable {
    public var outcome: DecodeOutcome
    init(_ outcome: DecodeOutcome) { self.outcome = outcome }
}
