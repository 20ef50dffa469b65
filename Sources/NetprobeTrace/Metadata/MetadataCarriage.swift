import NetprobeModel

/// How netprobe's own data travels in a pcapng trace, so that every other tool sees the packets
/// and nothing else.
///
/// An item is one self-describing payload that starts with its magic: a `NetprobeBlock` (`NPRB`
/// then JSON), a block of the load generator's records (`NPLOADTS`, `ClientRecordFormat`), a batch
/// of kernel events (`NPKE`, `KernelEventBatch`). Each item goes into one pcapng block that readers
/// never turn into a frame, as custom options (draft-ietf-opsawg-pcapng, "Custom Options"): code
/// 2988 (UTF-8, may be copied) for the JSON items, 2989 (binary, may be copied) for the others; each
/// option's value is the Private Enterprise Number, then a piece of the item. An option holds at
/// most 65,531 bytes after the PEN, so a longer item continues in the options after it: netprobe's
/// custom options of one block, in their order, are one item.
///
/// The blocks:
/// - the Section Header Block carries the run description known when the capture starts;
/// - every other item is an Interface Statistics Block (ISB) of its own, written the moment the item
///   is known (a netlink sample, a note, INFO, the load generator's records, kernel events): on the
///   interface the item is about when there is one, else interface 0, stamped with the time the
///   item refers to. The spec lets ISBs come anywhere after their interface's description and any
///   number of times. A capture killed with SIGKILL keeps every item written before.
///
/// Why not Custom Blocks (0x00000BAD), where netprobe put its data before: tshark 4.0 lists each
/// one as a frame without a timestamp, so its frame numbers stopped matching tcpdump's and
/// `-z io,stat` measured the capture from 1970 (56 years). It lists neither SHB nor ISB options.
/// What other tools keep (Wireshark 4.0.17 here): editcap copies the Section Header Block's options
/// (the run description) and the ISBs before the first packet, and drops every later ISB
/// (dumpcap's own statistics too); mergecap copies the first file's Section Header Block options
/// and no ISB. An edited copy has the packets and the run description (roles, Redis address), not
/// the samples, INFO or records. Wireshark's "Capture File Properties" shows an interface's drop
/// count only when it has exactly one ISB, so it shows none for a netprobe trace: `netprobe report`
/// does.
///
/// Traces written before this carriage have their items as Custom Blocks, one item each, with the
/// same PEN: the reader takes both, and `rewritingCustomBlocks` turns an old trace into this form.
public enum MetadataCarriage {
    /// The Private Enterprise Number netprobe writes in its custom options: A PLACEHOLDER. netprobe
    /// has no PEN of its own yet; 32473 is the one IANA reserves for examples in documentation (RFC
    /// 5612), the only number that cannot be some other organisation's, and the one every trace
    /// netprobe has written carries. netprobe's items are told apart from anybody else's under it by
    /// their magic (`NPRB`, `NPLOADTS`, `NPKE`), never by the PEN alone. Anyone can register a PEN
    /// with IANA, free (https://pen.iana.org/pen/PenApplication.page); once netprobe has one, write
    /// it here and keep 32473 in `enterpriseNumbersRead`, so that older traces stay readable.
    public static let enterpriseNumber: UInt32 = 32473

    /// Every PEN netprobe has written its items under: readers accept each.
    public static let enterpriseNumbersRead: [UInt32] = [32473]

    /// True when custom data under `pen` may be netprobe's (its magic decides).
    @inline(__always)
    public static func isNetprobe(enterpriseNumber pen: UInt32) -> Bool {
        enterpriseNumbersRead.contains(pen)
    }

    /// The most of an item one option carries: 65,535 (the 16-bit option length) minus the PEN,
    /// rounded down to a multiple of 4 so that every piece but the last needs no padding.
    public static let pieceLength = 65_528

    /// The largest item: libpcap (tcpdump) refuses any block over 16 MiB ("pcapng block size
    /// 19982732 > maximum 16777216", tcpdump 4.99.3 here), and an item is one block with its
    /// option headers. Producers split larger data into several items.
    public static let maximumPayload = 15 << 20

    /// The largest item carried in the Section Header Block; a larger run description goes into an
    /// ISB (a reader loads the whole SHB before anything else).
    public static let sectionHeaderLimit = 1 << 20

    /// The Section Header Block's comment in a netprobe capture: what else the file holds, for
    /// people who open it in Wireshark (capinfos shows it as "Capture comment").
    public static let fileComment = "netprobe capture. Besides the packets, this file holds netprobe's own data "
        + "(run description, netlink samples, Redis INFO, load generator records) as pcapng custom options "
        + "(private enterprise number 32473, a placeholder) in this Section Header Block and in Interface "
        + "Statistics Blocks; `netprobe report` reads them."

    /// An item too large for one block (see `maximumPayload`).
    public struct TooLarge: Error, CustomStringConvertible {
        public var bytes: Int
        public var description: String {
            "netprobe data item of \(bytes) bytes is larger than the \(MetadataCarriage.maximumPayload) bytes one pcapng block may carry; split it"
        }
    }

    /// The custom options that carry `payload` (in the byte order of the section they go into).
    /// JSON items (`NPRB`, valid UTF-8) are cut only between characters, so that each piece is
    /// valid UTF-8 as code 2988 requires.
    public static func options(for payload: [UInt8], swapped: Bool) throws(TooLarge) -> [PcapngEncoder.Option] {
        guard payload.count <= maximumPayload else { throw TooLarge(bytes: payload.count) }
        let text = payload.starts(with: NetprobeBlock.magic) && String(validating: payload, as: UTF8.self) != nil
        let code = text ? PcapngEncoder.CustomOptionCode.utf8Copiable : PcapngEncoder.CustomOptionCode.binaryCopiable
        var options: [PcapngEncoder.Option] = []
        options.reserveCapacity(payload.count / pieceLength + 1)
        var start = 0
        repeat {
            var end = min(start + pieceLength, payload.count)
            if text && end < payload.count {
                // Back to the start of the character the cut would split (UTF-8 continuation bytes
                // are 10xxxxxx; a character is at most 4 bytes, so this moves at most 3).
                while end > start && payload[end] & 0xC0 == 0x80 { end -= 1 }
            }
            options.append(.init(custom: code, enterpriseNumber: enterpriseNumber, data: payload[start..<end], swapped: swapped))
            start = end
        } while start < payload.count
        return options
    }
}

extension PcapngEncoder {
    /// One item of netprobe's data (`MetadataCarriage`) as an Interface Statistics Block of its
    /// own: on `interface` (the one the item is about, else 0), stamped `ticks` (the time the item
    /// refers to, in that interface's units), with no statistics of its own.
    public func appendNetprobeData(to out: inout [UInt8], payload: [UInt8], interface: UInt32, ticks: UInt64) throws(MetadataCarriage.TooLarge) {
        let options = try MetadataCarriage.options(for: payload, swapped: swapped)
        appendInterfaceStatistics(to: &out, interface: interface, ticks: ticks, extra: options)
    }
}
