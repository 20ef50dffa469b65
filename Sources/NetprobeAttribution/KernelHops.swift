import NetprobeModel
import NetprobeTrace
/// Stage 3b: what the host kernel saw of each packet at the guest's device (the tap or macvtap
/// the innermost capture is on), from the trace's kernel events. Two hops the packets alone cannot
/// show:
///
/// - **the virtual NIC backend's queue** (request path): from the skb's last event on the device
///   whose queue the backend reads to the backend's copy of it (`skb_copy_datagram_iovec`: QEMU's
///   read of the tap, or a vhost worker's). A tap's queue is filled by its own transmit
///   (`net_dev_start_xmit`); a macvtap's by a receive on its parent link (the macvtap takes the
///   frame in the parent's receive handler, with no event of its own).
/// - **the reply's hop out of the device** (reply path): from the skb's first event on the guest's
///   device (the backend's write of the guest's frame) to its first event on another device. The
///   capture cannot show it: the kernel stamps a received frame once, and every later capture of
///   it carries that stamp.
///
/// The backend is a process: the one that copies the most skbs whose last device was the guest's
/// tap, or, behind a macvtap, the one whose writes are the guest device's events (a macvtap's
/// requests never show on it). Copies by other readers (a client's recv) are not the backend's.
///
/// A request is matched to its skb by time: the capture's stamp of the request's last packet at
/// the guest's device and the skb's event that starts the wait come from the same kernel call or
/// the next (measured here: a tap's transmit event 1.4-2 us after the stamp; a macvtap's parent
/// receive a few microseconds before it), so the nearest wait within `matchWindowNs` is the
/// packet's. Requests without one are counted (`BackendTally.unmatched`); their backend time
/// stays in the guest's segment.
public struct KernelHops: Sendable {
    /// One hop of one skb: when it began, and how long it took.
    struct Hop: Sendable {
        var atNs: Int64
        var ns: Int64
        /// The thread whose copy ended a backend wait (0 for reply hops).
        var tid: Int32 = 0
    }

    /// The guest's device (the innermost vantage point's interface) and the device whose queue
    /// the backend reads (the same for a tap, the parent link for a macvtap).
    public let device: String
    public let queueDevice: String
    /// Request path: the queue's last event -> the backend's copy, in `atNs` order.
    var backend: [Hop] = []
    /// Reply path: first event on the guest's device -> the next device, in `atNs` order.
    var reply: [Hop] = []
    /// When the backend did anything the events show (its copies, its writes on the guest's
    /// device), in order: a wait with none of it inside had a backend that did not run.
    var readerActivity: [Int64] = []
    /// The backend's pid, and how many skbs other readers copied from the same queue.
    public internal(set) var reader: Int32?
    public internal(set) var otherReaderCopies = 0
    /// The scheduler's view of the backend's threads that copied (sched_switch, sched_wakeup):
    /// empty when the trace has none of those events.
    var timelines: [Int32: ThreadTimeline] = [:]
    /// The backend's threads that made the copies, by number of copies (most first).
    public internal(set) var readerThreads: [Int32] = []
    /// The widest distance between a capture stamp and the event it is matched with.
    public static let matchWindowNs: Int64 = 200_000

    /// The hops in `events`, in time order (as the recorder hands them out).
    public static func build<S: Sequence<KernelEvent>>(device: String, queueDevice: String? = nil, events: S) -> KernelHops {
        var tracks = KernelEventTracks()
        for e in events { tracks.add(e) }
        return tracks.hops(device: device, queueDevice: queueDevice ?? device)
    }

    init(device: String, queueDevice: String) {
        self.device = device
        self.queueDevice = queueDevice
    }

    public var isEmpty: Bool { backend.isEmpty && reply.isEmpty }

    /// Whether the trace has the scheduler's events of the threads that read the backend's queue.
    public var hasSchedule: Bool { !timelines.isEmpty }

    /// The backend's wait of the request the capture stamped at `ns` on the guest's device, the
    /// longest stretch of it in which the backend's process did nothing the events show, and what
    /// the thread that read it was doing meanwhile (nil without its scheduler events).
    func backendWait(near ns: Int64) -> (wait: Int64, silent: Int64, states: ThreadStateTimes?)? {
        guard let k = Self.nearest(backend, ns) else { return nil }
        let h = backend[k]
        return (h.ns, Self.longestGap(readerActivity, from: h.atNs, to: h.atNs + h.ns),
                timelines[h.tid]?.times(from: h.atNs, to: h.atNs + h.ns))
    }

    /// The reply hop of the packet the capture stamped at `ns` on the guest's device.
    func replyHop(near ns: Int64) -> Int64? {
        Self.nearest(reply, ns).map { reply[$0].ns }
    }

    /// The longest interval between `from`, the values of sorted `times` inside (from, to), and `to`.
    /// (Whether any activity fell inside says little: a backend that resumes after being stopped
    /// first writes and copies what waited, just before the copy that ends the wait.)
    static func longestGap(_ times: [Int64], from: Int64, to: Int64) -> Int64 {
        var k = firstIndex(times.count) { times[$0] > from }
        var previous = from, longest: Int64 = 0
        while k < times.count && times[k] < to {
            longest = max(longest, times[k] - previous)
            previous = times[k]
            k += 1
        }
        return max(longest, to - previous)
    }

    /// The first index in 0..<count where `isAfter` holds (it holds from some index on).
    static func firstIndex(_ count: Int, _ isAfter: (Int) -> Bool) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if isAfter(mid) { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    /// Index of the hop whose start is nearest `ns`, within the match window.
    static func nearest(_ hops: [Hop], _ ns: Int64) -> Int? {
        let lo = firstIndex(hops.count) { hops[$0].atNs >= ns }
        var best: Int?
        var bestDistance = matchWindowNs + 1
        for k in [lo - 1, lo] where k >= 0 && k < hops.count {
            let d = abs(hops[k].atNs - ns)
            if d < bestDistance {
                best = k
                bestDistance = d
            }
        }
        return best
    }
}

/// A trace's kernel events followed per skb across every device they name, in one pass, keeping
/// only hops (never the events): the copies to readers by the skb's last device, the moves from
/// one device to the next, and who did what on each device. `hops(device:queueDevice:)` gives the
/// view at one guest device.
public struct KernelEventTracks: Sendable {
    struct Copy: Sendable {
        var atNs: Int64
        var ns: Int64
        var pid: Int32
        var tid: Int32
        /// The skb was on the guest-side device before (told per device below).
        var deviceMask: UInt64
    }
    struct Skb {
        var device: Int
        var lastNs: Int64
        /// When the skb arrived on `device` (its first event there since it came).
        var arrivedNs: Int64
        /// Devices it has been on (bit per device index, the first 64).
        var seen: UInt64
    }

    private var names: [String] = []
    private var index: [String: Int] = [:]
    private var skbs: [UInt64: Skb] = [:]
    /// By the device of the skb's last event before the copy.
    private var copies: [[Copy]] = []
    /// By the device the skb left: its arrival there -> its first event on the next device.
    private var moves: [[KernelHops.Hop]] = []
    /// Per device: events in a process's context (pid > 0), by pid: counts and times.
    private var processEvents: [[Int32: [Int64]]] = []
    /// Threads' states from the scheduler's events (recorded for the backend's threads only).
    private var threads: [Int32: ThreadTimeline] = [:]
    /// Events taken, and the first damaged batch's error (later batches are still read).
    public private(set) var events = 0
    public private(set) var damage: String?

    public init() {}

    private mutating func device(_ name: String) -> Int {
        if let k = index[name] { return k }
        index[name] = names.count
        names.append(name)
        copies.append([])
        moves.append([])
        processEvents.append([:])
        return names.count - 1
    }

    public mutating func add(_ e: KernelEvent) {
        events += 1
        switch e.kind {
        case .copyToReader:
            guard let s = skbs.removeValue(forKey: e.skbaddr), e.timeNs >= s.lastNs else { return }
            copies[s.device].append(Copy(atNs: s.lastNs, ns: e.timeNs - s.lastNs, pid: e.pid, tid: e.tid, deviceMask: s.seen))
        case .drop:
            skbs.removeValue(forKey: e.skbaddr)
        case .qdiscDequeue:
            break
        case .schedSwitch:
            threads[e.tid, default: ThreadTimeline()].change(to: ThreadState(prevState: e.prevState ?? 0), at: e.timeNs)
            if let next = e.targetTid { threads[next, default: ThreadTimeline()].change(to: .running, at: e.timeNs) }
        case .schedWakeup:
            if let woken = e.targetTid { threads[woken, default: ThreadTimeline()].change(to: .runnable, at: e.timeNs, wakeup: true) }
        default:
            guard let name = e.interface else { return }
            let d = device(name)
            let bit: UInt64 = d < 64 ? 1 << UInt64(d) : 0
            if e.pid > 0 { processEvents[d][e.pid, default: []].append(e.timeNs) }
            if var s = skbs[e.skbaddr] {
                if s.device != d {
                    if e.timeNs >= s.arrivedNs { moves[s.device].append(.init(atNs: s.arrivedNs, ns: e.timeNs - s.arrivedNs)) }
                    s.device = d
                    s.arrivedNs = e.timeNs
                }
                s.lastNs = e.timeNs
                s.seen |= bit
                skbs[e.skbaddr] = s
            } else {
                skbs[e.skbaddr] = Skb(device: d, lastNs: e.timeNs, arrivedNs: e.timeNs, seen: bit)
            }
        }
    }

    /// Adds one `KernelEventBatch` (its bytes, as stored in a trace).
    public mutating func add(batch bytes: some Collection<UInt8>) {
        // A pcapng block pads its payload to 4 bytes: the batch's header says where it ends.
        var batch = Array(bytes)
        if batch.count >= KernelEventBatch.headerLength {
            let body = batch[12..<16].reversed().reduce(0) { $0 << 8 | Int($1) }
            let end = KernelEventBatch.headerLength + body
            if end < batch.count, batch[end...].allSatisfy({ $0 == 0 }) { batch.removeLast(batch.count - end) }
        }
        var decoder = KernelEventDecoder()
        decoder.feed(batch)
        do {
            while let e = try decoder.next() { add(e) }
            try decoder.finish()
        } catch {
            if damage == nil { damage = error.description }
        }
    }

    /// Whether any event named `device`.
    public func knows(_ device: String) -> Bool { index[device] != nil }

    /// The view at guest device `device`, whose queue the backend reads on `queueDevice`.
    public func hops(device: String, queueDevice: String) -> KernelHops {
        var h = KernelHops(device: device, queueDevice: queueDevice)
        guard let g = index[device] else { return h }
        let guestBit: UInt64 = g < 64 ? 1 << UInt64(g) : 0
        h.reply = moves[g].sorted { $0.atNs < $1.atNs }
        guard let q = index[queueDevice] else { return h }
        // The backend: behind a tap, the main copier of what the tap queued; behind a macvtap,
        // the process whose writes are the guest device's events.
        let reader: Int32?
        if q == g {
            var counts: [Int32: Int] = [:]
            for c in copies[q] { counts[c.pid, default: 0] += 1 }
            reader = counts.max { ($0.value, -$0.key) < ($1.value, -$1.key) }?.key
        } else {
            reader = processEvents[g].max { ($0.value.count, -$0.key) < ($1.value.count, -$1.key) }?.key
        }
        guard let reader else { return h }
        h.reader = reader
        // A request behind a macvtap was never on the guest's device; a reply that was is not the
        // backend's to read.
        let queued = copies[q].filter { q == g || $0.deviceMask & guestBit == 0 }
        h.backend = queued.filter { $0.pid == reader }.map { KernelHops.Hop(atNs: $0.atNs, ns: $0.ns, tid: $0.tid) }.sorted { $0.atNs < $1.atNs }
        var perThread: [Int32: Int] = [:]
        for hop in h.backend { perThread[hop.tid, default: 0] += 1 }
        h.readerThreads = perThread.sorted { ($0.value, -$0.key) > ($1.value, -$1.key) }.map(\.key)
        for tid in h.readerThreads { if let t = threads[tid] { h.timelines[tid] = t } }
        h.otherReaderCopies = queued.count - h.backend.count
        var activity = processEvents[g][reader] ?? []
        for list in copies { for c in list where c.pid == reader { activity.append(c.atNs + c.ns) } }
        h.readerActivity = activity.sorted()
        return h
    }
}
