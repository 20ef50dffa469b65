import Foundation
import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

/// `report` reads traces on a thread of its own (ReadAhead): the analysis must see exactly what
/// the reader gives, in order, then the same end or error.
@Suite("read-ahead thread")
struct ReadAheadTests {
    typealias Seen = (interface: Int, ns: Int64, length: Int, offset: Int64, bytes: [UInt8])

    static func drain(_ source: some PacketSource) -> ([Seen], TraceError?) {
        var out: [Seen] = []
        do {
            while let p = try source.next() {
                out.append((p.interface, p.timestampNs, p.originalLength, p.fileOffset, Array(p.data)))
            }
        } catch let e as TraceError {
            return (out, e)
        } catch {
            Issue.record("unexpected \(error)")
        }
        return (out, nil)
    }

    static func same(_ a: [Seen], _ b: [Seen]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy {
            $0.interface == $1.interface && $0.ns == $1.ns && $0.length == $1.length && $0.offset == $1.offset && $0.bytes == $1.bytes
        }
    }

    /// A pcapng of many small packets on two interfaces, a few larger than a read-ahead arena.
    static func synthetic() -> [UInt8] {
        let e = PcapngEncoder()
        var out: [UInt8] = []
        e.appendSectionHeader(to: &out)
        e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 0, name: "virbr0")
        e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 0, name: "vnet0")
        for i in 0..<30_000 {
            let size = i % 9_973 == 5 ? ReadAhead.arenaBytes + 4_321 : 60 + i % 200
            let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
            data.withUnsafeBytes {
                e.appendEnhancedPacket(to: &out, interface: UInt32(i % 2), ticks: UInt64(1_000_000 + i), data: $0, originalLength: size)
            }
        }
        return out
    }

    @Test("the same packets in the same order: real traces and one with packets larger than an arena")
    func samePackets() throws {
        var files: [(String, [UInt8])] = [("synthetic", Self.synthetic())]
        for name in ["bridge-tap-nano.pcap", "two-iface-dumpcap.pcapng", "loopback-pipelined.pcap"] {
            files.append((name, Array(try Data(contentsOf: URL(fileURLWithPath: "\(tracesDirectory)/\(name)")))))
        }
        for (name, bytes) in files {
            let (direct, e1) = Self.drain(try TraceReader(bytes: bytes, name: name))
            let plain = try TraceReader(bytes: bytes, name: name)
            let ahead = ReadAhead(plain)
            let (threaded, e2) = Self.drain(ahead)
            #expect(direct.count > 1000, "\(name)")
            #expect(Self.same(direct, threaded), "\(name)")
            #expect(e1 == nil && e2 == nil)
            #expect(ahead.interfaces.map(\.name) == plain.interfaces.map(\.name))
            #expect(ahead.interfaces.map(\.dropped) == plain.interfaces.map(\.dropped))
            #expect(try ahead.next() == nil) // stays at the end
        }
    }

    @Test("damage after good packets: the packets before it, then the reader's error")
    func damage() throws {
        var bytes = Self.synthetic()
        bytes.removeLast(37) // cut the last block
        let (direct, e1) = Self.drain(try TraceReader(bytes: bytes, name: "cut"))
        let ahead = ReadAhead(try TraceReader(bytes: bytes, name: "cut"))
        let (threaded, e2) = Self.drain(ahead)
        #expect(Self.same(direct, threaded))
        let w1 = try TraceReader(bytes: bytes, name: "cut")
        _ = Self.drain(w1)
        #expect(ahead.warnings.map(\.message) == w1.warnings.map(\.message))
        #expect(e1 != nil || !w1.warnings.isEmpty)
        #expect(e1?.description == e2?.description)
    }

    @Test("stopping early ends the thread")
    func stopEarly() throws {
        let ahead = ReadAhead(try TraceReader(bytes: Self.synthetic(), name: "s"))
        for _ in 0..<10 { _ = try ahead.next() }
        ahead.finish() // the reader thread is blocked on a full queue: it must still end
        #expect(try ahead.next() == nil)
    }

    @Test("the queue between the threads: everything arrives in order; after close it refuses and ends empty")
    func boundedQueue() {
        let q = BoundedQueue<Int>(capacity: 3)
        final class Seen: @unchecked Sendable { var values: [Int] = [] }
        let seen = Seen()
        let consumer = startThread {
            while let v = q.receive() {
                seen.values.append(v)
                if v % 1000 == 0 { usleep(1000) } // let the producer fill the queue up
            }
        }
        #expect(consumer != nil)
        for v in 0..<20_000 { #expect(q.send(v)) }
        q.close()
        if let consumer { pthread_join(consumer, nil) }
        #expect(seen.values == Array(0..<20_000))
        #expect(q.send(1) == false)
        #expect(q.receive() == nil)
    }
}
