import NetprobeModel
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a trace on a thread of its own, a few batches ahead of the analysis.
///
/// `report` spends about a sixth of its main thread's time reading and parsing the file; here
/// that work runs on the second CPU (beside the join thread) while the analysis decodes the
/// packets already read. The reader thread copies each packet into a batch (a 1 MiB arena and a
/// list of records); at most `maximumQueued` batches wait, so memory stays bounded. The analysis
/// sees exactly the packets, in the same order, that `inner` gives, then the same end or error.
/// While reading goes on, `interfaces` is a snapshot taken with the batch the analysis is in (it
/// holds at least every interface its packets refer to); once the end was handed out, the thread
/// has finished and `interfaces` and `warnings` are `inner`'s own.
package final class ReadAhead: PacketSource, @unchecked Sendable {
    static let arenaBytes = 1 << 20
    static let maximumQueued = 4

    private struct Record {
        var interface: Int
        var timestampNs: Int64
        var originalLength: Int
        var direction: PacketDirection
        var start: Int
        var count: Int
        var fileOffset: Int64
    }

    private final class Batch {
        var arena: UnsafeMutableRawPointer
        var capacity: Int
        var used = 0
        var records: [Record] = []
        var interfaces: [TraceInterface] = []
        var end = false
        var error: TraceError?

        init(capacity: Int) {
            self.capacity = capacity
            arena = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
            records.reserveCapacity(8192)
        }
        deinit { arena.deallocate() }

        func reset() {
            used = 0
            records.removeAll(keepingCapacity: true)
            end = false
            error = nil
        }

        func fits(_ bytes: Int) -> Bool { used + bytes <= capacity }
        func grow(to bytes: Int) {
            arena.deallocate()
            capacity = bytes
            arena = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        }
    }

    private let inner: any PacketSource
    /// Batches read and waiting for the analysis; emptied batches going back to the reader.
    private let full = BoundedQueue<Batch>(capacity: maximumQueued)
    private let free = BoundedQueue<Batch>(capacity: maximumQueued + 1)
    private var thread: pthread_t?
    // The analysis thread's own.
    private var current: Batch?
    private var cursor = 0
    /// No thread could be started: `next()` reads `inner` itself.
    private var direct = false

    package init(_ inner: any PacketSource) {
        self.inner = inner
        for _ in 0..<(Self.maximumQueued + 1) { free.send(Batch(capacity: Self.arenaBytes)) }
        // The thread holds `self` until it ends.
        thread = startThread { self.run() }
        direct = thread == nil
    }

    package var interfaces: [TraceInterface] { thread == nil ? inner.interfaces : current?.interfaces ?? [] }
    package var warnings: [TraceWarning] { thread == nil ? inner.warnings : [] }

    package func next() throws -> PacketRecord? {
        guard thread != nil else { return direct ? try inner.next() : nil }
        while true {
            if let b = current, cursor < b.records.count {
                let r = b.records[cursor]
                cursor += 1
                return PacketRecord(interface: r.interface, timestampNs: r.timestampNs, originalLength: r.originalLength,
                                    direction: r.direction, data: UnsafeRawBufferPointer(start: b.arena + r.start, count: r.count),
                                    fileOffset: r.fileOffset)
            }
            if let b = current, b.end {
                let error = b.error
                finish()
                if let error { throw error }
                return nil
            }
            // Hand back the batch the analysis has finished with and take the next full one (the
            // reader always ends with a batch marked `end`, so this one comes).
            if let done = current {
                done.reset()
                free.send(done)
            }
            current = full.receive()
            cursor = 0
        }
    }

    /// Stops the reader thread (if it is still reading) and waits for it. After this, `interfaces`,
    /// `warnings` and anything else of `inner` are safe to read. Called by `next()` at the end;
    /// call it when stopping early.
    package func finish() {
        guard let t = thread else { return }
        full.close()
        free.close()
        pthread_join(t, nil)
        thread = nil // `inner` was read to its end (or stopped): next() returns nil from now on
        current = nil
    }

    /// The reader thread: fills free batches from `inner` until its end, its error or `finish()`.
    private func run() {
        guard var b = free.receive() else { return }
        while true {
            let packet: PacketRecord?
            do {
                packet = try inner.next()
            } catch {
                b.error = error as? TraceError ?? TraceError(file: "?", offset: 0, "unexpected error: \(error)")
                packet = nil
            }
            guard let p = packet else {
                b.end = true
                b.interfaces = inner.interfaces
                full.send(b)
                return
            }
            let n = p.data.count
            if !b.fits(n) {
                if !b.records.isEmpty {
                    // Full: hand it over; this packet starts the next batch.
                    b.interfaces = inner.interfaces
                    guard full.send(b), let next = free.receive() else { return }
                    b = next
                }
                if !b.fits(n) { b.grow(to: n) } // one packet larger than an arena
            }
            append(p, to: b)
        }
    }

    private func append(_ p: PacketRecord, to b: Batch) {
        if let base = p.data.baseAddress, p.data.count > 0 {
            (b.arena + b.used).copyMemory(from: base, byteCount: p.data.count)
        }
        b.records.append(Record(interface: p.interface, timestampNs: p.timestampNs, originalLength: p.originalLength,
                                direction: p.direction, start: b.used, count: p.data.count, fileOffset: p.fileOffset))
        b.used += p.data.count
    }
}
