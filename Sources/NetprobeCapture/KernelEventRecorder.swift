import CNetprobePerf
import Foundation
import NetprobeCore
import NetprobeSystem

/// An interface whose packets the kernel event recorder follows: its name, and the network
/// namespace it lives in (nil: netprobe's own).
public struct KernelEventInterface: Sendable, Equatable {
    public var name: String
    public var namespace: String?
    public init(name: String, namespace: String? = nil) {
        self.name = name
        self.namespace = namespace
    }
}

/// Why the kernel event recorder cannot run; capture says so and goes on without events.
public enum KernelEventRecorderError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Root (or CAP_PERFMON + tracefs access) is missing: what was refused, with the hint.
    case notPermitted(String)
    /// tracefs is not mounted (or not readable).
    case noTracefs(String)
    /// This kernel lacks a tracepoint (GROUP:NAME) the recorder was asked for.
    case tracepointMissing(String, path: String)
    /// A tracepoint's format lacks a field the recorder reads, or could not be parsed.
    case badFormat(String, String)
    /// An interface to follow does not exist (in its namespace).
    case noSuchInterface(String, namespace: String?)
    /// A name that cannot go into an ftrace filter.
    case badInterfaceName(String)
    /// A reader process to follow is not running.
    case noSuchProcess(Int32)
    /// perf_event_open, an ioctl or mmap failed otherwise: what, and errno.
    case perf(String, errno: Int32)

    public var description: String {
        switch self {
        case let .notPermitted(what): "kernel events: not permitted: \(what)"
        case let .noTracefs(what): "kernel events: \(what)"
        case let .tracepointMissing(tp, path): "kernel events: this kernel has no tracepoint \(tp) (\(path) is missing)"
        case let .badFormat(tp, what): "kernel events: tracepoint \(tp): \(what)"
        case let .noSuchInterface(name, ns): "kernel events: no interface \(name)\(ns.map { " in network namespace \($0)" } ?? "")"
        case let .badInterfaceName(name): "kernel events: interface name \(name) cannot be used in a tracepoint filter"
        case let .noSuchProcess(pid): "kernel events: no process \(pid) to follow as a reader"
        case let .perf(what, code): "kernel events: \(what): \(String(cString: strerror(code)))"
        }
    }
}

/// Records per-packet kernel events from tracepoints beside a packet capture: for the chosen
/// interfaces, the net: events naming them, qdisc_dequeue on them, the copies of queued skbs to
/// readers (skb_copy_datagram_iovec) and drops (kfree_skb), with CLOCK_REALTIME timestamps.
///
/// Mechanism: perf_event_open(PERF_TYPE_TRACEPOINT) per tracepoint and CPU, raw samples with
/// time, pid/tid and CPU, one mmap ring per CPU that all events of that CPU write into
/// (PERF_EVENT_IOC_SET_OUTPUT), an ftrace filter per event set with PERF_EVENT_IOC_SET_FILTER so
/// only the chosen devices' events are written at all, field offsets from the tracefs formats.
/// The kernel refuses CLOCK_REALTIME for tracepoint events (not NMI-safe: EINVAL), so samples are
/// stamped with CLOCK_MONOTONIC and moved to CLOCK_REALTIME by an offset measured at every
/// drain (`Statistics.clockOffsetNs`; a step of the wall clock shows as `clockStepNs`).
///
/// Events without a device name are scoped differently: copies to readers are filtered in the
/// kernel to the `readers`' threads when they are given; otherwise (and for drops always) they are
/// kept only when their skb was seen on a chosen interface before (checked here, on the events in
/// time order).
///
/// Tracepoints are global and name a device, not its namespace: a device of the same name in
/// another namespace is recorded too. `duplicateNames` lists such devices found at start (in named
/// namespaces); a join by skb address with a reader (a tap's QEMU) tells them apart.
///
/// A thread drains the rings (woken at a quarter full, or every 50 ms); `drain()` hands over what
/// it collected. The events come out in time order across CPUs and drains: each CPU's ring is in
/// its own order, so an event waits `orderingDelayNs` (2 ms) until every earlier event of the
/// other CPUs is certainly read (handing out in ring order instead paired a reused skb address
/// with the wrong packet now and then).
public final class KernelEventRecorder: @unchecked Sendable {
    /// What the recorder saw, lost and dropped.
    public struct Statistics: Sendable, Equatable {
        /// Events handed out (or waiting to be), by kind.
        public var events: [KernelEventKind: Int] = [:]
        /// Samples the kernel could not write because a ring was full (PERF_RECORD_LOST).
        public var lostSamples: UInt64 = 0
        /// Copies and drops left out: their skb was never seen on a chosen interface.
        public var unscopedDiscarded = 0
        /// Events left out because nobody drained them (over `maximumPendingEvents`).
        public var undrainedDiscarded = 0
        /// Records that did not decode (too short, unknown tracepoint id).
        public var undecodable = 0
        /// CLOCK_REALTIME - CLOCK_MONOTONIC at the last drain, and how far it moved since the first.
        public var clockOffsetNs: Int64 = 0
        public var clockStepNs: Int64 = 0
        /// CPUs and ring bytes per CPU.
        public var cpus = 0
        public var ringBytes = 0
        /// The most bytes found waiting in one ring when the drain thread read it: how close the
        /// rings came to full (at `ringBytes` the kernel loses samples).
        public var ringHighWaterBytes = 0
    }

    public let interfaces: [KernelEventInterface]
    /// The reader processes whose copies are recorded (their threads at start), or nil: any reader
    /// of an skb seen on the interfaces.
    public let readers: [Int32]?
    /// What is recorded: the kinds asked for, without the scheduler's when no process was named.
    public let kinds: [KernelEventKind]
    /// Interface index of each interface, in its namespace (same order as `interfaces`).
    public let ifindexes: [Int32]
    /// Devices with one of the interfaces' names in other named namespaces (name -> namespaces).
    public let duplicateNames: [String: [String]]
    /// The ftrace filter set on each tracepoint (nil: none).
    public let filters: [KernelEventKind: String?]
    /// Events beyond this many waiting for `drain()` are discarded (and counted). Set it before
    /// `start()`.
    public var maximumPendingEvents = 8_000_000

    private let decoders: [TracepointRecordDecoder]
    private var rings: [Ring] = []
    private var fds: [Int32] = []
    /// Kinds scoped by skb in user space (copies without reader filter, drops), as bits 1 << rawValue.
    private let unscoped: UInt32
    /// Tracepoint id of each decoder (same order): the raw record's common_type picks one.
    private let decoderIDs: [UInt16]

    // Shared with the drain thread, under `lock`.
    private let lock = NSLock()
    private var pending: [KernelEvent] = []
    private var stats = Statistics()
    private var running = false
    private var thread: JoinableThread?

    // The drain thread's own (the caller's after stop()).
    /// Events read from the rings, not handed out yet (times still CLOCK_MONOTONIC).
    private var unordered: [KernelEvent] = []
    /// skb address -> when it was last seen on an interface (for copies and drops).
    private var seen: [UInt64: Int64] = [:]
    private var firstOffset: Int64?
    private var lastPrune: Int64 = 0
    /// Each ring's bytes, copied out before any is decoded.
    private var copied: [[UInt8]] = []
    /// The most bytes found waiting in one ring at one read.
    private var highWater = 0

    /// Prepares everything that can fail: tracefs formats, interface indexes, perf events, rings.
    /// Nothing is recorded until `start()`.
    /// - Parameters:
    ///   - interfaces: devices whose events to record (their names go into the kernel filter).
    ///   - readers: pids whose copies of queued skbs to record (e.g. the QEMU of a tap); nil: any
    ///     reader of an skb seen on the interfaces.
    ///   - kinds: the tracepoints to record (default all).
    ///   - scheduled: pids whose threads' scheduler events (`KernelEventKind.scheduler`) to record,
    ///     e.g. the QEMU that reads a tap (its threads now: threads started later are not
    ///     followed); without any, those kinds are left out (unfiltered they would be every
    ///     context switch of the host).
    ///   - ringPagesPerCPU: the ring size per CPU in pages (a power of two); nil: `defaultRingPages`.
    ///   - mountTracefs: mount tracefs at /sys/kernel/tracing when it is not mounted.
    public init(interfaces: [KernelEventInterface], readers: [Int32]? = nil,
                kinds: [KernelEventKind] = KernelEventKind.allCases, scheduled: [Int32] = [], ringPagesPerCPU: Int? = nil,
                mountTracefs: Bool = true) throws(KernelEventRecorderError) {
        let ringPagesPerCPU = ringPagesPerCPU ?? Self.defaultRingPages(cpus: Self.onlineCPUs().count, pageSize: Int(sysconf(Int32(_SC_PAGESIZE))))
        precondition(ringPagesPerCPU > 0 && ringPagesPerCPU & (ringPagesPerCPU - 1) == 0, "ring pages: a power of two")
        self.interfaces = interfaces
        self.readers = readers
        let kinds = scheduled.isEmpty ? kinds.filter { !$0.isScheduler } : kinds
        self.kinds = kinds
        for i in interfaces where i.name.isEmpty || i.name.utf8.count > 15 || i.name.contains(where: { $0 == "\"" || $0 == "\\" || $0.isWhitespace }) {
            throw .badInterfaceName(i.name)
        }
        let tracefs = try Tracefs.locate(mountIfNeeded: mountTracefs)

        // Interface indexes in their namespaces, and devices of the same names elsewhere.
        var indexes: [Int32] = []
        for i in interfaces {
            let index = (try? NetworkNamespace.withNamespace(i.namespace) { if_nametoindex(i.name) }) ?? 0
            guard index != 0 else { throw .noSuchInterface(i.name, namespace: i.namespace) }
            indexes.append(Int32(bitPattern: index))
        }
        ifindexes = indexes
        duplicateNames = Self.findDuplicates(interfaces)

        // Threads of processes, for the kernel filters on copies and on the scheduler's events.
        func threads(of pids: [Int32]) throws(KernelEventRecorderError) -> [Int32] {
            var all: [Int32] = []
            for pid in pids {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
                guard !names.isEmpty else { throw .noSuchProcess(pid) }
                all += names.compactMap { Int32($0) }.sorted()
            }
            return all
        }
        let tids = try readers.map { pids throws(KernelEventRecorderError) in try threads(of: pids) }
        let scheduledThreads = try threads(of: scheduled)
        var unscoped: UInt32 = kinds.contains(.drop) ? 1 << KernelEventKind.drop.rawValue : 0
        if (tids ?? []).isEmpty && kinds.contains(.copyToReader) { unscoped |= 1 << KernelEventKind.copyToReader.rawValue }
        self.unscoped = unscoped

        var decoders: [TracepointRecordDecoder] = []
        var filters: [KernelEventKind: String?] = [:]
        let names = interfaces.map(\.name)
        for kind in kinds {
            let (group, name) = kind.tracepoint
            let format = try tracefs.format(group: group, name: name)
            decoders.append(try TracepointRecordDecoder(kind: kind, format: format, knownNames: names))
            filters[kind] = TracepointRecordDecoder.filter(kind: kind, interfaces: names, ifindexes: indexes,
                                                           tids: kind.isScheduler ? scheduledThreads : tids)
        }
        self.decoders = decoders
        self.decoderIDs = decoders.map(\.id)
        self.filters = filters

        do {
            try openEvents(ringPages: ringPagesPerCPU)
        } catch {
            closeAll()
            throw error
        }
    }

    deinit {
        if isRunning { _ = stop() }
        closeAll()
    }

    // MARK: - perf events and rings

    /// One mmap'ed ring per CPU: the control page, then `size` bytes of data.
    private struct Ring {
        let base: UnsafeMutableRawPointer
        let mappedLength: Int
        let data: UnsafeMutableRawPointer
        let size: UInt64
        let fd: Int32
        var tail: UInt64 = 0
    }

    /// Ring pages per CPU when the caller does not choose: 16 MiB of locked memory shared by the
    /// CPUs, from 1 to 4 MiB per CPU, a power of two pages. A few CPUs (where the drain thread is
    /// most often kept waiting by the traffic it records) get the most each. Measured on 2 CPUs
    /// under redis-benchmark through a bridge and veth with 2 MiB rings (woken at 512 KiB): up
    /// to 1.1 MiB waiting in one ring (`ringHighWaterBytes`) with a TSan-instrumented recorder,
    /// 0.6 MiB without; a CI machine lost samples with them once.
    public static func defaultRingPages(cpus: Int, pageSize: Int) -> Int {
        let perCPU = min(4 << 20, max(1 << 20, (16 << 20) / max(1, cpus)))
        var pages = 1
        while pages * 2 * pageSize <= perCPU { pages *= 2 }
        return pages
    }

    static func onlineCPUs() -> [Int32] {
        // "0-1,4" in /sys/devices/system/cpu/online
        guard let text = try? String(contentsOfFile: "/sys/devices/system/cpu/online", encoding: .utf8) else {
            return (0..<Int32(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))).map { $0 }
        }
        var cpus: [Int32] = []
        for part in text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
            let ends = part.split(separator: "-").compactMap { Int32($0) }
            if ends.count == 2 { cpus += Array(ends[0]...ends[1]) } else if ends.count == 1 { cpus.append(ends[0]) }
        }
        return cpus
    }

    private func openEvents(ringPages: Int) throws(KernelEventRecorderError) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let cpus = Self.onlineCPUs()
        let ringBytes = ringPages * page
        for cpu in cpus {
            var owner: Int32 = -1
            for d in decoders {
                let fd = CNetprobe_perf_open_tracepoint(UInt64(d.id), cpu, CLOCK_MONOTONIC, UInt32(ringBytes / 4))
                guard fd >= 0 else { throw Self.openError(d.kind, cpu: cpu, code: -fd) }
                fds.append(fd)
                if let filter = filters[d.kind] ?? nil {
                    let rc = CNetprobe_perf_set_filter(fd, filter)
                    guard rc == 0 else { throw .perf("the kernel refused the filter \(filter) on \(d.kind)", errno: -rc) }
                }
                if owner < 0 {
                    owner = fd
                    let length = page + ringBytes
                    let base = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                    guard let base, base != UnsafeMutableRawPointer(bitPattern: -1) else {
                        throw .perf("mmap of a \(ringBytes / 1024) KiB perf ring for CPU \(cpu)", errno: errno)
                    }
                    let offset = CNetprobe_perf_ring_data_offset(base)
                    let size = CNetprobe_perf_ring_data_size(base)
                    rings.append(Ring(base: base, mappedLength: length, data: base + Int(offset == 0 ? UInt64(page) : offset),
                                      size: size == 0 ? UInt64(ringBytes) : size, fd: fd))
                } else {
                    let rc = CNetprobe_perf_set_output(fd, owner)
                    guard rc == 0 else { throw .perf("PERF_EVENT_IOC_SET_OUTPUT for \(d.kind) on CPU \(cpu)", errno: -rc) }
                }
            }
        }
        stats.cpus = cpus.count
        stats.ringBytes = ringBytes
        copied = Array(repeating: [], count: rings.count)
    }

    private static func openError(_ kind: KernelEventKind, cpu: Int32, code: Int32) -> KernelEventRecorderError {
        if code == EACCES || code == EPERM {
            let paranoid = (try? String(contentsOfFile: "/proc/sys/kernel/perf_event_paranoid", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            return .notPermitted("perf_event_open(\(kind)) on CPU \(cpu): \(String(cString: strerror(code))): recording tracepoints system-wide needs root (CAP_PERFMON or CAP_SYS_ADMIN); kernel.perf_event_paranoid is \(paranoid)")
        }
        if code == ENOENT || code == ENODEV {
            return .tracepointMissing(kind.description, path: "perf_event_open: \(String(cString: strerror(code)))")
        }
        return .perf("perf_event_open(\(kind)) on CPU \(cpu)", errno: code)
    }

    private func closeAll() {
        for r in rings { munmap(r.base, r.mappedLength) }
        rings.removeAll()
        for fd in fds { close(fd) }
        fds.removeAll()
    }

    // MARK: - Running

    private var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    /// Enables every event and starts the drain thread.
    public func start() throws(KernelEventRecorderError) {
        guard !isRunning, !fds.isEmpty else { return }
        for fd in fds {
            let rc = CNetprobe_perf_enable(fd)
            guard rc == 0 else { throw .perf("PERF_EVENT_IOC_ENABLE", errno: -rc) }
        }
        lock.lock()
        running = true
        lock.unlock()
        do {
            thread = try JoinableThread(name: "netprobe-kevents") { [self] in
                var polls = rings.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
                while isRunning {
                    _ = poll(&polls, nfds_t(polls.count), 50)
                    readRings(final: false)
                }
            }
        } catch {
            lock.lock()
            running = false
            lock.unlock()
            for fd in fds { _ = CNetprobe_perf_disable(fd) }
            throw .perf("cannot start the thread that reads the rings (pthread_create)", errno: error.errno.rawValue)
        }
    }

    /// The events collected since the last call, in time order.
    public func drain() -> [KernelEvent] {
        lock.lock()
        defer { lock.unlock() }
        let out = pending
        pending.removeAll(keepingCapacity: true)
        return out
    }

    /// What was recorded, lost and left out so far.
    public var statistics: Statistics {
        lock.lock()
        defer { lock.unlock() }
        return stats
    }

    /// Disables the events, reads what is left in the rings, stops the thread; returns the events
    /// not drained yet. The rings stay mapped until the recorder is freed.
    @discardableResult
    public func stop() -> [KernelEvent] {
        lock.lock()
        let wasRunning = running
        running = false
        lock.unlock()
        if wasRunning {
            for fd in fds { _ = CNetprobe_perf_disable(fd) }
            thread?.join()
            // The thread's block holds self and self holds the thread: break the cycle.
            thread = nil
            readRings(final: true)
        }
        return drain()
    }

    // MARK: - Reading the rings (drain thread; the caller's after stop)

    /// CLOCK_REALTIME - CLOCK_MONOTONIC, from the tightest of a few bracketing reads.
    static func clockOffset() -> Int64 {
        var best = Int64.max, offset: Int64 = 0
        var a = timespec(), m = timespec(), b = timespec()
        for _ in 0..<5 {
            clock_gettime(CLOCK_REALTIME, &a)
            clock_gettime(CLOCK_MONOTONIC, &m)
            clock_gettime(CLOCK_REALTIME, &b)
            let ta = Int64(a.tv_sec) * 1_000_000_000 + Int64(a.tv_nsec)
            let tb = Int64(b.tv_sec) * 1_000_000_000 + Int64(b.tv_nsec)
            let tm = Int64(m.tv_sec) * 1_000_000_000 + Int64(m.tv_nsec)
            if tb - ta < best {
                best = tb - ta
                offset = ta + (tb - ta) / 2 - tm
            }
        }
        return offset
    }

    /// How long an event waits in `unordered` before it is handed out: every event stamped
    /// earlier than this before a drain began has been committed to its ring by then (a sample
    /// is written in the same non-preemptible call that stamps it), so what is handed out is in
    /// time order across CPUs and drain rounds.
    static let orderingDelayNs: Int64 = 2_000_000

    private func readRings(final: Bool) {
        let offset = Self.clockOffset()
        // Taken before any ring is read, on the samples' clock (CLOCK_MONOTONIC).
        let watermark = final ? Int64.max : Self.monotonicNow() - Self.orderingDelayNs
        var lost: UInt64 = 0, undecodable = 0
        let before = unordered.count
        // Every ring is copied out (and handed back to the kernel) before any is decoded.
        for r in rings.indices { copyOut(&rings[r], into: &copied[r]) }
        for r in rings.indices { decodeRecords(copied[r], into: &unordered, lost: &lost, undecodable: &undecodable) }
        if unordered.count > before || final {
            unordered.sort { $0.timeNs < $1.timeNs }
        }
        // Hand out what is old enough, in time order; the rest waits for the next round.
        var lo = 0, hi = unordered.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if unordered[mid].timeNs <= watermark { lo = mid + 1 } else { hi = mid }
        }
        let ready = lo
        var discarded = 0
        var kept: [KernelEvent] = []
        kept.reserveCapacity(ready)
        for i in 0..<ready {
            var e = unordered[i]
            if unscoped & (1 << e.kind.rawValue) != 0 {
                guard seen[e.skbaddr] != nil else {
                    discarded += 1
                    continue
                }
            } else if unscoped != 0 && !e.kind.isScheduler {
                seen[e.skbaddr] = e.timeNs
            }
            e.timeNs &+= offset
            kept.append(e)
        }
        unordered.removeFirst(ready)
        // Forget skbs not seen for 10 s (an skb's address is reused once it is freed).
        if let newest = kept.last?.timeNs, newest - offset - lastPrune > 1_000_000_000 {
            let now = newest - offset
            seen = seen.filter { now - $0.value < 10_000_000_000 }
            lastPrune = now
        }

        lock.lock()
        defer { lock.unlock() }
        stats.lostSamples += lost
        stats.undecodable += undecodable
        stats.ringHighWaterBytes = highWater
        stats.unscopedDiscarded += discarded
        if firstOffset == nil { firstOffset = offset }
        stats.clockOffsetNs = offset
        stats.clockStepNs = max(stats.clockStepNs, abs(offset - firstOffset!))
        let room = max(0, maximumPendingEvents - pending.count)
        if kept.count > room { stats.undrainedDiscarded += kept.count - room }
        var counts = [Int](repeating: 0, count: 256)
        for e in kept.prefix(room) { counts[Int(e.kind.rawValue)] += 1 }
        for kind in kinds where counts[Int(kind.rawValue)] > 0 { stats.events[kind, default: 0] += counts[Int(kind.rawValue)] }
        pending.append(contentsOf: kept.prefix(room))
    }

    static func monotonicNow() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec)
    }

    /// Copies everything committed to the ring out in one or two memcpys and hands the space
    /// back to the kernel at once: how long decoding takes (slow under a sanitizer, or when the
    /// thread shares a busy CPU) never keeps a ring full.
    private func copyOut(_ ring: inout Ring, into buffer: inout [UInt8]) {
        buffer.removeAll(keepingCapacity: true)
        let control = ring.base
        let head = CNetprobe_perf_ring_head(control)
        let tail = ring.tail
        let size = ring.size
        guard head > tail else { return }
        let available = Int(min(head - tail, size))
        highWater = max(highWater, available)
        let at = Int(tail % size)
        let first = min(available, Int(size) - at)
        buffer.append(contentsOf: UnsafeRawBufferPointer(start: ring.data + at, count: first))
        if first < available {
            buffer.append(contentsOf: UnsafeRawBufferPointer(start: ring.data, count: available - first))
        }
        ring.tail = head
        CNetprobe_perf_ring_set_tail(control, head)
    }

    /// The records of one ring's copy: samples decoded, PERF_RECORD_LOST counted.
    private func decodeRecords(_ buffer: [UInt8], into events: inout [KernelEvent], lost: inout UInt64, undecodable: inout Int) {
        buffer.withUnsafeBytes { bytes in
            var offset = 0
            // Records are 8-aligned: u32 type, u16 misc, u16 size, then the body.
            while bytes.count - offset >= 8 {
                let type = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
                let recordSize = Int(bytes.loadUnaligned(fromByteOffset: offset + 6, as: UInt16.self))
                guard recordSize >= 8, recordSize <= bytes.count - offset else {
                    undecodable += 1
                    break
                }
                let record = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + recordSize)])
                if type == UInt32(CNetprobe_PERF_RECORD_SAMPLE) {
                    if let e = decodeSample(record) { events.append(e) } else { undecodable += 1 }
                } else if type == UInt32(CNetprobe_PERF_RECORD_LOST), record.count >= 24 {
                    lost += record.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
                }
                offset += recordSize
            }
        }
    }

    /// PERF_RECORD_SAMPLE: header, u32 pid, u32 tid, u64 time, u32 cpu, u32 res, u32 raw size, raw.
    private func decodeSample(_ record: UnsafeRawBufferPointer) -> KernelEvent? {
        guard record.count >= 36 else { return nil }
        let pid = record.loadUnaligned(fromByteOffset: 8, as: Int32.self)
        let tid = record.loadUnaligned(fromByteOffset: 12, as: Int32.self)
        let time = Int64(bitPattern: record.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        let cpu = record.loadUnaligned(fromByteOffset: 24, as: UInt32.self)
        let rawSize = Int(record.loadUnaligned(fromByteOffset: 32, as: UInt32.self))
        guard 36 + rawSize <= record.count, rawSize >= 2 else { return nil }
        let raw = UnsafeRawBufferPointer(rebasing: record[36..<(36 + rawSize)])
        let id = raw.loadUnaligned(as: UInt16.self)
        guard let i = decoderIDs.firstIndex(of: id) else { return nil }
        return decoders[i].decode(raw, timeNs: time, cpu: cpu, pid: pid, tid: tid)
    }

    // MARK: - Devices of the same name elsewhere

    private static func findDuplicates(_ interfaces: [KernelEventInterface]) -> [String: [String]] {
        var out: [String: [String]] = [:]
        let namespaces: [String?] = [nil] + NetworkNamespace.list().map { Optional($0) }
        for i in interfaces {
            for ns in namespaces where ns != i.namespace {
                if (try? NetworkNamespace.withNamespace(ns) { if_nametoindex(i.name) != 0 }) == true {
                    out[i.name, default: []].append(ns ?? "(netprobe's own)")
                }
            }
        }
        return out
    }
}
