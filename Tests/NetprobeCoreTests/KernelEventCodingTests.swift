import Testing
@testable import NetprobeTrace

/// The stored form of kernel events (`KernelEventBatch`, `KernelEventDecoder`): round trips on
/// every chunking, and damage reported at its byte offset.
@Suite("kernel event batches")
struct KernelEventCodingTests {
    /// Events of every kind with every optional field, times out of order, extreme values.
    static let events: [KernelEvent] = [
        KernelEvent(timeNs: 1_780_000_000_123_456_789, kind: .devStartXmit, cpu: 1, pid: 6640, tid: 6640,
                    skbaddr: 0xFFFF_8880_1234_5600, interface: "vnet0", length: 84),
        KernelEvent(timeNs: 1_780_000_000_123_556_789, kind: .copyToReader, cpu: 0, pid: 6640, tid: 6641,
                    skbaddr: 0xFFFF_8880_1234_5600, length: 84),
        KernelEvent(timeNs: 1_780_000_000_123_456_000, kind: .receiveSkbEntry, cpu: 1, pid: 6640, tid: 6640,
                    skbaddr: 0xFFFF_8880_0000_0008, interface: "virbr0", length: 66),
        KernelEvent(timeNs: 1_780_000_000_123_456_001, kind: .devXmit, cpu: 0, pid: 0, tid: 0,
                    skbaddr: 1, interface: "vnet0", length: 0, returnCode: -16),
        KernelEvent(timeNs: 1_780_000_000_123_456_002, kind: .qdiscDequeue, cpu: 63, pid: -1, tid: Int32.min,
                    skbaddr: .max, ifindex: 7),
        KernelEvent(timeNs: 1_780_000_000_123_456_003, kind: .drop, cpu: UInt32.max, pid: .max, tid: 1,
                    skbaddr: 0, dropReason: 2, dropReasonName: "NOT_SPECIFIED"),
        KernelEvent(timeNs: 1_780_000_000_123_456_004, kind: .drop, cpu: 1, pid: 1, tid: 1,
                    skbaddr: 0xDEAD_BEEF, dropReason: 999),
        KernelEvent(timeNs: 0, kind: .rxEntry, cpu: 0, pid: 1, tid: 1, skbaddr: 2, interface: "ve\u{e9}th-\u{1F600}", length: .max),
        KernelEvent(timeNs: .min, kind: .receiveSkb, cpu: 0, pid: 1, tid: 1, skbaddr: 3, interface: "virbr0", ifindex: .min, returnCode: .max),
        KernelEvent(timeNs: .max, kind: .devQueue, cpu: 0, pid: 1, tid: 1, skbaddr: 4, interface: "vnet0", length: 1500),
    ]

    /// Two batches back to back (the second one empty), then a third.
    static var stream: (bytes: [UInt8], events: [KernelEvent]) {
        let a = Array(events[0..<6]), c = Array(events[6...])
        let bytes = try! KernelEventBatch.encode(a) + KernelEventBatch.encode([]) + KernelEventBatch.encode(c)
        return (bytes, a + c)
    }

    /// Feeds `bytes` in the pieces `sizes` gives (cycling), pulling events after each piece.
    static func decode(_ bytes: [UInt8], pieces sizes: [Int]) throws(KernelEventDecodeError) -> [KernelEvent] {
        var d = KernelEventDecoder()
        var out: [KernelEvent] = []
        var at = 0, k = 0
        while at < bytes.count {
            let n = min(max(1, sizes[k % sizes.count]), bytes.count - at)
            d.feed(bytes[at..<(at + n)])
            at += n
            k += 1
            while let e = try d.next() { out.append(e) }
        }
        try d.finish()
        #expect(d.offset == bytes.count)
        return out
    }

    @Test("a batch decodes to the events that were encoded, field for field")
    func roundTrip() throws {
        for e in Self.events {
            #expect(try KernelEventBatch.decode(KernelEventBatch.encode([e])) == [e])
        }
        #expect(try KernelEventBatch.decode(KernelEventBatch.encode(Self.events)) == Self.events)
        #expect(try KernelEventBatch.decode(KernelEventBatch.encode([])) == [])
        #expect(try KernelEventBatch.decode([]) == [])
    }

    @Test("every chunking gives the same events: byte by byte, each fixed size, every split in two, shuffled sizes")
    func everyChunking() throws {
        let (bytes, expected) = Self.stream
        for size in 1...bytes.count {
            #expect(try Self.decode(bytes, pieces: [size]) == expected, "pieces of \(size)")
        }
        for cut in 1..<bytes.count {
            #expect(try Self.decode(bytes, pieces: [cut, bytes.count]) == expected, "split at \(cut)")
        }
        var rng = ChunkRandom(seed: 14)
        for _ in 0..<300 {
            let sizes = (0..<7).map { _ in Int(rng.next() % 40) + 1 }
            #expect(try Self.decode(bytes, pieces: sizes) == expected, "pieces \(sizes)")
        }
    }

    @Test("a device name and a drop reason are stored once per batch; a typical event is small")
    func compact() throws {
        let one = KernelEvent(timeNs: 1_780_000_000_000_000_000, kind: .devStartXmit, cpu: 1, pid: 6640, tid: 6640,
                              skbaddr: 0xFFFF_8880_1234_5600, interface: "vnet0", length: 84)
        var many: [KernelEvent] = []
        for k in 0..<1000 {
            var e = one
            e.timeNs += Int64(k) * 37_000
            e.skbaddr += UInt64(k % 64) * 256
            many.append(e)
        }
        let bytes = try KernelEventBatch.encode(many)
        #expect(bytes.count < KernelEventBatch.headerLength + 6 + 1000 * 23, "\(bytes.count) bytes")
        #expect(try KernelEventBatch.decode(bytes) == many)
    }

    @Test("many distinct names (past the encoder's short list) round-trip")
    func manyNames() throws {
        var events: [KernelEvent] = []
        for k in 0..<40 {
            var e = KernelEvent(timeNs: Int64(k), kind: .devQueue, cpu: 0, pid: 1, tid: 1, skbaddr: UInt64(k))
            if k % 2 == 0 {
                e.interface = "dev\(k % 17)"
            } else {
                e.kind = .drop
                e.dropReason = UInt32(k)
                e.dropReasonName = "REASON_\(k % 13)"
            }
            events.append(e)
        }
        let bytes = try KernelEventBatch.encode(events)
        #expect(Int(bytes[6]) == 17 + 13) // each distinct name stored once
        #expect(try KernelEventBatch.decode(bytes) == events)
    }

    @Test("names that do not fit are refused when encoding")
    func encodeLimits() {
        let long = String(repeating: "x", count: 256)
        let e = KernelEvent(timeNs: 0, kind: .devQueue, cpu: 0, pid: 0, tid: 0, skbaddr: 0, interface: long)
        #expect(throws: KernelEventEncodeError.nameTooLong(long)) { try KernelEventBatch.encode([e]) }
    }

    /// One event with an interface name: header (24), names (1 + 5 bytes "vnet0"), then the event:
    /// length at 30, kind 31, fields 32, time 33, cpu 34, pid 35-36, tid 37-38, skbaddr 39-46,
    /// interface index 47, length 48.
    static let single = try! KernelEventBatch.encode([
        KernelEvent(timeNs: 1000, kind: .devStartXmit, cpu: 1, pid: 200, tid: 201, skbaddr: 0x1122_3344_5566_7788,
                    interface: "vnet0", length: 84),
    ])

    static func expectDamage(_ bytes: [UInt8], at offset: Int, _ words: String, sourceLocation: SourceLocation = #_sourceLocation) {
        // Whole, and byte by byte: the same error at the same offset.
        for pieces in [[bytes.count], [1]] {
            do {
                let got = try decode(bytes, pieces: pieces)
                Issue.record("no error (pieces \(pieces)): decoded \(got.count) events", sourceLocation: sourceLocation)
            } catch {
                #expect(error.offset == offset, "\(error)", sourceLocation: sourceLocation)
                #expect(error.message.contains(words), "\(error)", sourceLocation: sourceLocation)
                #expect(error.description.contains("byte offset \(offset)"), sourceLocation: sourceLocation)
            }
        }
    }

    @Test("the layout of one event is as documented")
    func layout() {
        let b = Self.single
        #expect(Array(b[0..<4]) == Array("NPKE".utf8))
        #expect(b[4] == 1 && b[5] == 0)
        #expect(b[6] == 1 && b[7] == 0) // one name
        #expect(b[8] == 1) // one event
        #expect(Array(b[24..<30]) == [5] + Array("vnet0".utf8))
        #expect(b[31] == KernelEventKind.devStartXmit.rawValue)
        #expect(b[32] == 0x03) // interface + length
        #expect(b[33] == 0) // time delta from the base time
        #expect(Array(b[39..<47]) == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        #expect(b[47] == 0 && b[48] == 84)
        #expect(b.count == 49 && Int(b[30]) == 49 - 31)
    }

    @Test("damage is reported with its byte offset")
    func damage() {
        var b = Self.single
        b[0] = UInt8(ascii: "X")
        Self.expectDamage(b, at: 0, "expected a kernel event batch")

        Self.expectDamage(Self.single + [0x4E, 0x50, 0x4B, 0x46], at: Self.single.count, "expected a kernel event batch")

        b = Self.single
        b[4] = 2
        Self.expectDamage(b, at: 4, "version 2")

        b = Self.single
        b[5] = 1
        Self.expectDamage(b, at: 5, "reserved flags")

        b = Self.single
        b[47] = 3 // interface: name 3 of 1
        Self.expectDamage(b, at: 47, "name 3, but the batch has 1 names")

        b = Self.single
        b[30] = 0x7F // event length beyond the batch
        Self.expectDamage(b, at: 30, "runs past the batch's end")

        b = Self.single
        b[30] = 1
        Self.expectDamage(b, at: 30, "too short")

        b = Self.single
        b[30] -= 9 // the event ends inside its skbaddr
        Self.expectDamage(b, at: 39, "inside its skbaddr")

        b = Self.single
        b[12] += 1 // the header promises one byte more than the events take
        b.append(0)
        Self.expectDamage(b, at: 49, "1 bytes follow the last event")

        b = Self.single
        b[24] = 200 // the name runs past the batch's end
        Self.expectDamage(b, at: 24, "runs past the batch's end")

        b = Self.single
        b[25] = 0xFF // not UTF-8
        Self.expectDamage(b, at: 25, "not UTF-8")

        b = Self.single
        b[34] = 0x80 // the cpu's varint swallows the pid's first byte: every field after it shifts by one
        Self.expectDamage(b, at: 49, "ends inside its interface")

        // A varint of eleven bytes.
        var e = Array(Self.single[0..<33])
        e += [UInt8](repeating: 0xFF, count: 10) + [0x01]
        e += Array(Self.single[34...])
        e[30] += 10
        e[12] += 10
        Self.expectDamage(e, at: 33, "not a valid 64-bit varint")
    }

    @Test("input that stops inside a batch is an error at its end, wherever it stops")
    func truncated() throws {
        let (bytes, _) = Self.stream
        // Where batches end, the input is complete.
        var ends: Set<Int> = [0]
        let first = try KernelEventBatch.encode(Array(Self.events[0..<6])).count
        ends.insert(first)
        ends.insert(first + KernelEventBatch.headerLength)
        ends.insert(bytes.count)
        for cut in 0...bytes.count {
            let part = Array(bytes[0..<cut])
            do {
                _ = try Self.decode(part, pieces: [part.count])
                #expect(ends.contains(cut), "a cut at \(cut) went unnoticed")
            } catch {
                #expect(!ends.contains(cut))
                #expect(error.offset == cut, "\(error)")
                #expect(error.message.contains("ends inside"), "\(error)")
            }
        }
    }

    @Test("events of a kind this version does not know are skipped; unknown field bits allow trailing bytes")
    func growth() throws {
        var b = Self.single + Self.single
        b[31] = 200
        var d = KernelEventDecoder()
        d.feed(b)
        var got: [KernelEvent] = []
        while let e = try d.next() { got.append(e) }
        try d.finish()
        #expect(got.count == 1 && d.skippedEvents == 1 && d.batches == 2)

        b = Self.single
        b[32] |= 0x80 // a second byte of field bits ...
        b.insert(0x02, at: 33) // ... with a field this version does not know ...
        b.append(0xEE) // ... whose byte follows the known ones
        b[30] += 2
        b[12] += 2
        #expect(try KernelEventBatch.decode(b) == KernelEventBatch.decode(Self.single))
    }

    @Test("the scheduler's events round-trip: target thread, and prev_state in the second byte of field bits")
    func schedulerEvents() throws {
        let events = [
            KernelEvent(timeNs: 5_000, kind: .schedSwitch, cpu: 1, pid: 300, tid: 301, skbaddr: 0, targetTid: 0, prevState: 0x4),
            KernelEvent(timeNs: 6_000, kind: .schedWakeup, cpu: 0, pid: 0, tid: 0, skbaddr: 0, targetTid: 301),
            KernelEvent(timeNs: 7_000, kind: .schedSwitch, cpu: 0, pid: 0, tid: 0, skbaddr: 0, targetTid: 301, prevState: 0),
            KernelEvent(timeNs: 8_000, kind: .schedSwitch, cpu: 0, pid: 300, tid: 301, skbaddr: 0, targetTid: -1, prevState: 0x8000_0001),
        ]
        #expect(try KernelEventBatch.decode(KernelEventBatch.encode(events)) == events)
        // A second field byte the event's length leaves no room for is damage, not a guess.
        var b = try KernelEventBatch.encode([KernelEvent(timeNs: 1, kind: .schedWakeup, cpu: 0, pid: 1, tid: 1, skbaddr: 0)])
        #expect(b[24] == 14 && b[26] == 0) // length 14, no field bits
        b[26] = 0x80
        b[24] = 2
        b[12] = 3
        b.removeLast(12)
        Self.expectDamage(b, at: 27, "second byte of field bits")
    }

    @Test("after an error the decoder stays failed")
    func sticky() {
        var b = Self.single
        b[47] = 9
        var d = KernelEventDecoder()
        d.feed(b)
        #expect(throws: KernelEventDecodeError.self) { try d.next() }
        d.feed(Self.single)
        #expect(throws: KernelEventDecodeError.self) { try d.next() }
        #expect(throws: KernelEventDecodeError.self) { try d.finish() }
    }
}

/// A small deterministic generator for the shuffled chunkings.
private struct ChunkRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
