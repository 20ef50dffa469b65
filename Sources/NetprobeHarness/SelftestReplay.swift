import NetprobeCore

/// What the selftest reads from a trace itself (not through netprobe's analysis): every frame that
/// left the tap towards the guest, in the order it left (the qdisc's FIFO order), with the time the
/// same frame passed the bridge (its arrival at the qdisc).
struct RequestPathPackets {
    struct Arrival {
        /// When the frame reached the tap's qdisc: its bridge stamp (frames the host sent on the tap
        /// itself, e.g. IPv6 router solicitations, are not seen at the bridge: the previous frame's).
        var timeNs: Int64
        /// Length on the wire (what a qdisc counts: the Ethernet frame, no FCS).
        var length: Int
        /// Carries Redis bytes (a request), not a bare ACK / SYN / FIN or another protocol.
        var isRequest: Bool
        /// When it was captured leaving the tap.
        var tapTimeNs: Int64
        /// Whether it was seen at the bridge.
        var bridged: Bool
    }
    /// Frames towards the guest, in the order they left the tap.
    var arrivals: [Arrival] = []
    /// First and last request seen at the bridge.
    var firstRequestNs: Int64?
    var lastRequestNs: Int64?
    /// Frames towards the guest seen at the bridge but never at the tap (dropped, or lost).
    var bridgeOnly = 0

    /// Reads `path`: frames towards the guest (any frame at the tap whose source MAC is not the
    /// guest's: the guest's MAC is learnt from Redis's replies) and, by their bytes, their bridge stamps.
    static func read(path: String, bridge: String, tap: String, redis: Endpoint) throws -> RequestPathPackets {
        struct Frame { var timeNs: Int64; var length: Int; var hash: UInt64; var source: UInt64; var isRequest: Bool }
        let reader = try TraceReader(path: path)
        let decoder = PacketDecoder()
        var guestMAC: UInt64?
        var atBridge: [Frame] = [], atTap: [Frame] = []
        var out = RequestPathPackets()
        while let p = try reader.next() {
            let interface = reader.interfaces[p.interface]
            let isBridge = interface.name == bridge
            guard isBridge || interface.name == tap, interface.linkType == .ethernet, p.data.count >= 14 else { continue }
            var source: UInt64 = 0
            for i in 6..<12 { source = source << 8 | UInt64(p.data[i]) }
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325 // FNV-1a of the captured bytes
            for b in p.data { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
            var request = false
            if case let .success(s) = decoder.decode(p.data, linkType: interface.linkType) {
                if s.source == redis { guestMAC = source }
                request = s.destination == redis && s.payloadLength > 0
                if request && isBridge {
                    out.firstRequestNs = min(out.firstRequestNs ?? .max, p.timestampNs)
                    out.lastRequestNs = max(out.lastRequestNs ?? .min, p.timestampNs)
                }
            }
            let f = Frame(timeNs: p.timestampNs, length: p.originalLength, hash: hash, source: source, isRequest: request)
            if isBridge { atBridge.append(f) } else { atTap.append(f) }
        }
        let towardsGuest = { (f: Frame) in f.source != guestMAC }
        var byHash: [UInt64: [Int64]] = [:]
        for f in atBridge where towardsGuest(f) { byHash[f.hash, default: []].append(f.timeNs) }
        var used: [UInt64: Int] = [:]
        var previous: Int64?
        for f in atTap.sorted(by: { $0.timeNs < $1.timeNs }) where towardsGuest(f) {
            var arrival: Int64? = nil
            if let list = byHash[f.hash], used[f.hash, default: 0] < list.count {
                arrival = list[used[f.hash, default: 0]]
                used[f.hash, default: 0] += 1
            }
            let t = arrival ?? min(previous ?? f.timeNs, f.timeNs)
            out.arrivals.append(Arrival(timeNs: t, length: f.length, isRequest: f.isRequest, tapTimeNs: f.timeNs, bridged: arrival != nil))
            previous = t
        }
        out.bridgeOnly = byHash.reduce(0) { $0 + $1.value.count - used[$1.key, default: 0] }
        return out
    }

    /// How many of `intervals` start while requests were flowing.
    func count(_ intervals: [(startNs: Int64, endNs: Int64)]) -> Int {
        guard let a = firstRequestNs, let b = lastRequestNs else { return 0 }
        return intervals.filter { $0.startNs >= a && $0.startNs <= b }.count
    }
}

/// The tbf qdisc's token bucket, replayed over known arrivals: when each packet may leave.
///
/// Linux's tbf (net/sched/sch_tbf.c, tbf_dequeue): the bucket holds up to `burst` bytes' worth
/// of time (buffer = burst / rate), starts full, fills at `rate`; the head packet leaves as soon
/// as the bucket holds its length's worth (length / rate), in arrival order.
struct TokenBucketReplay {
    var rateBytesPerSecond: Double
    var burstBytes: Int

    struct Result {
        /// Per packet: departure - arrival, ns.
        var waitsNs: [Int64]
        /// Mean wait of the packets carrying requests, ns.
        var meanRequestWaitNs: Double
        var requests: Int
        /// Mean (tap stamp - predicted departure): how well the model matches what the kernel did
        /// (timer and softirq latency show here).
        var meanModelErrorNs: Double?
    }

    func run(_ arrivals: [RequestPathPackets.Arrival]) -> Result {
        let buffer = Double(burstBytes) / rateBytesPerSecond * 1e9
        var tokens = buffer
        var lastNs: Int64 = arrivals.first?.timeNs ?? 0
        var previousDeparture = Int64.min
        var waits: [Int64] = []
        waits.reserveCapacity(arrivals.count)
        var sum = 0.0, n = 0
        var errorSum = 0.0, errorCount = 0
        for a in arrivals {
            let cost = Double(a.length) / rateBytesPerSecond * 1e9
            let ready = max(a.timeNs, previousDeparture)
            let available = min(tokens + Double(ready - lastNs), buffer)
            let departure = available >= cost ? ready : ready + Int64((cost - available).rounded(.up))
            tokens = min(tokens + Double(departure - lastNs), buffer) - cost
            lastNs = departure
            previousDeparture = departure
            let wait = departure - a.timeNs
            waits.append(wait)
            if a.isRequest {
                sum += Double(wait)
                n += 1
            }
            errorSum += Double(a.tapTimeNs - departure)
            errorCount += 1
        }
        return Result(waitsNs: waits, meanRequestWaitNs: n > 0 ? sum / Double(n) : 0, requests: n,
                      meanModelErrorNs: errorCount > 0 ? errorSum / Double(errorCount) : nil)
    }
}

/// Which thread of a process copied packets out of the tun queue: counted from the kernel events
/// stored in a trace (`skb_copy_datagram_iovec` in that process), not from netprobe's analysis.
/// QEMU reads nothing else that the events record, so its copying thread is the tap's reader.
enum TapReaderThreads {
    /// Copies per thread of process `pid` in the trace at `path`.
    static func count(path: String, pid: Int32) throws -> [Int32: Int] {
        try count(reader: TraceReader(path: path), pid: pid)
    }

    /// The same for an opened trace (read to its end).
    static func count(reader: TraceReader, pid: Int32) throws -> [Int32: Int] {
        var copies: [Int32: Int] = [:]
        var damage: (any Error)?
        reader.onCustomBlock = { pen, payload in
            guard MetadataCarriage.isNetprobe(enterpriseNumber: pen), payload.starts(with: KernelEventBatch.magic) else { return false }
            // A pcapng block pads its payload to 4 bytes: the batch's header says where it ends.
            var batch = Array(payload)
            if batch.count >= KernelEventBatch.headerLength {
                let body = batch[12..<16].reversed().reduce(0) { $0 << 8 | Int($1) }
                batch = Array(batch.prefix(KernelEventBatch.headerLength + body))
            }
            do {
                for e in try KernelEventBatch.decode(batch) where e.kind == .copyToReader && e.pid == pid {
                    copies[e.tid, default: 0] += 1
                }
            } catch {
                damage = damage ?? error
            }
            return true
        }
        defer { reader.onCustomBlock = nil }
        while try reader.next() != nil {}
        if let damage { throw damage }
        return copies
    }
}
