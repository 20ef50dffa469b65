import NetprobeModel
/// Signed distance from `b` to `a` in 32-bit sequence space (RFC 9293 arithmetic): positive when
/// `a` is after `b`, correct across wrap-around for distances under 2^31.
@inline(__always)
func seqDistance(_ a: UInt32, _ b: UInt32) -> Int64 { Int64(Int32(bitPattern: a &- b)) }

/// What reassembly hands to the protocol decoder: bytes in stream order, or a run of bytes that
/// will never be seen (lost before this vantage point, or cut off by the snapshot length).
public enum StreamChunk {
    /// `bytes` start at sequence number `sequence` and were captured at `timestampNs` in a
    /// segment whose acknowledgement number was `acknowledgement` (what the sender had received
    /// of the other direction by then: how netprobe knows a reply cannot answer a later request).
    case data(UnsafeRawBufferPointer, sequence: UInt32, timestampNs: Int64, acknowledgement: UInt32 = 0)
    /// `count` bytes starting at `sequence` are missing; `cutBySnaplen` tells the snapshot length
    /// (not loss) is why.
    case missing(count: Int, sequence: UInt32, timestampNs: Int64, cutBySnaplen: Bool)
}

/// A global budget of bytes held out of order, shared by every stream of an analysis.
public final class ReassemblyBudget {
    public let limit: Int
    public internal(set) var used = 0
    public internal(set) var peak = 0
    public init(limit: Int = 64 << 20) { self.limit = limit }
}

/// Counters of what reassembly saw in one direction of one connection.
public struct ReassemblyCounters: Sendable, Codable, Equatable {
    /// Segments that carried only bytes already delivered.
    public var retransmittedSegments = 0
    /// Segments that arrived ahead of a hole and waited.
    public var outOfOrderSegments = 0
    /// Holes given up on (bytes never seen at this vantage point).
    public var gaps = 0
    public var gapBytes = 0
    /// Bytes the snapshot length cut off (on the wire, not in the file).
    public var snaplenCutBytes = 0

    public init() {}

    public static func += (a: inout ReassemblyCounters, b: ReassemblyCounters) {
        a.retransmittedSegments += b.retransmittedSegments
        a.outOfOrderSegments += b.outOfOrderSegments
        a.gaps += b.gaps
        a.gapBytes += b.gapBytes
        a.snaplenCutBytes += b.snaplenCutBytes
    }
}

/// Bounded streaming reassembly of one TCP direction.
///
/// In-order bytes pass straight through without copying. Bytes ahead of a hole are copied and
/// held, under a per-stream cap and the shared `ReassemblyBudget`, and for at most `holdTimeNs`
/// of capture time; past either limit the hole is declared a gap and delivery goes on after it.
public struct StreamReassembler {
    private struct Held {
        var sequence: UInt32
        var bytes: [UInt8]
        var wireLength: Int
        var timestampNs: Int64
        var acknowledgement: UInt32
    }

    /// The next sequence number expected; nil until the first segment.
    public private(set) var nextSequence: UInt32?
    /// True when the stream was first seen without its SYN (the capture joined mid-connection).
    public private(set) var joinedMidStream = false
    public private(set) var counters = ReassemblyCounters()
    private var held: [Held] = []
    private var heldBytes = 0
    let perStreamLimit: Int
    let holdTimeNs: Int64

    public init(perStreamLimit: Int = 1 << 20, holdTimeNs: Int64 = 2_000_000_000) {
        self.perStreamLimit = perStreamLimit
        self.holdTimeNs = holdTimeNs
    }

    /// Bytes currently held out of order.
    public var heldByteCount: Int { heldBytes }

    /// The usual segment in one step: the next bytes in order, nothing held, nothing cut by the
    /// snapshot length. Returns true when that is the case, having moved past the segment: the
    /// caller hands its payload on as one chunk (exactly what `accept` would deliver). Returns false,
    /// changing nothing, for every other segment: the caller uses `accept`.
    @inline(__always)
    public mutating func takeInOrder(sequence: UInt32, syn: Bool, captured: Int, wireLength: Int) -> Bool {
        guard !syn, wireLength > 0, captured == wireLength, held.isEmpty, let next = nextSequence, next == sequence else { return false }
        nextSequence = sequence &+ UInt32(truncatingIfNeeded: wireLength)
        return true
    }

    /// Takes one segment of this direction and delivers what became contiguous.
    public mutating func accept(sequence: UInt32, acknowledgement: UInt32 = 0, syn: Bool, payload: UnsafeRawBufferPointer,
                                wireLength: Int, timestampNs: Int64, budget: ReassemblyBudget,
                                deliver: (StreamChunk) -> Void) {
        let start = syn ? sequence &+ 1 : sequence
        if nextSequence == nil {
            nextSequence = start
            joinedMidStream = !syn
        }
        guard wireLength > 0 else { return }
        // Give up on an old hole before looking at the new segment.
        if let first = held.first, timestampNs - first.timestampNs > holdTimeNs {
            flushHole(budget: budget, deliver: deliver)
        }
        var distance = seqDistance(start, nextSequence!)
        if distance > 0 {
            counters.outOfOrderSegments += 1
            if heldBytes + payload.count > perStreamLimit || budget.used + payload.count > budget.limit {
                // No room to wait: every hole before this segment is lost.
                while let next = nextSequence, seqDistance(start, next) > 0 {
                    flushHole(budget: budget, deliver: deliver, upTo: start, timestampNs: timestampNs)
                }
                distance = seqDistance(start, nextSequence!)
            }
        }
        if distance <= 0 {
            let overlap = Int(-distance)
            if overlap >= wireLength {
                counters.retransmittedSegments += 1
                return
            }
            if overlap > 0 { counters.retransmittedSegments += 1 }
            emit(payload, wireLength: wireLength, from: overlap, start: start, timestampNs: timestampNs,
                 acknowledgement: acknowledgement, deliver: deliver)
            drainHeld(budget: budget, deliver: deliver)
            return
        }
        // Ahead of a hole: hold a copy until the hole fills, the limits are reached or time passes.
        let size = payload.count
        let insertAt = held.firstIndex { seqDistance($0.sequence, start) > 0 } ?? held.count
        held.insert(Held(sequence: start, bytes: Array(payload), wireLength: wireLength, timestampNs: timestampNs,
                         acknowledgement: acknowledgement), at: insertAt)
        heldBytes += size
        budget.used += size
        budget.peak = max(budget.peak, budget.used)
    }

    /// Ends the stream (FIN, RST or end of trace): whatever waits behind a hole is delivered after
    /// a gap.
    public mutating func finish(budget: ReassemblyBudget, deliver: (StreamChunk) -> Void) {
        while !held.isEmpty { flushHole(budget: budget, deliver: deliver) }
    }

    /// Delivers `payload[from...]`; the part of the wire length beyond the captured bytes is
    /// reported as cut by the snapshot length.
    private mutating func emit(_ payload: UnsafeRawBufferPointer, wireLength: Int, from: Int, start: UInt32,
                               timestampNs: Int64, acknowledgement: UInt32, deliver: (StreamChunk) -> Void) {
        let sequence = start &+ UInt32(truncatingIfNeeded: from)
        if from < payload.count {
            deliver(.data(UnsafeRawBufferPointer(rebasing: payload[from...]), sequence: sequence, timestampNs: timestampNs,
                          acknowledgement: acknowledgement))
        }
        let cutFrom = max(from, payload.count)
        if wireLength > cutFrom {
            counters.snaplenCutBytes += wireLength - cutFrom
            deliver(.missing(count: wireLength - cutFrom, sequence: start &+ UInt32(truncatingIfNeeded: cutFrom),
                             timestampNs: timestampNs, cutBySnaplen: true))
        }
        nextSequence = start &+ UInt32(truncatingIfNeeded: wireLength)
    }

    /// Delivers held segments that have become contiguous.
    private mutating func drainHeld(budget: ReassemblyBudget, deliver: (StreamChunk) -> Void) {
        while let first = held.first, let next = nextSequence, seqDistance(first.sequence, next) <= 0 {
            held.removeFirst()
            heldBytes -= first.bytes.count
            budget.used -= first.bytes.count
            let overlap = Int(-seqDistance(first.sequence, next))
            if overlap >= first.wireLength {
                counters.retransmittedSegments += 1
                continue
            }
            first.bytes.withUnsafeBytes { raw in
                emit(raw, wireLength: first.wireLength, from: overlap, start: first.sequence,
                     timestampNs: first.timestampNs, acknowledgement: first.acknowledgement, deliver: deliver)
            }
        }
    }

    /// Declares the hole before the first held segment (or before `upTo`, whichever comes first)
    /// lost, and moves past it.
    private mutating func flushHole(budget: ReassemblyBudget, deliver: (StreamChunk) -> Void,
                                    upTo: UInt32? = nil, timestampNs: Int64? = nil) {
        guard let next = nextSequence else { return }
        var end: UInt32
        var stamp: Int64
        if let first = held.first {
            end = first.sequence
            stamp = first.timestampNs
            if let upTo, seqDistance(upTo, end) < 0 {
                end = upTo
                stamp = timestampNs ?? stamp
            }
        } else if let upTo {
            end = upTo
            stamp = timestampNs ?? 0
        } else {
            return
        }
        let missing = seqDistance(end, next)
        if missing > 0 {
            counters.gaps += 1
            counters.gapBytes += Int(missing)
            deliver(.missing(count: Int(missing), sequence: next, timestampNs: stamp, cutBySnaplen: false))
            nextSequence = end
        }
        drainHeld(budget: budget, deliver: deliver)
    }
}
