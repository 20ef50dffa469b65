import NetprobeModel

/// The load generator's records in a trace: items of netprobe's data (`MetadataCarriage`; in
/// older traces pcapng Custom Blocks under the same PEN) whose payload is one block of records in
/// their binary form (`ClientRecordFormat`: the 16-byte `NPLOADTS` header, then 48-byte entries,
/// self-contained). Unlike `NetprobeBlock`'s JSON kinds, these are not decoded into values:
/// `ClientRecords.add(block:)` takes them straight into its table.
///
/// Traces written before this form carry the records as JSON `client-requests` blocks
/// (`NetprobeBlock.clientRequests`), which are still read.
public enum ClientRecordBlock {
    /// True when an item's payload (after the PEN) is a block of client records.
    public static func isClientRecords(enterpriseNumber pen: UInt32, payload: UnsafeRawBufferPointer) -> Bool {
        MetadataCarriage.isNetprobe(enterpriseNumber: pen) && ClientRecordFormat.hasMagic(payload)
    }
}

extension IPAddress {
    /// The address as the record format stores it.
    public init(_ a: ClientRecordFormat.Address) {
        self = a.isIPv6 ? IPAddress(ipv6High: a.high, low: a.low) : IPAddress(ipv4: UInt32(truncatingIfNeeded: a.low))
    }

    /// The address in the record format's terms.
    public var recordAddress: ClientRecordFormat.Address {
        ClientRecordFormat.Address(isIPv6: isIPv6, high: high, low: low)
    }
}
