import NetprobeModel
/// Reads a classic libpcap file: microsecond (0xa1b2c3d4) and nanosecond (0xa1b23c4d) magic in
/// either byte order, and the "modified" (Kuznetzov, 0xa1b2cd34) variant with its longer records.
final class PcapReader: PacketSource {
    static let globalHeaderLength = 24

    private let source: ByteSource
    private let swapped: Bool
    private let nanosecond: Bool
    private let recordHeaderLength: Int
    private(set) var interfaces: [TraceInterface]
    private(set) var warnings: [TraceWarning] = []
    private var finished = false

    /// Recognises the magic number. Returns nil when the bytes are not a pcap header.
    static func magic(_ bytes: UnsafeRawBufferPointer) -> (swapped: Bool, nanosecond: Bool, modified: Bool)? {
        guard bytes.count >= 4 else { return nil }
        let native = bytes.loadUnaligned(as: UInt32.self)
        for (value, swapped) in [(native, false), (native.byteSwapped, true)] {
            switch value {
            case 0xa1b2_c3d4: return (swapped, false, false)
            case 0xa1b2_3c4d: return (swapped, true, false)
            case 0xa1b2_cd34: return (swapped, false, true)
            default: continue
            }
        }
        return nil
    }

    init(source: ByteSource) throws {
        self.source = source
        let have = try source.available(Self.globalHeaderLength)
        guard have == Self.globalHeaderLength else {
            throw TraceError(file: source.path, offset: 0,
                             "file ends inside the 24-byte pcap header (\(have) bytes present)")
        }
        let header = source.peek(Self.globalHeaderLength)
        guard let magic = Self.magic(header) else {
            throw TraceError(file: source.path, offset: 0, "expected a pcap magic number")
        }
        swapped = magic.swapped
        nanosecond = magic.nanosecond
        recordHeaderLength = magic.modified ? 24 : 16
        let major = readU16(header, 4, swapped: swapped)
        guard major == 2 else {
            throw TraceError(file: source.path, offset: 4, "expected pcap major version 2, found \(major)")
        }
        let snaplen = readU32(header, 16, swapped: swapped)
        // The upper bits of the link-type field carry FCS information; the type is the low 28 bits.
        let linkType = LinkType(rawValue: readU32(header, 20, swapped: swapped) & 0x0FFF_FFFF)
        var interface = TraceInterface(name: "if0", nameRecorded: false, linkType: linkType, snapLength: snaplen)
        interface.description = "classic pcap: the interface name is not recorded"
        interface.tsResolutionExponent = nanosecond ? 9 : 6
        interfaces = [interface]
        source.skip(Self.globalHeaderLength)
    }

    func next() throws -> PacketRecord? {
        if finished { return nil }
        let recordOffset = source.offset
        let have = try source.available(recordHeaderLength)
        if have == 0 {
            finished = true
            return nil
        }
        if have < recordHeaderLength {
            finished = true
            throw TraceError(file: source.path, offset: recordOffset,
                             "expected a \(recordHeaderLength)-byte packet record header, the file ends after \(have) bytes of it: the capture was cut off")
        }
        let header = source.peek(recordHeaderLength)
        let seconds = Int64(readU32(header, 0, swapped: swapped))
        let fraction = Int64(readU32(header, 4, swapped: swapped))
        let capturedLength = Int(readU32(header, 8, swapped: swapped))
        let originalLength = Int(readU32(header, 12, swapped: swapped))
        if fraction >= (nanosecond ? 1_000_000_000 : 1_000_000) {
            warnings.append(TraceWarning(offset: recordOffset + 4, message:
                "timestamp fraction \(fraction) is out of range for \(nanosecond ? "nano" : "micro")seconds"))
        }
        let limit = source.maximumWindow - recordHeaderLength
        guard capturedLength <= limit else {
            finished = true
            throw TraceError(file: source.path, offset: recordOffset + 8,
                             "expected a captured length of at most \(limit) bytes, found \(capturedLength): the file is damaged or not a pcap file")
        }
        let total = recordHeaderLength + capturedLength
        let got = try source.available(total)
        if got < total {
            finished = true
            throw TraceError(file: source.path, offset: recordOffset,
                             "expected a packet record of \(total) bytes, the file ends after \(got) bytes of it: the capture was cut off")
        }
        let bytes = source.peek(total)
        source.skip(total)
        let ns = seconds * 1_000_000_000 + (nanosecond ? fraction : fraction * 1000)
        return PacketRecord(
            interface: 0, timestampNs: ns, originalLength: max(originalLength, capturedLength),
            direction: .unknown,
            data: UnsafeRawBufferPointer(rebasing: bytes[recordHeaderLength...]),
            fileOffset: recordOffset)
    }
}
