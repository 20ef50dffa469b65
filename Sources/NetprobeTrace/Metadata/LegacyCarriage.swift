import NetprobeModel

extension MetadataCarriage {
    /// A trace netprobe wrote before this carriage, with each of its Custom Blocks under
    /// netprobe's PEN turned into an Interface Statistics Block on interface 0 carrying the same
    /// item (`MetadataCarriage`); every other block is copied byte for byte, in the same place.
    /// tshark then lists the packets alone, and netprobe reads the same items in the same order.
    ///
    /// Each ISB is stamped with the time its item names (a netlink sample's, INFO's, the run's
    /// start), else with the packet before it (netprobe's interfaces count nanoseconds). A Custom
    /// Block before any interface is described has no interface to go to: it is kept as it is.
    /// Throws a `TraceError` where the file is not whole pcapng blocks.
    public static func rewritingCustomBlocks(_ bytes: [UInt8], name: String = "(memory)") throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 16)
        try bytes.withUnsafeBytes { raw in
            var swapped = false
            var sectionInterfaces = 0
            var lastTicks: UInt64 = 0
            var i = 0
            while i < raw.count {
                guard raw.count - i >= 12 else {
                    throw TraceError(file: name, offset: Int64(i), "expected a pcapng block, the file ends after \(raw.count - i) bytes")
                }
                let nativeType = raw.loadUnaligned(fromByteOffset: i, as: UInt32.self)
                if nativeType == 0x0A0D_0D0A {
                    let magic = raw.loadUnaligned(fromByteOffset: i + 8, as: UInt32.self)
                    guard magic == 0x1A2B_3C4D || magic.byteSwapped == 0x1A2B_3C4D else {
                        throw TraceError(file: name, offset: Int64(i + 8), "expected the byte-order magic 0x1A2B3C4D, found \(hex32(magic))")
                    }
                    swapped = magic != 0x1A2B_3C4D
                    sectionInterfaces = 0
                } else if i == 0 {
                    throw TraceError(file: name, offset: 0, "expected a pcapng Section Header Block (type 0x0A0D0D0A) first")
                }
                let type = swapped ? nativeType.byteSwapped : nativeType
                let length = Int(readU32(raw, i + 4, swapped: swapped))
                guard length >= 12, length % 4 == 0, length <= raw.count - i else {
                    throw TraceError(file: name, offset: Int64(i + 4),
                                     "expected a whole block (a length that is a multiple of 4, at least 12 and within the file), found \(length)")
                }
                switch type {
                case 0x0000_0001:
                    sectionInterfaces += 1
                case 0x0000_0006 where length >= 28:
                    lastTicks = UInt64(readU32(raw, i + 12, swapped: swapped)) << 32 | UInt64(readU32(raw, i + 16, swapped: swapped))
                case 0x0000_0BAD where length >= 16, 0x4000_0BAD where length >= 16:
                    let pen = readU32(raw, i + 8, swapped: swapped)
                    if isNetprobe(enterpriseNumber: pen) && sectionInterfaces > 0 {
                        var payload = Array(UnsafeRawBufferPointer(rebasing: raw[(i + 12)..<(i + length - 4)]))
                        var ticks = lastTicks
                        if payload.starts(with: NetprobeBlock.magic) {
                            // A Custom Block pads its data with zeros; JSON never ends in one.
                            while payload.last == 0 { payload.removeLast() }
                            if let t = NetprobeBlock.decode(enterpriseNumber: pen, payload: payload)?.timeNs, t >= 0 { ticks = UInt64(t) }
                        }
                        try PcapngEncoder(swapped: swapped).appendNetprobeData(to: &out, payload: payload, interface: 0, ticks: ticks)
                        i += length
                        continue
                    }
                default:
                    break
                }
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[i..<(i + length)]))
                i += length
            }
        }
        return out
    }
}
