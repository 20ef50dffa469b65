import NetprobeModel
/// Opens a trace file of any supported format: classic pcap (tcpdump) or pcapng (dumpcap,
/// Wireshark, netprobe capture). The format is recognised from the first bytes, not the name.
public final class TraceReader: PacketSource {
    public enum Format: String, Sendable, Codable {
        case pcap, pcapng
    }

    public let path: String
    public let format: Format
    private let reader: any PacketSource
    /// Custom data (pcapng only) in file order, as (enterprise number, payload copy): every Custom
    /// Block's, and every item of netprobe's own data carried in custom options (`MetadataCarriage`).
    public private(set) var customBlocks: [(pen: UInt32, payload: [UInt8])] = []
    /// Sees all custom data as it is read (on the thread that reads), before it is kept; data it
    /// returns true for is not kept in `customBlocks`. `report` takes the load
    /// generator's records this way, so their payloads never pile up.
    public var onCustomBlock: ((UInt32, UnsafeRawBufferPointer) -> Bool)?

    /// Opens `path` ("-" for standard input). Throws a `TraceError` naming the file and offset when
    /// it is not a trace netprobe can read.
    public convenience init(path: String) throws {
        try self.init(source: ByteSource(path: path))
    }

    /// Reads a trace held in memory; `name` stands for the file in messages.
    public convenience init(bytes: [UInt8], name: String = "(memory)") throws {
        try self.init(source: ByteSource(bytes: bytes, name: name))
    }

    init(source: ByteSource) throws {
        let path = source.path
        self.path = path
        let have = try source.available(4)
        guard have == 4 else {
            throw TraceError(file: path, offset: Int64(have),
                             "file is \(have == 0 ? "empty" : "only \(have) bytes long"); expected a pcap or pcapng header")
        }
        let magic = source.peek(4)
        if PcapReader.magic(magic) != nil {
            format = .pcap
            reader = try PcapReader(source: source)
        } else if magic.loadUnaligned(as: UInt32.self) == PcapngReader.BlockType.sectionHeader {
            format = .pcapng
            let ng = try PcapngReader(source: source)
            reader = ng
            ng.customDataHandler = { [unowned self] pen, payload in
                if let taken = self.onCustomBlock, taken(pen, payload) { return }
                self.customBlocks.append((pen, Array(payload)))
            }
        } else {
            let b = Array(magic)
            let gzip = b[0] == 0x1f && b[1] == 0x8b
            throw TraceError(file: path, offset: 0, gzip
                ? "this is a gzip file; decompress it first (gunzip), netprobe reads pcap and pcapng"
                : "expected a pcap magic (a1b2c3d4 or a1b23c4d, either byte order) or a pcapng Section Header Block (0a0d0d0a); found \(b.map { String($0, radix: 16) }.joined(separator: " "))")
        }
    }

    /// The format of a file that starts with `head` (its first 4 bytes or more), as this reader
    /// recognises it; nil when it is not a trace (`report -w` will not write over one).
    public static func format(ofFileStart head: [UInt8]) -> Format? {
        guard head.count >= 4 else { return nil }
        return head.withUnsafeBytes { raw in
            if PcapReader.magic(raw) != nil { return .pcap }
            return raw.loadUnaligned(as: UInt32.self) == PcapngReader.BlockType.sectionHeader ? .pcapng : nil
        }
    }

    /// Forgets the custom blocks' payloads (after they were decoded: they can be most of a
    /// long netprobe trace's metadata).
    public func dropCustomBlocks() { customBlocks = [] }

    public var interfaces: [TraceInterface] { reader.interfaces }
    public var warnings: [TraceWarning] { reader.warnings }
    /// pcapng section metadata (hardware, os, application, comment) per section; empty for pcap.
    public var sections: [[String: String]] { (reader as? PcapngReader)?.sections ?? [] }

    public func next() throws -> PacketRecord? { try reader.next() }
}
