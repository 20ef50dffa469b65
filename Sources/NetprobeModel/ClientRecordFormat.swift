/// The binary form of the load generator's records: every request of a load run as the client
/// saw it. One definition for the two places they live: `netprobe load --timestamps-out FILE`
/// writes them to a file, and `netprobe capture` copies them into the trace as pcapng custom
/// blocks, which `report` reads. All integers are little-endian.
///
/// ```
/// header, 16 bytes:
///   0  8  magic "NPLOADTS"
///   8  u16 version (1)
///  10  u16 entry length (48)
///  12  u32 reserved (0)
/// then entries of 48 bytes each; byte 0 says which kind:
/// connection (kind 1), before any request that refers to it:
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
///
/// A *block* is the same thing cut to size: the header, then entries, self-contained (each
/// request's connection is declared earlier in the same block). In a trace, a block is the
/// payload of a pcapng custom block after its Private Enterprise Number; `BlockBuilder` cuts a
/// file's entries into blocks.
public enum ClientRecordFormat {
    public static let magic: [UInt8] = Array("NPLOADTS".utf8)
    public static let version: UInt16 = 1
    public static let headerLength = 16
    public static let entryLength = 48

    /// Kind bytes of the entries.
    public static let connectionKind: UInt8 = 1
    public static let requestKind: UInt8 = 2

    /// An IPv4 or IPv6 address as two 64-bit words of its bytes in network order (IPv4: `high`
    /// 0, the address in the low 32 bits of `low`).
    public struct Address: Sendable, Hashable {
        public var isIPv6: Bool
        public var high: UInt64
        public var low: UInt64
        public init(isIPv6: Bool, high: UInt64, low: UInt64) {
            self.isIPv6 = isIPv6
            self.high = isIPv6 ? high : 0
            self.low = isIPv6 ? low : low & 0xFFFF_FFFF
        }
    }

    /// A connection entry's fields. Both addresses have the same IP version (the client's is taken).
    public struct Connection: Sendable, Equatable {
        public var index: UInt16
        public var client: Address
        public var clientPort: UInt16
        public var server: Address
        public var serverPort: UInt16
        public var connectedNs: Int64
        public init(index: UInt16, client: Address, clientPort: UInt16, server: Address, serverPort: UInt16, connectedNs: Int64) {
            self.index = index
            self.client = client
            self.clientPort = clientPort
            self.server = server
            self.serverPort = serverPort
            self.connectedNs = connectedNs
        }
    }

    /// A request entry's fields.
    public struct Request: Sendable, Equatable {
        public var connection: UInt16
        /// 1 SET, 2 GET (the load generator's command kinds).
        public var command: UInt8
        /// Bit 0: the reply was an error.
        public var flags: UInt16
        public var clientPort: UInt16
        public var requestOffset: UInt64
        public var requestLength: UInt32
        public var replyOffset: UInt64
        public var sendNs: Int64
        public var receiveNs: Int64
        public init(connection: UInt16, command: UInt8, flags: UInt16, clientPort: UInt16, requestOffset: UInt64,
                    requestLength: UInt32, replyOffset: UInt64, sendNs: Int64, receiveNs: Int64) {
            self.connection = connection
            self.command = command
            self.flags = flags
            self.clientPort = clientPort
            self.requestOffset = requestOffset
            self.requestLength = requestLength
            self.replyOffset = replyOffset
            self.sendNs = sendNs
            self.receiveNs = receiveNs
        }
        public var isErrorReply: Bool { flags & 1 != 0 }
    }

    /// One decoded entry.
    public enum Entry: Sendable, Equatable {
        case connection(Connection)
        case request(Request)
        /// A kind this version does not know (skipped by readers).
        case unknown(kind: UInt8)
    }

    // MARK: Header

    /// The 16-byte header of a file or a block.
    public static func header() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: headerLength)
        out.withUnsafeMutableBytes { writeHeader(into: $0.baseAddress!) }
        return out
    }

    static func writeHeader(into p: UnsafeMutableRawPointer) {
        p.copyMemory(from: magic, byteCount: magic.count)
        p.storeBytes(of: version.littleEndian, toByteOffset: 8, as: UInt16.self)
        p.storeBytes(of: UInt16(entryLength).littleEndian, toByteOffset: 10, as: UInt16.self)
        p.storeBytes(of: UInt32(0), toByteOffset: 12, as: UInt32.self)
    }

    /// True when `b` begins with the magic (a file or block of records, whatever its version).
    public static func hasMagic(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count >= magic.count && b.prefix(magic.count).elementsEqual(magic)
    }

    /// Checks a header; returns what is wrong with it, or nil when it is fine.
    public static func headerProblem(_ b: UnsafeRawBufferPointer) -> String? {
        guard b.count >= headerLength else { return "shorter than the \(headerLength)-byte header" }
        guard hasMagic(b) else { return "not netprobe load records (no \"NPLOADTS\" magic)" }
        let v = u16(b, 8), length = u16(b, 10)
        guard v == version else { return "format version \(v); this netprobe reads version \(version)" }
        guard Int(length) == entryLength else { return "entry length \(length), expected \(entryLength)" }
        return nil
    }

    // MARK: Entries

    /// Writes a connection's 48-byte entry at `p`.
    public static func encode(_ c: Connection, into p: UnsafeMutableRawPointer) {
        p.initializeMemory(as: UInt8.self, repeating: 0, count: entryLength)
        p.storeBytes(of: connectionKind, as: UInt8.self)
        p.storeBytes(of: c.client.isIPv6 ? 6 : 4, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: c.index.littleEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: c.clientPort.littleEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: c.serverPort.littleEndian, toByteOffset: 6, as: UInt16.self)
        storeAddress(c.client, p + 8)
        storeAddress(c.server, p + 24)
        p.storeBytes(of: c.connectedNs.littleEndian, toByteOffset: 40, as: Int64.self)
    }

    /// Writes a request's 48-byte entry at `p` (the load generator's per-request path).
    @inlinable
    public static func encode(_ r: Request, into p: UnsafeMutableRawPointer) {
        p.storeBytes(of: requestKind, as: UInt8.self)
        p.storeBytes(of: r.command, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: r.connection.littleEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: r.flags.littleEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: r.clientPort.littleEndian, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: r.requestOffset.littleEndian, toByteOffset: 8, as: UInt64.self)
        p.storeBytes(of: r.requestLength.littleEndian, toByteOffset: 16, as: UInt32.self)
        p.storeBytes(of: UInt32(0), toByteOffset: 20, as: UInt32.self)
        p.storeBytes(of: r.replyOffset.littleEndian, toByteOffset: 24, as: UInt64.self)
        p.storeBytes(of: r.sendNs.littleEndian, toByteOffset: 32, as: Int64.self)
        p.storeBytes(of: r.receiveNs.littleEndian, toByteOffset: 40, as: Int64.self)
    }

    /// The 48-byte entry of a connection.
    public static func encode(_ c: Connection) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: entryLength)
        out.withUnsafeMutableBytes { encode(c, into: $0.baseAddress!) }
        return out
    }

    /// The 48-byte entry of a request.
    public static func encode(_ r: Request) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: entryLength)
        out.withUnsafeMutableBytes { encode(r, into: $0.baseAddress!) }
        return out
    }

    /// Decodes one entry (`b` holds at least `entryLength` bytes).
    public static func decode(_ b: UnsafeRawBufferPointer) -> Entry {
        precondition(b.count >= entryLength)
        switch b[0] {
        case connectionKind:
            let v6 = b[1] == 6
            return .connection(Connection(
                index: u16(b, 2), client: loadAddress(b, 8, v6: v6), clientPort: u16(b, 4),
                server: loadAddress(b, 24, v6: v6), serverPort: u16(b, 6), connectedNs: Int64(bitPattern: u64(b, 40))))
        case requestKind:
            return .request(Request(
                connection: u16(b, 2), command: b[1], flags: u16(b, 4), clientPort: u16(b, 6), requestOffset: u64(b, 8),
                requestLength: u32(b, 16), replyOffset: u64(b, 24), sendNs: Int64(bitPattern: u64(b, 32)),
                receiveNs: Int64(bitPattern: u64(b, 40))))
        default:
            return .unknown(kind: b[0])
        }
    }

    /// The connection index a request entry refers to (`b` holds at least the entry's first 4 bytes).
    public static func connectionIndex(_ b: UnsafeRawBufferPointer) -> UInt16 { u16(b, 2) }

    // MARK: Blocks

    /// What reading a block found besides its records.
    public struct BlockReading: Sendable, Equatable {
        /// Request entries whose connection was not declared before them in the block: skipped.
        public var undeclaredRequests = 0
        /// Entries of kinds this version does not know: skipped.
        public var unknownEntries = 0
        /// Bytes after the last whole entry (a block is whole entries: anything here is damage,
        /// unless it is the 1-3 zero bytes of pcapng padding).
        public var trailingBytes = 0
        public init() {}
    }

    /// Reads a block: `connection` gets each connection as it is declared, `request` each request
    /// with its connection (declared earlier in the block). nil when `block` has no valid header
    /// (not a block of records, or of a version or entry size this netprobe does not read).
    public static func readBlock(_ block: UnsafeRawBufferPointer, connection: (Connection) -> Void,
                                 request: (Request) -> Void) -> BlockReading? {
        guard headerProblem(block) == nil else { return nil }
        var reading = BlockReading()
        // Declared connections by index: a bit per possible index (8 KiB), set as they come.
        var declared = [UInt64](repeating: 0, count: 1024)
        var at = headerLength
        while block.count - at >= entryLength {
            let entry = UnsafeRawBufferPointer(rebasing: block[at..<(at + entryLength)])
            at += entryLength
            switch decode(entry) {
            case let .connection(c):
                declared[Int(c.index) >> 6] |= 1 << (UInt64(c.index) & 63)
                connection(c)
            case let .request(r):
                guard declared[Int(r.connection) >> 6] & (1 << (UInt64(r.connection) & 63)) != 0 else {
                    reading.undeclaredRequests += 1
                    continue
                }
                request(r)
            case .unknown:
                reading.unknownEntries += 1
            }
        }
        let rest = UnsafeRawBufferPointer(rebasing: block[at...])
        if !(rest.count < 4 && rest.allSatisfy { $0 == 0 }) { reading.trailingBytes = rest.count }
        return reading
    }

    /// Cuts a stream of entries (a file's, in order) into self-contained blocks of at most
    /// `maximumRequests` requests: each block starts with the header and declares the
    /// connections its requests use, just before the first of them.
    ///
    /// ```swift
    /// var builder = ClientRecordFormat.BlockBuilder()
    /// for entry in entries { if let block = builder.add(entry) { write(block) } }
    /// if let block = builder.finish() { write(block) }
    /// ```
    public struct BlockBuilder {
        public let maximumRequests: Int
        /// Every connection entry seen so far, by index (a later one with the same index replaces it).
        private var connections: [UInt16: [UInt8]] = [:]
        /// Connections declared in the current block (a bit per index).
        private var declaredHere = [UInt64](repeating: 0, count: 1024)
        private var block: [UInt8] = []
        private var requests = 0
        /// Requests whose connection was never declared: left out.
        public private(set) var undeclaredRequests = 0

        /// 20,000 requests make a block of about 960 KiB.
        public init(maximumRequests: Int = 20_000) {
            self.maximumRequests = max(1, maximumRequests)
        }

        /// Adds one 48-byte entry; returns a finished block when this one filled it.
        public mutating func add(_ entry: UnsafeRawBufferPointer) -> [UInt8]? {
            precondition(entry.count >= entryLength)
            let raw = UnsafeRawBufferPointer(rebasing: entry[0..<entryLength])
            switch raw[0] {
            case connectionKind:
                let index = ClientRecordFormat.connectionIndex(raw)
                connections[index] = Array(raw)
                // Declared again where it is next used (in this block too: it may have changed).
                declaredHere[Int(index) >> 6] &= ~(1 << (UInt64(index) & 63))
                return nil
            case requestKind:
                let index = ClientRecordFormat.connectionIndex(raw)
                guard let connection = connections[index] else {
                    undeclaredRequests += 1
                    return nil
                }
                if block.isEmpty {
                    block = header()
                    block.reserveCapacity(headerLength + entryLength * min(maximumRequests + 16, 1 << 16))
                }
                if declaredHere[Int(index) >> 6] & (1 << (UInt64(index) & 63)) == 0 {
                    block.append(contentsOf: connection)
                    declaredHere[Int(index) >> 6] |= 1 << (UInt64(index) & 63)
                }
                block.append(contentsOf: raw)
                requests += 1
                return requests >= maximumRequests ? finish() : nil
            default:
                return nil // unknown kinds are not copied: their rules (what they refer to) are unknown
            }
        }

        /// The block in progress, if it holds any request; the next `add` starts a new one.
        public mutating func finish() -> [UInt8]? {
            guard requests > 0 else { return nil }
            let done = block
            block = []
            requests = 0
            for k in declaredHere.indices { declaredHere[k] = 0 }
            return done
        }
    }

    // MARK: Bytes

    private static func storeAddress(_ a: Address, _ p: UnsafeMutableRawPointer) {
        if a.isIPv6 {
            p.storeBytes(of: a.high.bigEndian, as: UInt64.self)
            p.storeBytes(of: a.low.bigEndian, toByteOffset: 8, as: UInt64.self)
        } else {
            p.storeBytes(of: UInt32(truncatingIfNeeded: a.low).bigEndian, as: UInt32.self)
        }
    }

    private static func loadAddress(_ b: UnsafeRawBufferPointer, _ at: Int, v6: Bool) -> Address {
        var high: UInt64 = 0, low: UInt64 = 0
        for i in 0..<8 { high = high << 8 | UInt64(b[at + i]) }
        for i in 8..<16 { low = low << 8 | UInt64(b[at + i]) }
        return v6 ? Address(isIPv6: true, high: high, low: low) : Address(isIPv6: false, high: 0, low: high >> 32)
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
