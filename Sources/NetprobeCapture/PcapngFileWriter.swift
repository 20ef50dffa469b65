import Glibc
import NetprobeCore
import NetprobeSystem

/// Appends pcapng blocks to a file through a buffer, writing only whole blocks.
///
/// The buffer is flushed when it passes `flushThreshold`, when `flushIfDue()` finds the oldest
/// unwritten block older than `flushInterval`, and on `close()`; each flush writes whole blocks, so
/// a file cut at any moment is valid up to its last complete block, and a capture killed with
/// SIGKILL loses at most the last `flushInterval` (or `flushThreshold` bytes) of what it took. A
/// failed write (disk full) truncates the file back to the last block boundary that reached the
/// disk and reports the error; the file stays readable.
public final class PcapngFileWriter {
    public let path: String
    private let file: OutputFile
    private var fd: Int32 { file.descriptor }
    public let encoder = PcapngEncoder()
    private var buffer: [UInt8] = []
    /// Byte offsets (within `buffer`) where blocks end, so a partial write can be cut back.
    private var boundaries: [Int] = []
    private var written: Int64 = 0
    private let flushThreshold: Int
    private let flushIntervalNs: Int64
    /// CLOCK_MONOTONIC when the oldest block still in the buffer was added (nil: none waits).
    private var oldestUnwrittenNs: Int64?
    public private(set) var failure: CaptureError?

    /// Creates `path`, or replaces the regular file there (as tcpdump -w does); never writes
    /// through a symbolic link, and refuses directories, FIFOs and the like (see `OutputFile`).
    public init(path: String, flushThreshold: Int = 1 << 20, flushInterval: Int64 = 1_000_000_000) throws {
        self.path = path
        self.flushThreshold = flushThreshold
        self.flushIntervalNs = flushInterval
        do { file = try OutputFile.create(path: path, policy: Self.policy) } catch {
            throw CaptureError("will not write the trace to \(error)")
        }
        buffer.reserveCapacity(flushThreshold + 65_536)
    }

    /// What `capture -w` may replace: any regular file (an old trace included), nothing else.
    public static let policy = OutputFile.Policy.replaceRegularFile

    /// Bytes on disk plus buffered.
    public var size: Int64 { written + Int64(buffer.count) }

    /// Adds one block built by `encode` (which appends to the buffer it is given).
    public func append(_ encode: (PcapngEncoder, inout [UInt8]) -> Void) throws {
        if let failure { throw failure }
        if buffer.isEmpty { oldestUnwrittenNs = Self.monotonicNanoseconds() }
        encode(encoder, &buffer)
        boundaries.append(buffer.count)
        if buffer.count >= flushThreshold { try flush() }
    }

    /// Stores one item of netprobe's own data now (`MetadataCarriage`): an Interface Statistics
    /// Block on `interface` (the vantage point the item is about; 0 for the whole run) stamped
    /// `timeNs` (the time the item refers to), which no pcapng reader lists as a frame. It goes
    /// into the file in order with the packets, by the next flush.
    ///
    /// What a capture learns while it runs is stored the moment it arrives, so that a capture
    /// killed later keeps it: a netlink sample, a note, and the kernel recorder's events, one batch
    /// per `drain()`, on the capture thread beside the netlink samples:
    /// `try writer.appendNetprobeData(KernelEventBatch.encode(events), timeNs: events[0].timeNs)`.
    /// `payload` starts with its kind's magic (`NetprobeBlock.payload()`, a `ClientRecordFormat`
    /// block, `KernelEventBatch.encode`) and holds at most `MetadataCarriage.maximumPayload` bytes
    /// (split larger data into several items).
    public func appendNetprobeData(_ payload: [UInt8], interface: UInt32 = 0, timeNs: Int64) throws {
        if let failure { throw failure }
        let options: [PcapngEncoder.Option]
        do { options = try MetadataCarriage.options(for: payload, swapped: encoder.swapped) } catch {
            throw CaptureError("cannot store netprobe's data in \(path): \(error)")
        }
        try append { e, out in
            e.appendInterfaceStatistics(to: &out, interface: interface, ticks: UInt64(max(timeNs, 0)), extra: options)
        }
    }

    /// Flushes when the oldest block in the buffer has waited `flushInterval` or longer. The
    /// capture calls it on every turn of its loop (at least every 50 ms).
    public func flushIfDue() throws {
        guard let oldest = oldestUnwrittenNs, Self.monotonicNanoseconds() - oldest >= flushIntervalNs else { return }
        try flush()
    }

    private static func monotonicNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Adds one Enhanced Packet Block without options: the capture's per-packet path. The bytes
    /// are those of `PcapngEncoder.appendEnhancedPacket` (host byte order, as the section header
    /// this writer's users write), built with three copies instead of a dozen appends: the block
    /// header, the packet, the padding and trailing length.
    public func appendEnhancedPacket(interface: UInt32, ticks: UInt64, data: UnsafeRawBufferPointer, originalLength: Int) throws {
        if let failure { throw failure }
        if buffer.isEmpty { oldestUnwrittenNs = Self.monotonicNanoseconds() }
        let padded = (data.count + 3) & ~3
        let total = UInt32(32 + padded) // type, length, interface, 2 x stamp, lengths, data, length
        let header: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (
            6, total, interface, UInt32(truncatingIfNeeded: ticks >> 32), UInt32(truncatingIfNeeded: ticks),
            UInt32(data.count), UInt32(truncatingIfNeeded: originalLength))
        let trailer: (UInt32, UInt32) = (0, total) // up to 3 bytes of padding, then the length
        withUnsafeBytes(of: header) { buffer.append(contentsOf: $0) }
        buffer.append(contentsOf: data)
        withUnsafeBytes(of: trailer) { buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[(4 - (padded - data.count))...])) }
        boundaries.append(buffer.count)
        if buffer.count >= flushThreshold { try flush() }
    }

    /// Writes the buffered blocks.
    public func flush() throws {
        if let failure { throw failure }
        var done = 0
        while done < buffer.count {
            let n = buffer.withUnsafeBytes { raw in
                Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
            }
            if n > 0 {
                done += n
                continue
            }
            if n < 0 && errno == EINTR { continue }
            let code = n < 0 ? errno : ENOSPC
            // Keep only whole blocks on disk.
            let whole = boundaries.last(where: { $0 <= done }) ?? 0
            _ = ftruncate(fd, off_t(written + Int64(whole)))
            written += Int64(whole)
            buffer.removeAll()
            boundaries.removeAll()
            let error = CaptureError.posix("writing \(path) failed after \(written) bytes (the file holds every block up to there)", code)
            failure = error
            throw error
        }
        written += Int64(done)
        buffer.removeAll(keepingCapacity: true)
        boundaries.removeAll(keepingCapacity: true)
        oldestUnwrittenNs = nil
    }

    /// Flushes and syncs the file to disk.
    public func close() throws {
        try flush()
        fsync(fd)
    }
}
