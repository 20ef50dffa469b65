import NetprobeModel

/// Reads batches of kernel events (`KernelEventBatch`) from bytes that arrive in pieces.
///
/// `feed` appends bytes; `next()` returns the next event, `nil` when it needs more bytes (nothing
/// of a partial event or batch header is consumed), or throws `KernelEventDecodeError` with the
/// byte offset of the damage (counted from the first byte fed). After an error the decoder stays
/// failed. At the end of the input, `finish()` throws when a batch was cut short.
public struct KernelEventDecoder {
    private var buffer: [UInt8] = []
    /// Next unread byte in `buffer`, and the input offset of `buffer[0]`.
    private var position = 0
    private var base = 0
    private var batch: Batch?
    private var failure: KernelEventDecodeError?
    /// Batches begun so far.
    public private(set) var batches = 0
    /// Events of kinds this version does not know, skipped (a newer netprobe wrote them).
    public private(set) var skippedEvents = 0

    private struct Batch {
        var start: Int
        var end: Int
        var remaining: UInt32
        var strings: [String]
        var previousTimeNs: Int64
    }

    public init() {}

    /// Input offset of the next byte to decode.
    public var offset: Int { base + position }

    /// Adds bytes to decode.
    public mutating func feed<S: Sequence<UInt8>>(_ bytes: S) {
        if position > 65_536 && position * 2 > buffer.count {
            buffer.removeFirst(position)
            base += position
            position = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next event; nil when more bytes are needed.
    public mutating func next() throws(KernelEventDecodeError) -> KernelEvent? {
        if let failure { throw failure }
        do throws(KernelEventDecodeError) {
            while true {
                if batch == nil {
                    guard try readHeader() else { return nil }
                    continue
                }
                if batch!.remaining == 0 {
                    let at = base + position
                    guard at == batch!.end else {
                        throw KernelEventDecodeError(offset: at, "\(batch!.end - at) bytes follow the last event of the batch that starts at offset \(batch!.start) (its header says where the batch ends)")
                    }
                    batch = nil
                    continue
                }
                switch try readEvent() {
                case .needMore: return nil
                case .skipped: continue
                case let .event(e): return e
                }
            }
        } catch {
            failure = error
            throw error
        }
    }

    /// Call at the end of the input: throws when it ends inside a batch.
    public mutating func finish() throws(KernelEventDecodeError) {
        if let failure { throw failure }
        let end = base + buffer.count
        if let batch {
            let e = KernelEventDecodeError(offset: end, "the input ends inside the batch that starts at offset \(batch.start): \(batch.remaining) of its events and \(batch.end - end) bytes are missing")
            failure = e
            throw e
        }
        if position < buffer.count {
            let e = KernelEventDecodeError(offset: end, "the input ends inside a batch header or string table that starts at offset \(base + position) (\(buffer.count - position) bytes of it)")
            failure = e
            throw e
        }
    }

    // MARK: - Header and strings

    /// Reads a header and its string table when all of it is here; false when more is needed.
    private mutating func readHeader() throws(KernelEventDecodeError) -> Bool {
        let start = position
        let available = buffer.count - start
        let magic = KernelEventBatch.magic
        for k in 0..<min(available, magic.count) where buffer[start + k] != magic[k] {
            throw KernelEventDecodeError(offset: base + start, "expected a kernel event batch (\"NPKE\"), found bytes \(hex(buffer[start..<start + min(available, 4)]))")
        }
        guard available >= KernelEventBatch.headerLength else { return false }
        let version = buffer[start + 4]
        guard version == KernelEventBatch.version else {
            throw KernelEventDecodeError(offset: base + start + 4, "kernel event batch version \(version); this netprobe reads version \(KernelEventBatch.version)")
        }
        guard buffer[start + 5] == 0 else {
            throw KernelEventDecodeError(offset: base + start + 5, "reserved flags byte is \(buffer[start + 5]), expected 0")
        }
        let stringCount = Int(le(start + 6, 2))
        let eventCount = UInt32(le(start + 8, 4))
        let bodyLength = Int(le(start + 12, 4))
        let baseTime = Int64(bitPattern: le(start + 16, 8))
        let bodyStart = start + KernelEventBatch.headerLength
        let batchEnd = base + bodyStart + bodyLength
        var p = bodyStart
        var strings: [String] = []
        strings.reserveCapacity(stringCount)
        for n in 0..<stringCount {
            guard p < buffer.count else { return false }
            let length = Int(buffer[p])
            guard base + p + 1 + length <= batchEnd else {
                throw KernelEventDecodeError(offset: base + p, "name \(n) of \(stringCount) (\(length) bytes) runs past the batch's end at offset \(batchEnd)")
            }
            guard p + 1 + length <= buffer.count else { return false }
            guard let s = String(validating: buffer[(p + 1)..<(p + 1 + length)], as: UTF8.self) else {
                throw KernelEventDecodeError(offset: base + p + 1, "name \(n) of the batch is not UTF-8")
            }
            strings.append(s)
            p += 1 + length
        }
        batches += 1
        position = p
        batch = Batch(start: base + start, end: batchEnd, remaining: eventCount, strings: strings, previousTimeNs: baseTime)
        return true
    }

    // MARK: - Events

    private enum EventResult { case needMore, skipped, event(KernelEvent) }

    private mutating func readEvent() throws(KernelEventDecodeError) -> EventResult {
        let b = batch!
        let start = position
        // The body's length: a varint that may still be arriving.
        var p = start
        var length: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard base + p < b.end else {
                throw KernelEventDecodeError(offset: base + start, "an event's length runs past the batch's end at offset \(b.end) (\(b.remaining) events still expected)")
            }
            guard p < buffer.count else { return .needMore }
            let byte = buffer[p]
            guard shift < 63 else { throw KernelEventDecodeError(offset: base + start, "an event's length is not a valid varint") }
            length |= UInt64(byte & 0x7F) << shift
            shift += 7
            p += 1
            if byte & 0x80 == 0 { break }
        }
        guard length >= 2 else {
            throw KernelEventDecodeError(offset: base + start, "an event of \(length) bytes: too short for its kind and fields")
        }
        guard UInt64(b.end - (base + p)) >= length else {
            throw KernelEventDecodeError(offset: base + start, "an event of \(length) bytes runs past the batch's end at offset \(b.end)")
        }
        let end = p + Int(length)
        guard end <= buffer.count else { return .needMore }

        guard let kind = KernelEventKind(rawValue: buffer[p]) else {
            position = end
            batch!.remaining -= 1
            skippedEvents += 1
            return .skipped
        }
        let fields = buffer[p + 1]
        p += 2
        var fields2: UInt8 = 0
        if fields & KernelEventBatch.hasMoreFields != 0 {
            guard p < end else { throw KernelEventDecodeError(offset: base + p, "an event ends where its second byte of field bits should be") }
            fields2 = buffer[p]
            p += 1
        }
        var reader = FieldReader(buffer: buffer, position: p, end: end, base: base)
        let delta = KernelEventBatch.unzigzag(try reader.varint("time"))
        let time = b.previousTimeNs &+ delta
        let cpu = try reader.u32("cpu")
        let pid = Int32(bitPattern: try reader.u32("pid"))
        let tid = Int32(bitPattern: try reader.u32("tid"))
        let skb = try reader.u64le("skbaddr")
        var e = KernelEvent(timeNs: time, kind: kind, cpu: cpu, pid: pid, tid: tid, skbaddr: skb)
        if fields & KernelEventBatch.hasInterface != 0 { e.interface = try reader.string("interface", b.strings) }
        if fields & KernelEventBatch.hasLength != 0 { e.length = try reader.u32("length") }
        if fields & KernelEventBatch.hasIfindex != 0 { e.ifindex = try reader.i32("ifindex") }
        if fields & KernelEventBatch.hasReturnCode != 0 { e.returnCode = try reader.i32("returnCode") }
        if fields & KernelEventBatch.hasDropReason != 0 { e.dropReason = try reader.u32("dropReason") }
        if fields & KernelEventBatch.hasDropReasonName != 0 { e.dropReasonName = try reader.string("dropReasonName", b.strings) }
        if fields & KernelEventBatch.hasTargetTid != 0 { e.targetTid = Int32(bitPattern: try reader.u32("targetTid")) }
        if fields2 & KernelEventBatch.hasPrevState != 0 { e.prevState = try reader.u32("prevState") }
        if reader.position != end && fields2 & ~KernelEventBatch.knownFields2 == 0 {
            throw KernelEventDecodeError(offset: base + reader.position, "\(end - reader.position) bytes follow the last field of a \(kind) event")
        }
        position = end
        batch!.remaining -= 1
        batch!.previousTimeNs = time
        return .event(e)
    }

    /// Reads the fields of one event body, which is all in the buffer: running out is damage.
    private struct FieldReader {
        let buffer: [UInt8]
        var position: Int
        let end: Int
        let base: Int

        mutating func varint(_ what: String) throws(KernelEventDecodeError) -> UInt64 {
            let start = position
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard position < end else {
                    throw KernelEventDecodeError(offset: base + start, "the event ends inside its \(what)")
                }
                let byte = buffer[position]
                if shift == 63 && byte > 1 || shift > 63 {
                    throw KernelEventDecodeError(offset: base + start, "the event's \(what) is not a valid 64-bit varint")
                }
                value |= UInt64(byte & 0x7F) << shift
                shift += 7
                position += 1
                if byte & 0x80 == 0 { return value }
            }
        }

        mutating func u32(_ what: String) throws(KernelEventDecodeError) -> UInt32 {
            let start = position
            let v = try varint(what)
            guard let u = UInt32(exactly: v) else {
                throw KernelEventDecodeError(offset: base + start, "the event's \(what) \(v) does not fit 32 bits")
            }
            return u
        }

        mutating func i32(_ what: String) throws(KernelEventDecodeError) -> Int32 {
            let start = position
            let v = KernelEventBatch.unzigzag(try varint(what))
            guard let i = Int32(exactly: v) else {
                throw KernelEventDecodeError(offset: base + start, "the event's \(what) \(v) does not fit 32 bits")
            }
            return i
        }

        mutating func u64le(_ what: String) throws(KernelEventDecodeError) -> UInt64 {
            guard end - position >= 8 else {
                throw KernelEventDecodeError(offset: base + position, "the event ends inside its \(what)")
            }
            var v: UInt64 = 0
            for k in 0..<8 { v |= UInt64(buffer[position + k]) << (8 * UInt64(k)) }
            position += 8
            return v
        }

        mutating func string(_ what: String, _ strings: [String]) throws(KernelEventDecodeError) -> String {
            let start = position
            let i = try varint(what)
            guard i < UInt64(strings.count) else {
                throw KernelEventDecodeError(offset: base + start, "the event's \(what) is name \(i), but the batch has \(strings.count) names")
            }
            return strings[Int(i)]
        }
    }

    private func le(_ at: Int, _ count: Int) -> UInt64 {
        var v: UInt64 = 0
        for k in 0..<count { v |= UInt64(buffer[at + k]) << (8 * UInt64(k)) }
        return v
    }

    private func hex(_ bytes: ArraySlice<UInt8>) -> String {
        bytes.map { b in
            let s = String(b, radix: 16)
            return b < 16 ? "0" + s : s
        }.joined(separator: " ")
    }
}
