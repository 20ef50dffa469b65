import NetprobeModel
import NetprobeTrace
/// Stage 3b: what the host kernel saw of each packet at the guest's device (the tap or macvtap
/// the innermost capture is on), from the trace's kernel events. Two hops the packets alone cannot
/// show:
///
/// - **the virtual NIC backend's queue** (request path): from the last event of an skb on the
///   device (a tap's `net_dev_start_xmit`: it enters the tun queue; a macvtap's receive) to the
///   first copy of the same skb to a reader (`skb_copy_datagram_iovec`: QEMU's read of the tap,
///   or a vhost worker's). That reader is the backend; its process is named by its pid.
/// - **the reply's hop out of the device** (reply path): from the first receive of an skb on the
///   device (the backend's write of the guest's frame) to the first event of the same skb on
///   another device (the bridge, or the port towards the client). The capture cannot show it: the
///   kernel stamps a received frame once, and every later capture of it carries that stamp.
///
/// A request is matched to its skb by time: the capture's stamp of the request's last packet at
/// the device and the skb's event on the device are taken in the same kernel call (measured here:
/// the event 1.4-2 us after the stamp for a tap, before it for a macvtap's receive), so the
/// nearest hop on the device within `matchWindowNs` is the packet's. Unmatched requests are
/// counted (`HopStats`), and their backend time stays in the guest's segment.
public struct KernelHops: Sendable {
    /// One hop of one skb: when it began on the guest's device, and how long it took.
    struct Hop: Sendable {
        var atNs: Int64
        var ns: Int64
    }

    /// The device the hops are about (the innermost vantage point's interface).
    public let device: String
    /// Request path: device -> the backend's read, in `atNs` order.
    var backend: [Hop] = []
    /// The reader of each backend hop (same order): a pid.
    var backendReader: [Int32] = []
    /// Reply path: device receive -> the next device, in `atNs` order.
    var reply: [Hop] = []
    /// When the backend's process did anything the events show (a copy from the device's queue,
    /// a write into the device), in order: a wait with none of it inside had a reader that did
    /// not run.
    var readerActivity: [Int64] = []
    /// Copies from the device's queue per reader pid.
    public private(set) var readers: [Int32: Int] = [:]
    /// The widest distance between a capture stamp and the event it is matched with.
    public static let matchWindowNs: Int64 = 200_000

    /// The hops in `events`, in time order (as the recorder hands them out). `device`: the guest's device.
    public static func build<S: Sequence<KernelEvent>>(device: String, events: S) -> KernelHops {
        var builder = Builder(device: device)
        for e in events { builder.add(e) }
        return builder.finish()
    }

    fileprivate init(device: String) { self.device = device }

    public var isEmpty: Bool { backend.isEmpty && reply.isEmpty }

    /// The backend's pid: the reader of most of the device's skbs.
    public var mainReader: Int32? { readers.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }?.key }

    /// The backend hop of the packet the capture stamped at `ns` on the device.
    func backendWait(near ns: Int64) -> (wait: Int64, readerRan: Bool)? {
        guard let k = Self.nearest(backend, ns) else { return nil }
        let h = backend[k]
        return (h.ns, readerRan(from: h.atNs, to: h.atNs + h.ns, reader: backendReader[k]))
    }

    /// The reply hop of the packet the capture stamped at `ns` on the device.
    func replyHop(near ns: Int64) -> Int64? {
        Self.nearest(reply, ns).map { reply[$0].ns }
    }

    /// Whether the backend's process did anything strictly inside (from, to) besides the copy
    /// that ends the wait.
    private func readerRan(from: Int64, to: Int64, reader: Int32) -> Bool {
        var lo = 0, hi = readerActivity.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if readerActivity[mid] <= from { lo = mid + 1 } else { hi = mid }
        }
        return lo < readerActivity.count && readerActivity[lo] < to
    }

    /// Index of the hop whose start is nearest `ns`, within the match window.
    private static func nearest(_ hops: [Hop], _ ns: Int64) -> Int? {
        var lo = 0, hi = hops.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if hops[mid].atNs < ns { lo = mid + 1 } else { hi = mid }
        }
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

    /// Follows skbs through the events: one pass, memory for the skbs in flight only.
    ///
    /// What happens to an skb after its events on the device tells its way: a request ends in a
    /// reader's copy (the wait runs from its last event on the device: a tap's transmit, a
    /// macvtap's receive); a reply moves on to another device (the hop runs from its first event
    /// on the device: the backend's write of the guest's frame).
    public struct Builder: Sendable {
        var hops: KernelHops
        /// skb -> its first and last event on the device, while it is there.
        var onDevice: [UInt64: (first: Int64, last: Int64)] = [:]
        /// What each process did on the device (events in a process's context: the backend's
        /// writes of the guest's frames) and its copies, until the backend is known.
        var activity: [(ns: Int64, pid: Int32)] = []

        public init(device: String) { hops = KernelHops(device: device) }

        public mutating func add(_ e: KernelEvent) {
            switch e.kind {
            case .copyToReader:
                if let t = onDevice.removeValue(forKey: e.skbaddr)?.last, e.timeNs >= t {
                    hops.backend.append(Hop(atNs: t, ns: e.timeNs - t))
                    hops.backendReader.append(e.pid)
                    hops.readers[e.pid, default: 0] += 1
                    activity.append((e.timeNs, e.pid))
                }
            case .drop:
                onDevice.removeValue(forKey: e.skbaddr)
            case .qdiscDequeue:
                break
            default:
                guard let name = e.interface else { return }
                if name == hops.device {
                    let first = onDevice[e.skbaddr]?.first ?? e.timeNs
                    onDevice[e.skbaddr] = (first, e.timeNs)
                    if e.pid > 0 { activity.append((e.timeNs, e.pid)) }
                } else if let t = onDevice.removeValue(forKey: e.skbaddr)?.first, e.timeNs >= t {
                    hops.reply.append(Hop(atNs: t, ns: e.timeNs - t))
                }
            }
        }

        public mutating func finish() -> KernelHops {
            hops.backend.sortTogether(&hops.backendReader)
            hops.reply.sort { $0.atNs < $1.atNs }
            if let reader = hops.mainReader {
                hops.readerActivity = activity.filter { $0.pid == reader }.map(\.ns).sorted()
            }
            return hops
        }
    }
}

private extension Array where Element == KernelHops.Hop {
    /// Sorts by `atNs`, applying the same order to `other`.
    mutating func sortTogether(_ other: inout [Int32]) {
        let order = indices.sorted { self[$0].atNs < self[$1].atNs }
        self = order.map { self[$0] }
        other = order.map { other[$0] }
    }
}

/// Kernel event batches as a trace delivers them (one at a time, while it is read), followed per
/// device: only the compact hops are kept, never the events.
public struct KernelHopsCollector: Sendable {
    private var builders: [String: KernelHops.Builder] = [:]
    /// Events decoded, and the first damaged batch's error (later batches are still read).
    public private(set) var events = 0
    public private(set) var damage: String?

    public init() {}

    /// Adds one `KernelEventBatch` (its bytes).
    public mutating func add(batch: some Collection<UInt8>) {
        var decoder = KernelEventDecoder()
        decoder.feed(batch)
        do {
            while let e = try decoder.next() {
                events += 1
                if let name = e.interface, builders[name] == nil { builders[name] = KernelHops.Builder(device: name) }
                for name in builders.keys { builders[name]!.add(e) }
            }
            try decoder.finish()
        } catch {
            if damage == nil { damage = error.description }
        }
    }

    /// The hops at `device`; nil when no event named it.
    public func hops(device: String) -> KernelHops? {
        guard var b = builders[device] else { return nil }
        return b.finish()
    }
}
