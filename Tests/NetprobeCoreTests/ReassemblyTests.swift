import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

@Suite("TCP stream reassembly")
struct ReassemblyTests {
    enum Piece: Equatable { case data([UInt8]), missing(Int, Bool) }

    struct Harness {
        var r: StreamReassembler
        let budget: ReassemblyBudget
        var out: [Piece] = []
        init(perStream: Int = 1 << 20, budget: Int = 1 << 20, hold: Int64 = 2_000_000_000) {
            r = StreamReassembler(perStreamLimit: perStream, holdTimeNs: hold)
            self.budget = ReassemblyBudget(limit: budget)
        }
        mutating func seg(_ seq: UInt32, _ text: String, syn: Bool = false, t: Int64 = 0, wire: Int? = nil) {
            let bytes = Array(text.utf8)
            var got: [Piece] = []
            bytes.withUnsafeBytes { raw in
                r.accept(sequence: seq, syn: syn, payload: raw, wireLength: wire ?? bytes.count, timestampNs: t, budget: budget) { chunk in
                    switch chunk {
                    case let .data(b, _, _, _): got.append(.data(Array(b)))
                    case let .missing(n, _, _, cut): got.append(.missing(n, cut))
                    }
                }
            }
            out += got
        }
        mutating func finish() {
            var got: [Piece] = []
            r.finish(budget: budget) { chunk in
                if case let .missing(n, _, _, cut) = chunk { got.append(.missing(n, cut)) }
                if case let .data(b, _, _, _) = chunk { got.append(.data(Array(b))) }
            }
            out += got
        }
        var text: String {
            out.map { p in
                switch p {
                case let .data(b): String(decoding: b, as: UTF8.self)
                case let .missing(n, cut): "<\(cut ? "cut" : "gap") \(n)>"
                }
            }.joined()
        }
    }

    @Test("in order, out of order, retransmitted and overlapping segments give the stream once")
    func reorder() {
        var h = Harness()
        h.seg(999, "", syn: true)
        h.seg(1000, "abc")
        h.seg(1006, "ghi") // ahead of a hole
        h.seg(1003, "def") // fills it
        h.seg(1003, "def") // retransmission
        h.seg(1007, "hijk") // overlaps the end
        #expect(h.text == "abcdefghijk")
        #expect(h.r.counters.outOfOrderSegments == 1)
        #expect(h.r.counters.retransmittedSegments == 2)
        #expect(h.budget.used == 0)
    }

    @Test("sequence numbers wrap around 2^32")
    func wrap() {
        var h = Harness()
        h.seg(UInt32.max - 2, "abc")
        h.seg(UInt32.max &+ 4, "ghi") // wraps: 0x...ff + 4 = 3
        h.seg(0, "def")
        #expect(h.text == "abcdefghi")
    }

    @Test("a hole that never fills is a gap once the hold time passes (capture time)")
    func holeTimeout() {
        var h = Harness(hold: 1_000)
        h.seg(1, "ab", t: 0)
        h.seg(5, "ef", t: 10)
        h.seg(7, "gh", t: 5_000)
        #expect(h.text == "ab<gap 2>efgh")
        #expect(h.r.counters.gaps == 1)
        #expect(h.r.counters.gapBytes == 2)
    }

    @Test("per-stream and global caps bound what is held")
    func caps() {
        var h = Harness(perStream: 4, budget: 1 << 20)
        h.seg(1, "ab")
        h.seg(10, "xyz") // held: 3 bytes
        h.seg(20, "12345") // would exceed 4: holes before it are given up
        #expect(h.text == "ab<gap 7>xyz<gap 7>12345")
        #expect(h.r.heldByteCount == 0)
        var g = Harness(perStream: 1 << 20, budget: 2)
        g.seg(1, "ab")
        g.seg(5, "zzz")
        #expect(g.text == "ab<gap 2>zzz")
        #expect(g.budget.used == 0)
    }

    @Test("endless out-of-order segments keep memory under the cap")
    func hostileFlow() {
        var h = Harness(perStream: 64 * 1024, budget: 1 << 20)
        h.seg(1, "a")
        for i in 0..<10_000 {
            h.seg(UInt32(100 + i * 200), String(repeating: "x", count: 100))
            #expect(h.r.heldByteCount <= 64 * 1024)
        }
        #expect(h.budget.peak <= 64 * 1024)
    }

    @Test("bytes the snapshot length cut are reported as such")
    func snaplen() {
        var h = Harness()
        h.seg(1, "abc", wire: 10)
        h.seg(11, "d")
        #expect(h.text == "abc<cut 7>d")
        #expect(h.r.counters.snaplenCutBytes == 7)
    }

    @Test("finish delivers what waited behind a hole")
    func finish() {
        var h = Harness()
        h.seg(1, "ab")
        h.seg(6, "fg")
        h.finish()
        #expect(h.text == "ab<gap 3>fg")
    }
}
