import NetprobeModel

/// The compact binary form of a batch of `KernelEvent`s, as netprobe stores them (one batch per
/// pcapng custom block, or back to back in a stream). Little-endian throughout.
///
/// ```
/// batch   := header strings events
/// header  := "NPKE"  u8 version (1)  u8 flags (0)  u16 stringCount  u32 eventCount
///            u32 bodyLength (bytes of strings + events)  i64 baseTimeNs            (24 bytes)
/// strings := stringCount × (u8 length, that many bytes of UTF-8)   interface and drop-reason names
/// events  := eventCount × (varint bodyLength, body)
/// body    := u8 kind  u8 fields  [u8 fields2 when fields has 0x80]
///            svarint (timeNs - previous timeNs)  varint cpu  varint pid
///            varint tid  u64 skbaddr  then, for each bit set in `fields`, in this order:
///            0x01 interface (varint string index)   0x02 length (varint)
///            0x04 ifindex (svarint)                 0x08 returnCode (svarint)
///            0x10 dropReason (varint)               0x20 dropReasonName (varint string index)
///            0x40 targetTid (varint, 32-bit pattern)
///            then for each bit set in `fields2`:  0x01 prevState (varint)
/// ```
/// `varint` is unsigned LEB128 (at most 10 bytes), `svarint` a zigzag-coded LEB128; the first
/// event's time is relative to `baseTimeNs`, each other to the event before it (negative when the
/// events are not in time order). pid and tid are stored as their 32-bit patterns.
///
/// Room to grow: a reader skips an event of a kind it does not know, and ignores bytes after the
/// fields it knows only when `fields` has a bit it does not know; everything else that does not
/// add up is damage, reported with its byte offset (`KernelEventDecodeError`). A typical event
/// takes 20-25 bytes (an skb address is 8 of them).
public enum KernelEventBatch {
    public static let magic: [UInt8] = Array("NPKE".utf8)
    public static let version: UInt8 = 1
    public static let headerLength = 24
    /// Field bits of an event body (`fields`).
    static let hasInterface: UInt8 = 0x01, hasLength: UInt8 = 0x02, hasIfindex: UInt8 = 0x04
    static let hasReturnCode: UInt8 = 0x08, hasDropReason: UInt8 = 0x10, hasDropReasonName: UInt8 = 0x20
    static let hasTargetTid: UInt8 = 0x40
    /// `fields` bit 0x80: a second byte of field bits follows (`fields2`).
    static let hasMoreFields: UInt8 = 0x80
    static let knownFields: UInt8 = 0xFF
    /// Field bits of `fields2`.
    static let hasPrevState: UInt8 = 0x01
    static let knownFields2: UInt8 = 0x01

    /// Encodes `events` as one batch. Throws when a name is longer than 255 bytes of UTF-8, or
    /// when there are more than 65,535 distinct names or 2^32 - 1 events (split the batch).
    public static func encode(_ events: [KernelEvent]) throws(KernelEventEncodeError) -> [UInt8] {
        guard events.count <= Int(UInt32.max) else { throw .tooManyEvents(events.count) }
        var strings: [String] = []
        var index: [String: Int] = [:]
        func intern(_ s: String) throws(KernelEventEncodeError) -> Int {
            // A batch holds a handful of device names: comparing short strings beats hashing them.
            if strings.count <= 8 {
                if let i = strings.firstIndex(of: s) { return i }
            } else if let i = index[s] {
                return i
            }
            guard s.utf8.count <= 255 else { throw .nameTooLong(s) }
            guard strings.count < Int(UInt16.max) else { throw .tooManyNames }
            if strings.count == 8 {
                for (k, name) in strings.enumerated() { index[name] = k }
            }
            if strings.count >= 8 { index[s] = strings.count }
            strings.append(s)
            return strings.count - 1
        }
        let base = events.first?.timeNs ?? 0
        var body: [UInt8] = []
        body.reserveCapacity(events.count * 24)
        var scratch: [UInt8] = []
        scratch.reserveCapacity(64)
        var previous = base
        for e in events {
            scratch.removeAll(keepingCapacity: true)
            var fields: UInt8 = 0
            if e.interface != nil { fields |= hasInterface }
            if e.length != nil { fields |= hasLength }
            if e.ifindex != nil { fields |= hasIfindex }
            if e.returnCode != nil { fields |= hasReturnCode }
            if e.dropReason != nil { fields |= hasDropReason }
            if e.dropReasonName != nil { fields |= hasDropReasonName }
            if e.targetTid != nil { fields |= hasTargetTid }
            var fields2: UInt8 = 0
            if e.prevState != nil { fields2 |= hasPrevState }
            if fields2 != 0 { fields |= hasMoreFields }
            scratch.append(e.kind.rawValue)
            scratch.append(fields)
            if fields2 != 0 { scratch.append(fields2) }
            // Wrapping: any two Int64 times round-trip, however far apart.
            appendVarint(&scratch, zigzag(e.timeNs &- previous))
            previous = e.timeNs
            appendVarint(&scratch, UInt64(e.cpu))
            appendVarint(&scratch, UInt64(UInt32(bitPattern: e.pid)))
            appendVarint(&scratch, UInt64(UInt32(bitPattern: e.tid)))
            for k in 0..<8 { scratch.append(UInt8(truncatingIfNeeded: e.skbaddr >> (8 * UInt64(k)))) }
            if let s = e.interface { appendVarint(&scratch, UInt64(try intern(s))) }
            if let v = e.length { appendVarint(&scratch, UInt64(v)) }
            if let v = e.ifindex { appendVarint(&scratch, zigzag(Int64(v))) }
            if let v = e.returnCode { appendVarint(&scratch, zigzag(Int64(v))) }
            if let v = e.dropReason { appendVarint(&scratch, UInt64(v)) }
            if let s = e.dropReasonName { appendVarint(&scratch, UInt64(try intern(s))) }
            if let v = e.targetTid { appendVarint(&scratch, UInt64(UInt32(bitPattern: v))) }
            if let v = e.prevState { appendVarint(&scratch, UInt64(v)) }
            appendVarint(&body, UInt64(scratch.count))
            body.append(contentsOf: scratch)
        }
        var table: [UInt8] = []
        for s in strings {
            table.append(UInt8(s.utf8.count))
            table.append(contentsOf: s.utf8)
        }
        let bodyLength = table.count + body.count
        guard bodyLength <= Int(UInt32.max) else { throw .tooManyEvents(events.count) }
        var out: [UInt8] = magic
        out.reserveCapacity(headerLength + bodyLength)
        out.append(version)
        out.append(0)
        appendLE(&out, UInt64(strings.count), bytes: 2)
        appendLE(&out, UInt64(events.count), bytes: 4)
        appendLE(&out, UInt64(bodyLength), bytes: 4)
        appendLE(&out, UInt64(bitPattern: base), bytes: 8)
        out.append(contentsOf: table)
        out.append(contentsOf: body)
        return out
    }

    /// Decodes a whole buffer of one or more batches (the incremental decoder, fed at once).
    public static func decode(_ bytes: [UInt8]) throws(KernelEventDecodeError) -> [KernelEvent] {
        var decoder = KernelEventDecoder()
        decoder.feed(bytes)
        var out: [KernelEvent] = []
        while let e = try decoder.next() { out.append(e) }
        try decoder.finish()
        return out
    }

    @inline(__always) static func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
    @inline(__always) static func unzigzag(_ v: UInt64) -> Int64 { Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1) }

    static func appendVarint(_ out: inout [UInt8], _ value: UInt64) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    static func appendLE(_ out: inout [UInt8], _ value: UInt64, bytes: Int) {
        for k in 0..<bytes { out.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(k)))) }
    }
}

/// Why a batch could not be encoded.
public enum KernelEventEncodeError: Error, Sendable, Equatable, CustomStringConvertible {
    case nameTooLong(String)
    case tooManyNames
    case tooManyEvents(Int)

    public var description: String {
        switch self {
        case let .nameTooLong(s): "kernel events: the name \"\(s.prefix(40))...\" is longer than 255 bytes"
        case .tooManyNames: "kernel events: more than 65535 distinct names in one batch (split it)"
        case let .tooManyEvents(n): "kernel events: \(n) events do not fit one batch (split it)"
        }
    }
}

/// Damage in a stored batch of kernel events: where it starts (bytes from the start of what was
/// fed to the decoder) and what was expected there.
public struct KernelEventDecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var message: String
    public init(offset: Int, _ message: String) {
        self.offset = offset
        self.message = message
    }
    public var description: String { "kernel events: at byte offset \(offset): \(message)" }
}
