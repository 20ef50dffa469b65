import NetprobeModel
/// Reads pcapng (draft-ietf-opsawg-pcapng): Section Header, Interface Description, Enhanced and
/// Simple Packet, the obsolete Packet Block, Interface Statistics and Name Resolution blocks, in
/// either byte order, several sections and several interfaces. Unknown blocks are skipped; custom
/// data is offered to `customDataHandler`: each Custom Block's, and each item of netprobe's own data
/// carried in custom options of Section Header, Interface Description and Interface Statistics
/// Blocks (`MetadataCarriage`: its options of one block, joined in order).
final class PcapngReader: PacketSource {
    enum BlockType {
        static let sectionHeader: UInt32 = 0x0A0D_0D0A
        static let interfaceDescription: UInt32 = 0x0000_0001
        static let obsoletePacket: UInt32 = 0x0000_0002
        static let simplePacket: UInt32 = 0x0000_0003
        static let nameResolution: UInt32 = 0x0000_0004
        static let interfaceStatistics: UInt32 = 0x0000_0005
        static let enhancedPacket: UInt32 = 0x0000_0006
        static let customCopiable: UInt32 = 0x0000_0BAD
        static let customNonCopiable: UInt32 = 0x4000_0BAD
    }
    static let byteOrderMagic: UInt32 = 0x1A2B_3C4D

    private let source: ByteSource
    private var swapped = false
    /// Global index (into `interfaces`) of the current section's interface 0.
    private var sectionBase = 0
    private var sectionCount = 0
    private(set) var interfaces: [TraceInterface] = []
    private(set) var warnings: [TraceWarning] = []
    /// Section-level metadata: shb_hardware / shb_os / shb_userappl of each section.
    private(set) var sections: [[String: String]] = []
    private var finished = false
    private var warnedTimestamp = false
    /// Timestamps are kept in 0 ... 2^62 ns (1970 to 2116), so that the difference of any two
    /// fits in 64 bits; a block claiming another time is clamped and a warning says so.
    static let latestTimestampNs: Int64 = 1 << 62

    /// Per interface, the usual nanosecond clock (if_tsresol 9, no if_tsoffset): its ticks are
    /// nanoseconds as they are. Read per packet instead of the interface (whose copy cost a
    /// retain and release of each of its strings).
    private var plainNanoseconds: [Bool] = []

    private func timestamp(_ index: Int, _ ticks: UInt64, at offset: Int64) -> Int64 {
        if plainNanoseconds[index] && ticks <= UInt64(Self.latestTimestampNs) { return Int64(ticks) }
        let ns = interfaces[index].nanoseconds(fromTicks: ticks)
        if ns >= 0 && ns <= Self.latestTimestampNs { return ns }
        if !warnedTimestamp {
            warnedTimestamp = true
            warnings.append(TraceWarning(offset: offset, message: "a packet's timestamp is outside 1970-2116 (interface \(interfaces[index].name)); such times are clamped and latencies involving them are not meaningful"))
        }
        return ns < 0 ? 0 : Self.latestTimestampNs
    }

    /// Called with (private enterprise number, data) for every Custom Block and every item of
    /// netprobe's data in custom options; the bytes are valid only during the call.
    var customDataHandler: ((UInt32, UnsafeRawBufferPointer) -> Void)?

    /// The item of netprobe's data being gathered from the custom options of the block being read:
    /// its PEN, its one piece so far (handed on without a copy), or all its pieces joined.
    private var itemPEN: UInt32 = 0
    private var itemPieces = 0
    private var itemFirstPiece = UnsafeRawBufferPointer(start: nil, count: 0)
    private var itemJoined: [UInt8] = []

    /// Takes one of netprobe's custom options into the item; false for any other option.
    private func gather(_ code: UInt16, _ value: UnsafeRawBufferPointer) -> Bool {
        guard PcapngEncoder.CustomOptionCode.contains(code), value.count >= 4 else { return false }
        let pen = readU32(value, 0, swapped: swapped)
        guard MetadataCarriage.isNetprobe(enterpriseNumber: pen) else { return false }
        if itemPieces > 0 && pen != itemPEN { deliverItem() }
        itemPEN = pen
        let piece = UnsafeRawBufferPointer(rebasing: value[4...])
        if itemPieces == 0 {
            itemFirstPiece = piece
        } else {
            if itemPieces == 1 {
                itemJoined.removeAll(keepingCapacity: true)
                itemJoined.append(contentsOf: itemFirstPiece)
            }
            itemJoined.append(contentsOf: piece)
        }
        itemPieces += 1
        return true
    }

    /// Hands the gathered item (if any) to `customDataHandler`; called at the end of each block
    /// with options, while its bytes are still in the window.
    private func deliverItem() {
        guard itemPieces > 0 else { return }
        let pieces = itemPieces
        itemPieces = 0
        guard let handler = customDataHandler else { return }
        if pieces == 1 {
            handler(itemPEN, itemFirstPiece)
        } else {
            itemJoined.withUnsafeBytes { handler(itemPEN, $0) }
        }
    }

    /// Throws when the file ends inside its first Section Header Block: then nothing in it can be
    /// read (like a pcap file cut inside its 24-byte header), and the report would be empty.
    init(source: ByteSource) throws {
        self.source = source
        let head = try source.available(12)
        guard head == 12 else {
            throw TraceError(file: source.path, offset: 0,
                             "file ends inside the pcapng Section Header Block (\(head) bytes present): nothing in it can be read")
        }
        let window = source.peek(12)
        let magic = window.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        guard magic == Self.byteOrderMagic || magic.byteSwapped == Self.byteOrderMagic else { return } // next() says what is wrong
        let length = Int(readU32(window, 4, swapped: magic != Self.byteOrderMagic))
        guard length >= 12, length % 4 == 0, length <= source.maximumWindow else { return } // likewise
        let got = try source.available(length)
        guard got == length else {
            throw TraceError(file: source.path, offset: 0,
                             "file ends inside the pcapng Section Header Block (\(got) of its \(length) bytes present): nothing in it can be read")
        }
    }

    func next() throws -> PacketRecord? {
        while !finished {
            if let packet = try readBlock() { return packet }
        }
        return nil
    }

    /// The file ends part-way through a block: damage like any other (the capture was cut off),
    /// reported with where the block starts; the packets before it stay valid.
    private func cutOff(_ message: String, at offset: Int64) -> TraceError {
        finished = true
        return TraceError(file: source.path, offset: offset, message + ": the capture was cut off")
    }

    /// Reads one block; returns a packet when the block held one.
    private func readBlock() throws -> PacketRecord? {
        let blockOffset = source.offset
        let head = try source.available(12)
        if head == 0 {
            finished = true
            if sectionCount == 0 {
                throw TraceError(file: source.path, offset: 0, "expected a pcapng Section Header Block, found an empty file")
            }
            return nil
        }
        if head < 8 {
            throw cutOff("expected a block header, the file ends after \(head) bytes of it", at: blockOffset)
        }
        var window = source.peek(head)
        let nativeType = window.loadUnaligned(as: UInt32.self)
        let isSectionHeader = nativeType == BlockType.sectionHeader // palindromic: same in both orders
        if isSectionHeader {
            guard head >= 12 else {
                throw cutOff("expected a Section Header Block, the file ends after \(head) bytes of it", at: blockOffset)
            }
            let magic = window.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
            if magic == Self.byteOrderMagic {
                swapped = false
            } else if magic.byteSwapped == Self.byteOrderMagic {
                swapped = true
            } else {
                finished = true
                throw TraceError(file: source.path, offset: blockOffset + 8,
                                 "expected the byte-order magic 0x1A2B3C4D, found \(hex32(magic))")
            }
        } else if sectionCount == 0 {
            finished = true
            throw TraceError(file: source.path, offset: blockOffset, "expected a pcapng Section Header Block (type 0x0A0D0D0A) first")
        }
        let type = swapped ? nativeType.byteSwapped : nativeType
        let length = Int(readU32(window, 4, swapped: swapped))
        guard length >= 12, length % 4 == 0 else {
            finished = true
            throw TraceError(file: source.path, offset: blockOffset + 4,
                             "expected a block length that is a multiple of 4 and at least 12, found \(length) (block type 0x\(String(type, radix: 16)))")
        }
        guard length <= source.maximumWindow else {
            finished = true
            throw TraceError(file: source.path, offset: blockOffset + 4,
                             "block of type 0x\(String(type, radix: 16)) claims \(length) bytes, more than the \(source.maximumWindow >> 20) MiB netprobe accepts for one block: the file is damaged")
        }
        let got = try source.available(length)
        if got < length {
            throw cutOff("expected a block of type 0x\(String(type, radix: 16)) and \(length) bytes, the file ends after \(got) bytes of it", at: blockOffset)
        }
        window = source.peek(length)
        let trailer = Int(readU32(window, length - 4, swapped: swapped))
        guard trailer == length else {
            finished = true
            throw TraceError(file: source.path, offset: blockOffset + Int64(length) - 4,
                             "expected the trailing block length \(length) (as at the block's start), found \(trailer)")
        }
        let body = UnsafeRawBufferPointer(rebasing: window[8..<(length - 4)])
        source.skip(length)

        switch type {
        case BlockType.sectionHeader:
            readSectionHeader(body, at: blockOffset)
        case BlockType.interfaceDescription:
            readInterfaceDescription(body, at: blockOffset)
        case BlockType.enhancedPacket:
            return readEnhancedPacket(body, at: blockOffset)
        case BlockType.simplePacket:
            return readSimplePacket(body, at: blockOffset)
        case BlockType.obsoletePacket:
            return readObsoletePacket(body, at: blockOffset)
        case BlockType.interfaceStatistics:
            readInterfaceStatistics(body, at: blockOffset)
        case BlockType.customCopiable, BlockType.customNonCopiable:
            if body.count >= 4, let handler = customDataHandler {
                handler(readU32(body, 0, swapped: swapped), UnsafeRawBufferPointer(rebasing: body[4...]))
            }
        default:
            break // NRB, DSB and blocks unknown to us: skipped, as the format intends
        }
        return nil
    }

    /// Walks an option list; calls `visit(code, value)` for each option up to opt_endofopt.
    private func forEachOption(_ options: UnsafeRawBufferPointer, at offset: Int64,
                               _ visit: (UInt16, UnsafeRawBufferPointer) -> Void) {
        var i = 0
        while i + 4 <= options.count {
            let code = readU16(options, i, swapped: swapped)
            let length = Int(readU16(options, i + 2, swapped: swapped))
            if code == 0 { return }
            guard i + 4 + length <= options.count else {
                warnings.append(TraceWarning(offset: offset + Int64(i), message:
                    "option \(code) claims \(length) bytes but only \(options.count - i - 4) remain in its block; the rest of the options are ignored"))
                return
            }
            visit(code, UnsafeRawBufferPointer(rebasing: options[(i + 4)..<(i + 4 + length)]))
            i += 4 + ((length + 3) & ~3)
        }
    }

    private func readSectionHeader(_ body: UnsafeRawBufferPointer, at offset: Int64) {
        sectionCount += 1
        sectionBase = interfaces.count
        var info: [String: String] = [:]
        if body.count >= 16 {
            let major = readU16(body, 4, swapped: swapped)
            if major != 1 {
                warnings.append(TraceWarning(offset: offset + 12, message: "section has pcapng major version \(major); expected 1, reading it anyway"))
            }
            forEachOption(UnsafeRawBufferPointer(rebasing: body[16...]), at: offset + 24) { code, value in
                if gather(code, value) { return }
                switch code {
                case 1: info["comment"] = String(decoding: value, as: UTF8.self)
                case 2: info["hardware"] = String(decoding: value, as: UTF8.self)
                case 3: info["os"] = String(decoding: value, as: UTF8.self)
                case 4: info["application"] = String(decoding: value, as: UTF8.self)
                default: break
                }
            }
        }
        sections.append(info)
        deliverItem()
    }

    private func readInterfaceDescription(_ body: UnsafeRawBufferPointer, at offset: Int64) {
        guard body.count >= 8 else {
            warnings.append(TraceWarning(offset: offset, message: "Interface Description Block too short (\(body.count) body bytes, expected at least 8)"))
            return
        }
        let localIndex = interfaces.count - sectionBase
        let prefix = sectionCount > 1 ? "s\(sectionCount - 1)." : ""
        var interface = TraceInterface(
            name: "\(prefix)if\(localIndex)", nameRecorded: false,
            linkType: LinkType(rawValue: UInt32(readU16(body, 0, swapped: swapped))),
            snapLength: readU32(body, 4, swapped: swapped))
        forEachOption(UnsafeRawBufferPointer(rebasing: body[8...]), at: offset + 16) { code, value in
            if gather(code, value) { return }
            switch code {
            case 2:
                interface.name = String(decoding: value, as: UTF8.self)
                interface.nameRecorded = true
            case 3: interface.description = String(decoding: value, as: UTF8.self)
            case 9 where value.count >= 1:
                interface.tsResolutionIsBinary = value[0] & 0x80 != 0
                interface.tsResolutionExponent = value[0] & 0x7F
            case 11 where value.count >= 1 && value[0] == 0:
                interface.filter = String(decoding: value.dropFirst(), as: UTF8.self)
            case 12: interface.os = String(decoding: value, as: UTF8.self)
            case 14 where value.count >= 8:
                interface.tsOffsetSeconds = Int64(bitPattern: readU64(value, 0, swapped: swapped))
            default: break
            }
        }
        if interface.tsResolutionIsBinary ? interface.tsResolutionExponent > 64 : interface.tsResolutionExponent > 19 {
            warnings.append(TraceWarning(offset: offset, message: "interface \(interface.name): if_tsresol \(interface.tsResolutionExponent) is out of range; assuming microseconds"))
            interface.tsResolutionIsBinary = false
            interface.tsResolutionExponent = 6
        }
        interfaces.append(interface)
        plainNanoseconds.append(interface.tsResolutionExponent == 9 && !interface.tsResolutionIsBinary && interface.tsOffsetSeconds == 0)
        deliverItem()
    }

    /// Maps a section-local interface id to the global index, or nil (with a warning) if unknown.
    private func globalInterface(_ id: Int, at offset: Int64) -> Int? {
        let index = sectionBase + id
        guard id >= 0, index < interfaces.count else {
            warnings.append(TraceWarning(offset: offset, message: "packet refers to interface \(id) but its section describes \(interfaces.count - sectionBase); packet skipped"))
            return nil
        }
        return index
    }

    private func readEnhancedPacket(_ body: UnsafeRawBufferPointer, at offset: Int64) -> PacketRecord? {
        guard body.count >= 20 else {
            warnings.append(TraceWarning(offset: offset, message: "Enhanced Packet Block too short (\(body.count) body bytes, expected at least 20); skipped"))
            return nil
        }
        guard let index = globalInterface(Int(readU32(body, 0, swapped: swapped)), at: offset + 8) else { return nil }
        let ticks = UInt64(readU32(body, 4, swapped: swapped)) << 32 | UInt64(readU32(body, 8, swapped: swapped))
        let captured = Int(readU32(body, 12, swapped: swapped))
        let original = Int(readU32(body, 16, swapped: swapped))
        guard captured <= body.count - 20 else {
            warnings.append(TraceWarning(offset: offset + 20, message: "Enhanced Packet Block says \(captured) captured bytes but holds \(body.count - 20); skipped"))
            return nil
        }
        var direction = PacketDirection.unknown
        let optionsStart = 20 + ((captured + 3) & ~3)
        if optionsStart < body.count {
            forEachOption(UnsafeRawBufferPointer(rebasing: body[optionsStart...]), at: offset + 8 + Int64(optionsStart)) { code, value in
                if code == 2, value.count >= 4 {
                    direction = PacketDirection(rawValue: UInt8(readU32(value, 0, swapped: swapped) & 0x3)) ?? .unknown
                }
            }
        }
        return PacketRecord(
            interface: index, timestampNs: timestamp(index, ticks, at: offset),
            originalLength: max(original, captured), direction: direction,
            data: UnsafeRawBufferPointer(rebasing: body[20..<(20 + captured)]), fileOffset: offset)
    }

    private func readSimplePacket(_ body: UnsafeRawBufferPointer, at offset: Int64) -> PacketRecord? {
        guard body.count >= 4, let index = globalInterface(0, at: offset) else { return nil }
        let original = Int(readU32(body, 0, swapped: swapped))
        var captured = min(original, body.count - 4)
        let snap = Int(interfaces[index].snapLength)
        if snap > 0 { captured = min(captured, snap) }
        // A Simple Packet Block has no timestamp: the packet gets time 0 and the analysis says so.
        return PacketRecord(
            interface: index, timestampNs: 0, originalLength: original, direction: .unknown,
            data: UnsafeRawBufferPointer(rebasing: body[4..<(4 + captured)]), fileOffset: offset)
    }

    private func readObsoletePacket(_ body: UnsafeRawBufferPointer, at offset: Int64) -> PacketRecord? {
        guard body.count >= 20,
              let index = globalInterface(Int(readU16(body, 0, swapped: swapped)), at: offset + 8) else { return nil }
        let ticks = UInt64(readU32(body, 4, swapped: swapped)) << 32 | UInt64(readU32(body, 8, swapped: swapped))
        let captured = Int(readU32(body, 12, swapped: swapped))
        let original = Int(readU32(body, 16, swapped: swapped))
        guard captured <= body.count - 20 else { return nil }
        return PacketRecord(
            interface: index, timestampNs: timestamp(index, ticks, at: offset),
            originalLength: max(original, captured), direction: .unknown,
            data: UnsafeRawBufferPointer(rebasing: body[20..<(20 + captured)]), fileOffset: offset)
    }

    /// The statistics update the interface (a netprobe trace's data ISBs carry none); netprobe's
    /// data in the options is delivered even when the interface id is wrong.
    private func readInterfaceStatistics(_ body: UnsafeRawBufferPointer, at offset: Int64) {
        guard body.count >= 12 else { return }
        let index = globalInterface(Int(readU32(body, 0, swapped: swapped)), at: offset + 8)
        forEachOption(UnsafeRawBufferPointer(rebasing: body[12...]), at: offset + 20) { code, value in
            if gather(code, value) { return }
            guard let index, value.count >= 8 else { return }
            let v = readU64(value, 0, swapped: swapped)
            switch code {
            case 4: interfaces[index].received = v
            case 5: interfaces[index].interfaceDropped = v
            case 6: interfaces[index].filterAccepted = v
            case 7: interfaces[index].osDropped = v
            case 8: interfaces[index].userDelivered = v
            default: break
            }
        }
        deliverItem()
    }
}

/// "0x1A2B3C4D" style rendering of a 32-bit value.
func hex32(_ value: UInt32) -> String {
    let hex = String(value, radix: 16, uppercase: true)
    return "0x" + String(repeating: "0", count: max(0, 8 - hex.count)) + hex
}
