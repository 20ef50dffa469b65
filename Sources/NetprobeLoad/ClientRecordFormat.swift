import NetprobeCore

/// The binary layout of a `--timestamps-out` file: every request of a load run as the client saw
/// it. All integers are little-endian.
///
/// ```
/// header, 16 bytes:
///   0  8  magic "NPLOADTS"
///   8  u16 version (1)
///  10  u16 entry length (48)
///  12  u32 reserved (0)
/// then entries of 48 bytes each; byte 0 says which kind:
/// connection (kind 1), written before any request that refers to it:
///   0  u8  kind = 1             1  u8  IP version (4 or 6)
///   2  u16 connection index     4  u16 client port        6  u16 server port
///   8  16 bytes client address (network byte order; IPv4 in the first 4 bytes, the rest zero)
///  24  16 bytes server address
///  40  i64 connected at (CLOCK_REALTIME ns)
/// request (kind 2), in the order replies arrived:
///   0  u8  kind = 2             1  u8  command (1 SET, 2 GET)
///   2  u16 connection index     4  u16 flags (bit 0: the reply was an error)
///   6  u16 client port
///   8  u64 request stream offset (bytes sent on the connection before the request)
///  16  u32 request length       20  u32 reserved (0)
///  24  u64 reply stream offset (bytes received on the connection before the reply)
///  32  i64 send time (CLOCK_REALTIME ns, just before the send(2) carrying the last byte)
///  40  i64 receive time (CLOCK_REALTIME ns, just after the recv(2) returning the last byte)
/// ```
/// Readers skip entries of kinds they do not know, so later versions can add kinds.
public enum ClientRecordFormat {
    public static let magic: [UInt8] = Array("NPLOADTS".utf8)
    public static let version: UInt16 = 1
    public static let headerLength = 16
    public static let entryLength = 48

    /// Kind bytes of the entries.
    public static let connectionKind: UInt8 = 1
    public static let requestKind: UInt8 = 2

    /// One decoded entry.
    public enum Entry: Sendable, Equatable {
        case connection(ClientConnection)
        case request(ClientRequestRecord)
        /// A kind this version does not know (skipped by readers).
        case unknown(kind: UInt8)
    }

    /// The 16-byte file header.
    public static func header() -> [UInt8] {
        var out = magic
        out.append(contentsOf: le(UInt32(version) | UInt32(entryLength) << 16))
        out.append(contentsOf: le(UInt32(0)))
        return out
    }

    /// The 48-byte entry of a connection.
    public static func encode(_ c: ClientConnection) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: entryLength)
        out.withUnsafeMutableBytes { encode(c, into: $0.baseAddress!) }
        return out
    }

    /// The 48-byte entry of a request.
    public static func encode(_ r: ClientRequestRecord) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: entryLength)
        out.withUnsafeMutableBytes { encode(r, into: $0.baseAddress!) }
        return out
    }

    static func encode(_ c: ClientConnection, into p: UnsafeMutableRawPointer) {
        p.initializeMemory(as: UInt8.self, repeating: 0, count: entryLength)
        p.storeBytes(of: connectionKind, as: UInt8.self)
        p.storeBytes(of: c.server.address.isIPv6 ? 6 : 4, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: UInt16(truncatingIfNeeded: c.index).littleEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: c.client.port.littleEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: c.server.port.littleEndian, toByteOffset: 6, as: UInt16.self)
        storeAddress(c.client.address, p + 8)
        storeAddress(c.server.address, p + 24)
        p.storeBytes(of: c.connectedNs.littleEndian, toByteOffset: 40, as: Int64.self)
    }

    @inline(__always)
    static func encode(_ r: ClientRequestRecord, into p: UnsafeMutableRawPointer) {
        p.storeBytes(of: requestKind, as: UInt8.self)
        p.storeBytes(of: r.command.rawValue, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: UInt16(truncatingIfNeeded: r.connection).littleEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: UInt16(r.isErrorReply ? 1 : 0).littleEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: r.client.port.littleEndian, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: r.requestOffset.littleEndian, toByteOffset: 8, as: UInt64.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: r.requestLength).littleEndian, toByteOffset: 16, as: UInt32.self)
        p.storeBytes(of: UInt32(0), toByteOffset: 20, as: UInt32.self)
        p.storeBytes(of: r.replyOffset.littleEndian, toByteOffset: 24, as: UInt64.self)
        p.storeBytes(of: r.sendNs.littleEndian, toByteOffset: 32, as: Int64.self)
        p.storeBytes(of: r.receiveNs.littleEndian, toByteOffset: 40, as: Int64.self)
    }

    /// Checks a file header; returns what is wrong with it, or nil when it is fine.
    public static func headerProblem(_ b: UnsafeRawBufferPointer) -> String? {
        guard b.count >= headerLength else { return "shorter than the \(headerLength)-byte header" }
        guard b.prefix(magic.count).elementsEqual(magic) else {
            return "not a netprobe load timestamps file (no \"NPLOADTS\" magic)"
        }
        let v = u16(b, 8), length = u16(b, 10)
        guard v == version else { return "format version \(v); this netprobe reads version \(version)" }
        guard Int(length) == entryLength else { return "entry length \(length), expected \(entryLength)" }
        return nil
    }

    /// Decodes one 48-byte entry. A request's endpoints come from its connection's entry, looked
    /// up in `connections`; nil when that connection was never declared.
    public static func decode(_ b: UnsafeRawBufferPointer, connections: [Int: ClientConnection]) -> Entry? {
        precondition(b.count >= entryLength)
        switch b[0] {
        case connectionKind:
            let v6 = b[1] == 6
            return .connection(ClientConnection(
                index: Int(u16(b, 2)),
                client: Endpoint(address: loadAddress(b, 8, v6: v6), port: u16(b, 4)),
                server: Endpoint(address: loadAddress(b, 24, v6: v6), port: u16(b, 6)),
                connectedNs: Int64(bitPattern: u64(b, 40))))
        case requestKind:
            guard let command = LoadCommandKind(rawValue: b[1]), let c = connections[Int(u16(b, 2))] else { return nil }
            return .request(ClientRequestRecord(
                connection: c.index, client: c.client, server: c.server, command: command,
                isErrorReply: u16(b, 4) & 1 != 0, requestOffset: u64(b, 8), requestLength: Int(u32(b, 16)),
                replyOffset: u64(b, 24), sendNs: Int64(bitPattern: u64(b, 32)),
                receiveNs: Int64(bitPattern: u64(b, 40))))
        default:
            return .unknown(kind: b[0])
        }
    }

    private static func storeAddress(_ a: IPAddress, _ p: UnsafeMutableRawPointer) {
        if a.isIPv6 {
            p.storeBytes(of: a.high.bigEndian, as: UInt64.self)
            p.storeBytes(of: a.low.bigEndian, toByteOffset: 8, as: UInt64.self)
        } else {
            p.storeBytes(of: UInt32(truncatingIfNeeded: a.low).bigEndian, as: UInt32.self)
        }
    }

    private static func loadAddress(_ b: UnsafeRawBufferPointer, _ at: Int, v6: Bool) -> IPAddress {
        var high: UInt64 = 0, low: UInt64 = 0
        for i in 0..<8 { high = high << 8 | UInt64(b[at + i]) }
        for i in 8..<16 { low = low << 8 | UInt64(b[at + i]) }
        return v6 ? IPAddress(ipv6High: high, low: low) : IPAddress(ipv4: UInt32(truncatingIfNeeded: high >> 32))
    }

    private static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        withUnsafeBytes(of: v.littleEndian) { Array($0) }
    }

    private static func u16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        UInt16(b[at]) | UInt16(b[at + 1]) << 8
    }

    private static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(u16(b, at)) | UInt32(u16(b, at + 2)) << 16
    }

    private static func u64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        UInt64(u32(b, at)) | UInt64(u32(b, at + 4)) << 32
    }
}
