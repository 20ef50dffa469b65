import NetprobeModel
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Joins each request's sightings at the vantage points into one row, and keeps the rows for the
/// attribution in a spill buffer (memory up to 4 MiB, then an unlinked temporary file; when that
/// file cannot be made or written, memory up to 64 MiB and the rest counted, never kept: see
/// `spillProblem`). A request
/// is known by its connection (client, server) and the TCP sequence number of its first byte: the
/// same at every vantage point on its path (no NAT).
///
/// Memory is bounded by the traffic of `windowNs` of capture time, not by the trace's length: a
/// request is joined with the sightings that arrive within the window after its first one (the
/// same request reaches the next vantage point microseconds to milliseconds later, and a file's
/// disorder across interfaces is ~0.1 s for dumpcap); older rows are final and move to the spill.
/// A sighting arriving later than that starts a row of its own (`lateSightings` may count it as
/// seen at one vantage point only: the attribution then reports it as not joined).
public final class RequestJoin {
    /// How long a row waits for sightings at other vantage points, in capture time.
    public let windowNs: Int64
    /// The most rows held open: past it the oldest row is final before its window ends. This keeps
    /// memory bounded at any request rate (80 bytes a row: 40 MiB at the default, a 2 s window of
    /// 260,000 requests a second); `rowsClosedEarly` counts what it cut.
    public let maximumOpenRows: Int
    /// Rows made final by `maximumOpenRows` before their window ended.
    public private(set) var rowsClosedEarly = 0
    /// Rows still open for sightings, by row number (in order of first sighting), in blocks of
    /// `blockRows`: row r is `slot(r)`. A block whose rows have all gone to the spill is reused
    /// for new rows, so the window's memory is allocated once instead of regrown and copied (on
    /// this VM, touching fresh memory was a visible part of the join's time).
    private var blocks: [UnsafeMutablePointer<OpenRow>] = []
    private var spareBlocks: [UnsafeMutablePointer<OpenRow>] = []
    private static let blockRows = 4096
    /// The number of the row in `blocks[0]`'s first slot.
    private var firstBlockRow = 0
    /// Rows added so far: the next row's number.
    private var nextRow = 0
    /// The oldest row not yet moved to the spill.
    private var oldestOpen = 0
    private var watermarkNs = Int64.min
    /// Per connection (client, server): its open rows' numbers in sequence order. A request's
    /// sightings at the other vantage points come soon after the first, so the search is short.
    private var flowIndex: [FlowKey: Int] = [:]
    private var flows: [FlowRows] = []
    private var freeFlows: [Int] = []
    /// A direct-mapped cache in front of `flowIndex` (hashing a `FlowKey` for every sighting was a
    /// tenth of the join's time): a slot names a flow, checked against its key before use.
    private var flowCache = [Int32](repeating: -1, count: RequestJoin.flowCacheSize)
    private static let flowCacheSize = 1024
    /// The cache's slot of a flow: keyed, so that no trace can make every flow share a slot.
    private let flowHash = FlowHash()
    /// Sightings past the second of an open row (three or more vantage points), by row number.
    private var extraSightings: [Int: [Sighting]] = [:]

    struct FlowKey: Hashable {
        var client: Endpoint
        var server: Endpoint
        /// One keyed word of both endpoints whole, instead of the six of their fields.
        func hash(into hasher: inout Hasher) { hasher.combine(FlowHash.process(client, server)) }
    }

    struct FlowRows {
        var key: FlowKey
        var rows: [Int] = []
        var head = 0
        /// In `flowIndex` (false once freed, until reused).
        var inUse = true
        var live: Int { rows.count - head }
    }
    package private(set) var commandNames: [String] = []
    private var commandIds: [String: UInt16] = [:]
    /// The last few new-to-the-cache commands' numbers, newest first: traffic mixes a few commands (GET and
    /// SET in turn missed a one-entry cache every time, and hashing the name was 6 % of the join).
    private var recentCommands: [(name: String, id: UInt16)] = []
    static let recentCommandsKept = 4
    private let spill: SpillBuffer
    /// Rows moved to the spill so far: the rows the attribution reads (rows made final that the
    /// spill could not keep are counted in `spillProblem` instead).
    public private(set) var count = 0
    /// Sightings of a request already seen at the same vantage point (a retransmitted request the
    /// analyser paired twice): the first is kept.
    public private(set) var duplicateSightings = 0

    /// A request's times at one vantage point.
    struct Times {
        var requestLast: Int64
        var responseFirst: Int64
        var responseLast: Int64
    }
    typealias Sighting = (vantage: Int, times: Times)

    /// A row waiting for sightings: 80 bytes, with the first two sightings inline. The rows of the
    /// window are the join's memory (about 100,000 of them for 50,000 requests a second), so the
    /// connection is a flow number, not two endpoints, and the first sighting's time is the row's.
    struct OpenRow {
        var first: Times
        var second: Times
        var flow: Int32
        var sequence: UInt32
        var offset: UInt32
        /// Vantage indexes count a trace's interfaces: 32 bits hold any.
        var firstVantage: UInt32
        var secondVantage: UInt32
        var command: UInt16
        /// Sightings: 1, 2, or more (those past the second in `extraSightings`).
        var sightingCount: UInt16
        var hasOffset: Bool

        var firstSeenNs: Int64 { first.requestLast }
    }

    /// `checkpointEvery`: rows between the places the spill can be cut for parallel passes (small
    /// in tests, to cut small joins). `spillDirectory`: where the spill's temporary file goes
    /// (nil: `$TMPDIR`, else /tmp).
    public convenience init(windowNs: Int64 = 2_000_000_000, maximumOpenRows: Int = 1 << 19, checkpointEvery: Int = 65_536,
                            spillDirectory: String? = nil) {
        self.init(windowNs: windowNs, maximumOpenRows: maximumOpenRows,
                  spill: SpillBuffer(checkpointEvery: checkpointEvery, directory: spillDirectory))
    }

    /// A join over a spill made to measure (tests: small limits, a file that fails).
    package init(windowNs: Int64 = 2_000_000_000, maximumOpenRows: Int = 1 << 19, spill: SpillBuffer) {
        self.windowNs = windowNs
        self.maximumOpenRows = max(1, maximumOpenRows)
        self.spill = spill
    }

    deinit {
        for b in blocks { b.deallocate() }
        for b in spareBlocks { b.deallocate() }
    }

    /// Where open row `r` lives (OpenRow holds plain values only: no initialisation bookkeeping).
    @inline(__always)
    private func slot(_ r: Int) -> UnsafeMutablePointer<OpenRow> {
        let k = r - firstBlockRow
        return blocks[k / Self.blockRows] + k % Self.blockRows
    }

    private func appendRow(_ row: OpenRow) {
        if nextRow - firstBlockRow == blocks.count * Self.blockRows {
            blocks.append(spareBlocks.popLast() ?? .allocate(capacity: Self.blockRows))
        }
        slot(nextRow).initialize(to: row)
        nextRow += 1
    }

    /// The trace has one vantage point, and always will (a classic pcap): nothing is joined, each
    /// request is a final row at once. The rows reach the spill in the same order as through the
    /// window (the order they were added), so the attribution is the same; no row waits and none
    /// is closed early. Set before the first `add`.
    public var singleVantage = false

    /// Adds one vantage point's view of a request.
    public func add(_ t: RequestTiming) {
        let times = Times(requestLast: t.requestLastByteNs, responseFirst: t.responseFirstByteNs, responseLast: t.responseLastByteNs)
        if singleVantage {
            let row = OpenRow(first: times, second: times, flow: -1, sequence: t.requestSequence, offset: t.requestOffset ?? 0,
                              firstVantage: UInt32(truncatingIfNeeded: t.vantage), secondVantage: 0, command: commandId(t.command),
                              sightingCount: 1, hasOffset: t.requestOffset != nil)
            if spill.append(row, client: t.client, server: t.server, more: []) { count += 1 }
            return
        }
        let f = flow(client: t.client, server: t.server)
        let seq = t.requestSequence
        let vantage = UInt32(truncatingIfNeeded: t.vantage)
        switch find(seq, inFlow: f) {
        case let .found(row):
            if sees(row, vantage) {
                duplicateSightings += 1
            } else {
                addSighting(row, vantage, times)
                let r = slot(row)
                if !r.pointee.hasOffset, let o = t.requestOffset {
                    r.pointee.offset = o
                    r.pointee.hasOffset = true
                }
            }
        case let .insertAt(slot):
            let row = nextRow
            appendRow(OpenRow(first: times, second: times, flow: Int32(f), sequence: seq, offset: t.requestOffset ?? 0,
                                firstVantage: vantage, secondVantage: 0, command: commandId(t.command), sightingCount: 1,
                                hasOffset: t.requestOffset != nil))
            if slot == flows[f].rows.count {
                flows[f].rows.append(row)
            } else {
                flows[f].rows.insert(row, at: slot)
            }
            if nextRow - oldestOpen > maximumOpenRows {
                moveToSpill(oldestOpen)
                oldestOpen += 1
                rowsClosedEarly += 1
                releaseSpilledBlocks()
            }
        }
        peakOpenRows = max(peakOpenRows, nextRow - oldestOpen)
        if t.responseLastByteNs > watermarkNs {
            watermarkNs = t.responseLastByteNs
            evict(olderThan: watermarkNs &- windowNs)
        }
    }

    /// The flow number of (client, server), made when new.
    @inline(__always)
    private func flow(client: Endpoint, server: Endpoint) -> Int {
        let key = FlowKey(client: client, server: server)
        let slot = Int(truncatingIfNeeded: flowHash(client, server)) & (Self.flowCacheSize - 1)
        let cached = Int(flowCache[slot])
        if cached >= 0 && flows[cached].inUse && flows[cached].key == key { return cached }
        let f: Int
        if let known = flowIndex[key] {
            f = known
        } else if let reused = freeFlows.popLast() {
            f = reused
            flows[f] = FlowRows(key: key)
            flowIndex[key] = f
        } else {
            f = flows.count
            flows.append(FlowRows(key: key))
            flowIndex[key] = f
        }
        flowCache[slot] = Int32(truncatingIfNeeded: f)
        return f
    }

    private func sees(_ row: Int, _ vantage: UInt32) -> Bool {
        let r = slot(row).pointee
        if r.firstVantage == vantage || (r.sightingCount >= 2 && r.secondVantage == vantage) { return true }
        guard r.sightingCount > 2, let more = extraSightings[row] else { return false }
        return more.contains { $0.vantage == Int(vantage) }
    }

    private func addSighting(_ row: Int, _ vantage: UInt32, _ times: Times) {
        let r = slot(row)
        if r.pointee.sightingCount == 1 {
            r.pointee.secondVantage = vantage
            r.pointee.second = times
        } else {
            extraSightings[row, default: []].append((Int(vantage), times))
        }
        if r.pointee.sightingCount < UInt16.max { r.pointee.sightingCount += 1 }
    }

    private enum Place { case found(Int), insertAt(Int) }

    /// The open row of `flow` with request sequence `seq`, or where a new one goes to keep the
    /// flow's rows in sequence order (wrap-around aware, relative to its oldest row).
    private func find(_ seq: UInt32, inFlow f: Int) -> Place {
        let rows = flows[f].rows
        let head = flows[f].head
        guard head < rows.count else { return .insertAt(rows.count) }
        func sequence(_ k: Int) -> UInt32 { slot(rows[k]).pointee.sequence }
        let base = sequence(head)
        func distance(_ s: UInt32) -> Int64 { Int64(Int32(bitPattern: s &- base)) }
        let d = distance(seq)
        let last = distance(sequence(rows.count - 1))
        if d > last { return .insertAt(rows.count) } // the usual case: a request not seen yet
        if d == last { return .found(rows[rows.count - 1]) }
        var lo = head, hi = rows.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if distance(sequence(mid)) < d { lo = mid + 1 } else { hi = mid }
        }
        return distance(sequence(lo)) == d ? .found(rows[lo]) : .insertAt(lo)
    }

    /// Moves every row first seen before `limit` to the spill.
    private func evict(olderThan limit: Int64) {
        while oldestOpen < nextRow && slot(oldestOpen).pointee.firstSeenNs < limit {
            moveToSpill(oldestOpen)
            oldestOpen += 1
        }
        releaseSpilledBlocks()
    }

    /// Blocks whose rows have all gone to the spill wait for new rows (two at most are kept).
    private func releaseSpilledBlocks() {
        while oldestOpen - firstBlockRow >= Self.blockRows {
            let b = blocks.removeFirst()
            if spareBlocks.count < 2 { spareBlocks.append(b) } else { b.deallocate() }
            firstBlockRow += Self.blockRows
        }
    }

    private func moveToSpill(_ row: Int) {
        let r = slot(row).pointee
        let f = Int(r.flow)
        let more = r.sightingCount > 2 ? extraSightings.removeValue(forKey: row) ?? [] : []
        if spill.append(r, client: flows[f].key.client, server: flows[f].key.server, more: more) { count += 1 }
        // Rows leave in order of first sighting, which is their flow's sequence order too, except
        // after an insertion in the middle (a request seen late at its first vantage point).
        if flows[f].head < flows[f].rows.count && flows[f].rows[flows[f].head] == row {
            flows[f].head += 1
        } else if let k = flows[f].rows[flows[f].head...].firstIndex(of: row) {
            flows[f].rows.remove(at: k)
        }
        if flows[f].live == 0 {
            flowIndex[flows[f].key] = nil
            flows[f].rows = []
            flows[f].head = 0
            flows[f].inUse = false
            freeFlows.append(f)
        } else if flows[f].head >= 1024 && flows[f].head * 2 >= flows[f].rows.count {
            flows[f].rows.removeFirst(flows[f].head)
            flows[f].head = 0
        }
    }

    /// Ends the join: every open row is final.
    public func finish() {
        while oldestOpen < nextRow {
            moveToSpill(oldestOpen)
            oldestOpen += 1
        }
        releaseSpilledBlocks()
    }

    private func commandId(_ name: String) -> UInt16 {
        for k in recentCommands.indices where recentCommands[k].name == name { return recentCommands[k].id }
        let id: UInt16
        if let known = commandIds[name] {
            id = known
        } else {
            guard commandNames.count < Int(UInt16.max) else { return UInt16.max }
            id = UInt16(commandNames.count)
            commandNames.append(name)
            commandIds[name] = id
        }
        if recentCommands.count == Self.recentCommandsKept { recentCommands.removeLast() }
        recentCommands.insert((name, id), at: 0)
        return id
    }

    func command(_ id: UInt16) -> String { id == UInt16.max ? "?" : commandNames[Int(id)] }

    /// Calls `body` with every row, in the order rows became final (about the order of first
    /// sighting). Can be called several times; `finish()` first.
    package func forEachRow(_ body: (JoinedRow) -> Void) {
        spill.forEach(in: 0..<spill.bytes, body)
    }

    /// The rows cut into at most `parts` consecutive runs of about equal size, for passes that
    /// run on several threads (`forEachRow(in:)`); one run when there are too few rows to cut.
    package func rowRuns(_ parts: Int) -> [Range<Int>] { spill.runs(parts) }

    /// Calls `body` with the rows of one run, in order. Runs can be read at the same time.
    package func forEachRow(in run: Range<Int>, _ body: (JoinedRow) -> Void) {
        spill.forEach(in: run, body)
    }

    /// Bytes the spill holds (in memory or in its file).
    public var spilledBytes: Int { spill.bytes }
    /// Bytes of the spill kept in memory (at most its 4 MiB limit; 64 MiB when its file failed).
    public var spillBytesInMemory: Int { spill.bytesInMemory }
    /// Set when the spill's temporary file could not be made or written: the rows then stayed in
    /// memory up to a bound, and those past it were not kept (the attribution does not see them).
    /// nil when every row was kept.
    public var spillProblem: SpillProblem? { spill.problem }
    /// Rows still waiting for sightings: what the join holds in memory.
    public var openRowCount: Int { nextRow - oldestOpen }
    /// The most rows held open at once so far.
    public private(set) var peakOpenRows = 0
}

/// A joined request as the attribution reads it back.
package struct JoinedRow {
    package var client: Endpoint
    package var server: Endpoint
    var sequence: UInt32
    package var offset: UInt32?
    package var command: UInt16
    var sightingCount: Int
    /// The record's sightings (see `SpillBuffer`): narrow (Int32 offsets from `base`) or wide.
    fileprivate var sightings: UnsafeRawBufferPointer
    fileprivate var base: Int64
    fileprivate var wide: Bool

    /// The request's (requestLast, responseFirst, responseLast) at vantage `v`, nil when not seen there.
    package func times(vantage v: Int) -> (requestLast: Int64, responseFirst: Int64, responseLast: Int64)? {
        let size = wide ? SpillBuffer.wideSightingSize : SpillBuffer.narrowSightingSize
        for k in 0..<sightingCount {
            let at = k * size
            if wide {
                guard sightings.loadUnaligned(fromByteOffset: at, as: Int64.self) == Int64(v) else { continue }
                return (sightings.loadUnaligned(fromByteOffset: at + 8, as: Int64.self),
                        sightings.loadUnaligned(fromByteOffset: at + 16, as: Int64.self),
                        sightings.loadUnaligned(fromByteOffset: at + 24, as: Int64.self))
            }
            guard sightings.loadUnaligned(fromByteOffset: at, as: UInt32.self) == UInt32(truncatingIfNeeded: v) else { continue }
            return (base + Int64(sightings.loadUnaligned(fromByteOffset: at + 4, as: Int32.self)),
                    base + Int64(sightings.loadUnaligned(fromByteOffset: at + 8, as: Int32.self)),
                    base + Int64(sightings.loadUnaligned(fromByteOffset: at + 12, as: Int32.self)))
        }
        return nil
    }
}

/// Why the join's spill could not use its temporary file, and what that cost. Numbers and an
/// errno only: the report words it.
public struct SpillProblem: Sendable, Equatable {
    /// The call that failed.
    public enum Step: String, Sendable, Equatable {
        /// Making the temporary file (mkstemp in `directory`).
        case create
        /// Writing rows to it (pwrite: a full disk, a quota, an I/O error).
        case write
    }
    public var step: Step
    /// The failing call's errno (ENOENT, EACCES, EROFS, ENOSPC, EDQUOT, EIO ...).
    public var errno: Int32
    /// Where the file was (to be) made.
    public var directory: String
    /// The most bytes of rows held in memory once the file failed: the bound memory stays within.
    public var memoryLimit: Int
    /// Rows made final after the memory was full: counted here, not kept, not attributed.
    public var rowsDropped: Int
    /// Bytes those rows would have taken.
    public var bytesDropped: Int
}

/// Append-only storage of joined rows in a compact binary form: in memory up to `memoryLimit`,
/// then in a temporary file that is unlinked at once (the kernel frees it with the descriptor).
/// When the file cannot be made or written, the rows stay in memory up to `fallbackMemoryLimit`
/// and those past it are counted and dropped (`problem`): memory stays bounded either way.
///
/// A record (native byte order; the file never leaves this process):
///   0 flags (1: client IPv6, 2: server IPv6, 4: has offset, 8: wide times), 1 sighting count,
///   2 command, 4 sequence, 8 offset, 12 client port, 14 server port, 16 base time (Int64 ns),
///   24 client address (4 or 16 bytes), server address (4 or 16), then per sighting either
///   narrow: vantage UInt32 + three Int32 ns offsets from the base (16 bytes), or, when a time is
///   more than ~2.1 s from the base, wide: vantage + three Int64 (32). (Vantage indexes are
///   32-bit in the join: they count a trace's interfaces.)
/// An IPv4 request seen at two vantage points takes 64 bytes.
package final class SpillBuffer {
    static let fixedSize = 24
    static let narrowSightingSize = 16
    static let wideSightingSize = 32
    static let maximumSightings = 255
    /// Room for the largest record, filled in place after it is appended.
    static let zeros = [UInt8](repeating: 0, count: recordSize(clientV6: true, serverV6: true, sightings: maximumSightings, wide: true))
    let memoryLimit: Int
    let fallbackMemoryLimit: Int
    private var buffer: [UInt8] = []
    private var fd: Int32 = -1
    private var fileBytes = 0
    /// Set once the file failed: rows then stay in memory, up to `fallbackMemoryLimit`.
    private(set) var problem: SpillProblem?
    private let directory: String
    /// Makes the file in `directory`: a descriptor, or -1 with errno set.
    private let makeFile: (String) -> Int32

    /// `directory`: where the file goes (nil: `$TMPDIR`, else /tmp). `makeFile`: how it is made
    /// (default: mkstemp there, unlinked at once; tests hand in a file that fails).
    package init(memoryLimit: Int = 4 << 20, fallbackMemoryLimit: Int = 64 << 20, checkpointEvery: Int = 65_536,
                 directory: String? = nil, makeFile: ((String) -> Int32)? = nil) {
        self.memoryLimit = memoryLimit
        self.fallbackMemoryLimit = max(memoryLimit, fallbackMemoryLimit)
        self.checkpointEvery = max(1, checkpointEvery)
        self.directory = directory ?? getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        self.makeFile = makeFile ?? { SpillBuffer.temporaryFile(in: $0) }
        buffer.reserveCapacity(64 << 10)
    }

    /// An unlinked temporary file in `directory` (mkstemp, then unlink): -1 with errno on failure.
    private static func temporaryFile(in directory: String) -> Int32 {
        var template = Array((directory + "/netprobe-join-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if fd >= 0 { template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) } }
        return fd
    }

    deinit { if fd >= 0 { close(fd) } }

    var bytes: Int { fileBytes + buffer.count }
    /// Where every `checkpointEvery`-th record starts (in the file, then in memory, as one run of
    /// bytes): the places rows can be cut for passes on several threads.
    let checkpointEvery: Int
    private var checkpoints: [Int] = []
    private var records = 0
    var bytesInMemory: Int { buffer.count }

    /// The size of a record with these properties.
    static func recordSize(clientV6: Bool, serverV6: Bool, sightings n: Int, wide: Bool) -> Int {
        fixedSize + (clientV6 ? 16 : 4) + (serverV6 ? 16 : 4) + n * (wide ? wideSightingSize : narrowSightingSize)
    }

    /// Appends `row` of the connection (client, server); `more`: its sightings past the second.
    /// Returns false when the row could not be kept (the file failed and memory is full: counted
    /// in `problem`).
    @discardableResult
    func append(_ row: RequestJoin.OpenRow, client c: Endpoint, server sv: Endpoint, more: [RequestJoin.Sighting]) -> Bool {
        let n = min(Int(row.sightingCount), Self.maximumSightings)
        let base = row.firstSeenNs
        func sighting(_ k: Int) -> RequestJoin.Sighting {
            k == 0 ? (Int(row.firstVantage), row.first) : k == 1 ? (Int(row.secondVantage), row.second) : more[k - 2]
        }
        var wide = false
        for k in 0..<n {
            let s = sighting(k)
            // Three comparisons, not a loop over an array literal (which allocated per sighting).
            if Int32(exactly: s.times.requestLast &- base) == nil || Int32(exactly: s.times.responseFirst &- base) == nil
                || Int32(exactly: s.times.responseLast &- base) == nil { wide = true }
        }
        let size = Self.recordSize(clientV6: c.address.isIPv6, serverV6: sv.address.isIPv6, sightings: n, wide: wide)
        if problem != nil && buffer.count + size > fallbackMemoryLimit {
            problem!.rowsDropped += 1
            problem!.bytesDropped += size
            return false
        }
        if records % checkpointEvery == 0 { checkpoints.append(bytes) }
        records += 1
        let start = buffer.count
        buffer.append(contentsOf: Self.zeros[..<size]) // one memcpy (a repeated element went byte by byte)
        buffer.withUnsafeMutableBytes { all in
            let p = UnsafeMutableRawBufferPointer(rebasing: all[start..<(start + size)])
            let flags: UInt8 = (c.address.isIPv6 ? 1 : 0) | (sv.address.isIPv6 ? 2 : 0) | (row.hasOffset ? 4 : 0) | (wide ? 8 : 0)
            p.storeBytes(of: flags, toByteOffset: 0, as: UInt8.self)
            p.storeBytes(of: UInt8(n), toByteOffset: 1, as: UInt8.self)
            p.storeBytes(of: row.command, toByteOffset: 2, as: UInt16.self)
            p.storeBytes(of: row.sequence, toByteOffset: 4, as: UInt32.self)
            p.storeBytes(of: row.hasOffset ? row.offset : 0, toByteOffset: 8, as: UInt32.self)
            p.storeBytes(of: c.port, toByteOffset: 12, as: UInt16.self)
            p.storeBytes(of: sv.port, toByteOffset: 14, as: UInt16.self)
            p.storeBytes(of: base, toByteOffset: 16, as: Int64.self)
            var at = Self.fixedSize
            func store(_ address: IPAddress) {
                if address.isIPv6 {
                    p.storeBytes(of: address.high, toByteOffset: at, as: UInt64.self)
                    p.storeBytes(of: address.low, toByteOffset: at + 8, as: UInt64.self)
                    at += 16
                } else {
                    p.storeBytes(of: UInt32(truncatingIfNeeded: address.low), toByteOffset: at, as: UInt32.self)
                    at += 4
                }
            }
            store(c.address)
            store(sv.address)
            for k in 0..<n {
                let (vantage, s) = sighting(k)
                if wide {
                    p.storeBytes(of: Int64(vantage), toByteOffset: at, as: Int64.self)
                    p.storeBytes(of: s.requestLast, toByteOffset: at + 8, as: Int64.self)
                    p.storeBytes(of: s.responseFirst, toByteOffset: at + 16, as: Int64.self)
                    p.storeBytes(of: s.responseLast, toByteOffset: at + 24, as: Int64.self)
                    at += Self.wideSightingSize
                } else {
                    p.storeBytes(of: UInt32(vantage), toByteOffset: at, as: UInt32.self)
                    p.storeBytes(of: Int32(s.requestLast - base), toByteOffset: at + 4, as: Int32.self)
                    p.storeBytes(of: Int32(s.responseFirst - base), toByteOffset: at + 8, as: Int32.self)
                    p.storeBytes(of: Int32(s.responseLast - base), toByteOffset: at + 12, as: Int32.self)
                    at += Self.narrowSightingSize
                }
            }
        }
        if buffer.count >= memoryLimit && problem == nil { flushToFile() }
        return true
    }

    /// Moves the buffered rows to the temporary file (created on first use). When that fails the
    /// rows stay in memory, and so do later ones up to `fallbackMemoryLimit` (the buffer's
    /// capacity is set to it once, so it does not double past it); rows already in the file stay
    /// readable.
    private func flushToFile() {
        if fd < 0 {
            fd = makeFile(directory)
            if fd < 0 {
                failed(.create, errno: errno)
                return
            }
        }
        var error: Int32 = 0
        buffer.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(fileBytes + done))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { // n == 0: no progress (a file size limit): as good as full
                    error = n < 0 ? errno : ENOSPC
                    return
                }
                done += n
            }
        }
        if error == 0 {
            fileBytes += buffer.count
            buffer.removeAll(keepingCapacity: true)
        } else {
            failed(.write, errno: error)
        }
    }

    private func failed(_ step: SpillProblem.Step, errno code: Int32) {
        problem = SpillProblem(step: step, errno: code, directory: directory, memoryLimit: fallbackMemoryLimit,
                               rowsDropped: 0, bytesDropped: 0)
        buffer.reserveCapacity(fallbackMemoryLimit)
    }

    /// At most `parts` runs of whole records, cut at the checkpoints nearest to equal shares.
    func runs(_ parts: Int) -> [Range<Int>] {
        let total = bytes
        var cuts = [0]
        if parts > 1 {
            for k in 1..<parts {
                let target = total / parts * k
                if let c = checkpoints.min(by: { abs($0 - target) < abs($1 - target) }), c > cuts.last! { cuts.append(c) }
            }
        }
        cuts.append(total)
        return zip(cuts, cuts.dropFirst()).map { $0..<$1 }
    }

    /// The rows whose records lie in `range` (whole records, from `runs`): first those in the file
    /// (read back in 1 MiB pieces), then those in memory. Safe from several threads at once.
    func forEach(in range: Range<Int>, _ body: (JoinedRow) -> Void) {
        let fileEnd = min(range.upperBound, fileBytes)
        if fd >= 0 && range.lowerBound < fileEnd {
            let chunk = 1 << 20
            var piece = [UInt8](repeating: 0, count: chunk + Self.recordSize(clientV6: true, serverV6: true, sightings: Self.maximumSightings, wide: true))
            var fileOffset = range.lowerBound
            var carried = 0
            while fileOffset < fileEnd {
                let want = min(chunk, fileEnd - fileOffset)
                let got = piece.withUnsafeMutableBytes { raw -> Int in
                    var done = 0
                    while done < want {
                        let n = pread(fd, raw.baseAddress! + carried + done, want - done, off_t(fileOffset + done))
                        if n < 0 && errno == EINTR { continue }
                        if n <= 0 { break }
                        done += n
                    }
                    return done
                }
                if got == 0 { break }
                fileOffset += got
                let valid = carried + got
                let used = piece.withUnsafeBytes { Self.decode(UnsafeRawBufferPointer(rebasing: $0[0..<valid]), body) }
                carried = valid - used
                if carried > 0 {
                    piece.withUnsafeMutableBytes { raw in raw.baseAddress!.copyMemory(from: raw.baseAddress! + used, byteCount: carried) }
                }
            }
        }
        let lo = max(range.lowerBound, fileBytes) - fileBytes, hi = range.upperBound - fileBytes
        if lo < hi { buffer.withUnsafeBytes { _ = Self.decode(UnsafeRawBufferPointer(rebasing: $0[lo..<hi]), body) } }
    }

    /// Decodes whole rows from `raw`; returns the bytes used (a row cut at the end is left).
    private static func decode(_ raw: UnsafeRawBufferPointer, _ body: (JoinedRow) -> Void) -> Int {
        var at = 0
        while raw.count - at >= fixedSize {
            let flags = raw.load(fromByteOffset: at, as: UInt8.self)
            let n = Int(raw.load(fromByteOffset: at + 1, as: UInt8.self))
            let clientV6 = flags & 1 != 0, serverV6 = flags & 2 != 0, wide = flags & 8 != 0
            let size = recordSize(clientV6: clientV6, serverV6: serverV6, sightings: n, wide: wide)
            guard raw.count - at >= size else { break }
            let p = UnsafeRawBufferPointer(rebasing: raw[at..<(at + size)])
            var addressAt = fixedSize
            func address(v6: Bool) -> IPAddress {
                defer { addressAt += v6 ? 16 : 4 }
                if v6 {
                    return IPAddress(ipv6High: p.loadUnaligned(fromByteOffset: addressAt, as: UInt64.self),
                                     low: p.loadUnaligned(fromByteOffset: addressAt + 8, as: UInt64.self))
                }
                return IPAddress(ipv4: p.loadUnaligned(fromByteOffset: addressAt, as: UInt32.self))
            }
            let client = Endpoint(address: address(v6: clientV6), port: p.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
            let server = Endpoint(address: address(v6: serverV6), port: p.loadUnaligned(fromByteOffset: 14, as: UInt16.self))
            let row = JoinedRow(
                client: client, server: server,
                sequence: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self),
                offset: flags & 4 != 0 ? p.loadUnaligned(fromByteOffset: 8, as: UInt32.self) : nil,
                command: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self),
                sightingCount: n,
                sightings: UnsafeRawBufferPointer(rebasing: p[addressAt...]),
                base: p.loadUnaligned(fromByteOffset: 16, as: Int64.self), wide: wide)
            body(row)
            at += size
        }
        return at
    }
}
