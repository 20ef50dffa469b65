import NetprobeModel

/// Which kernel tracepoint saw a packet. The raw values are stored in traces
/// (`KernelEventBatch`): never renumber a case, only add new ones.
public enum KernelEventKind: UInt8, Sendable, CaseIterable, Codable, CustomStringConvertible {
    /// net:net_dev_queue — handed to a device's transmit path (before its qdisc).
    case devQueue = 1
    /// net:net_dev_start_xmit — leaving the qdisc for the driver; on a tap, entering the tun queue.
    case devStartXmit = 2
    /// net:net_dev_xmit — the driver took it (`returnCode` is its verdict: 0 = NETDEV_TX_OK).
    case devXmit = 3
    /// net:netif_rx_entry — a device received it through netif_rx (backlog).
    case rxEntry = 4
    /// net:netif_receive_skb_entry — a device received it through netif_receive_skb.
    case receiveSkbEntry = 5
    /// net:netif_receive_skb — the stack processes it on that device (a bridge port, then the bridge).
    case receiveSkb = 6
    /// skb:skb_copy_datagram_iovec — a queued skb copied to a reader (QEMU's read of a tap, a vhost
    /// worker, a socket's recv): `pid`/`tid` name the reader, `length` the bytes copied.
    case copyToReader = 7
    /// qdisc:qdisc_dequeue — a qdisc handed the skb on (`ifindex` names the device).
    case qdiscDequeue = 8
    /// skb:kfree_skb — the skb was dropped (`dropReason`: the kernel's enum skb_drop_reason).
    case drop = 9
    /// sched:sched_switch — a CPU went from thread `tid` (which left it in state `prevState`) to
    /// thread `targetTid`. Recorded for the threads of the process that reads a tap or macvtap, so
    /// that a wait in its queue can be told apart: the reader stopped, waiting for a CPU, running
    /// other work, or asleep. No skb (`skbaddr` 0).
    case schedSwitch = 10
    /// sched:sched_wakeup — thread `targetTid` was made runnable (by whatever ran: `pid`/`tid`).
    case schedWakeup = 11

    /// The tracepoint's tracefs group and name (events/GROUP/NAME).
    public var tracepoint: (group: String, name: String) {
        switch self {
        case .devQueue: ("net", "net_dev_queue")
        case .devStartXmit: ("net", "net_dev_start_xmit")
        case .devXmit: ("net", "net_dev_xmit")
        case .rxEntry: ("net", "netif_rx_entry")
        case .receiveSkbEntry: ("net", "netif_receive_skb_entry")
        case .receiveSkb: ("net", "netif_receive_skb")
        case .copyToReader: ("skb", "skb_copy_datagram_iovec")
        case .qdiscDequeue: ("qdisc", "qdisc_dequeue")
        case .drop: ("skb", "kfree_skb")
        case .schedSwitch: ("sched", "sched_switch")
        case .schedWakeup: ("sched", "sched_wakeup")
        }
    }

    /// The scheduler's events: about threads, not packets.
    public static let scheduler: [KernelEventKind] = [.schedSwitch, .schedWakeup]
    public var isScheduler: Bool { self == .schedSwitch || self == .schedWakeup }

    /// What per-hop timing needs, at about half the events of `allCases`: one event where a packet
    /// leaves a device (net_dev_start_xmit: after its qdisc, into the driver or a tap's queue) and
    /// one where it arrives (netif_receive_skb fires on every receive path; the _entry events only
    /// on some: a veth or loopback receives through __netif_rx, without netif_rx_entry), the copies
    /// to readers, qdisc dequeues and drops.
    public static let essential: [KernelEventKind] = [.devStartXmit, .receiveSkb, .copyToReader, .qdiscDequeue, .drop]

    /// True for the events that carry a device name (`interface`).
    public var namesDevice: Bool {
        switch self {
        case .devQueue, .devStartXmit, .devXmit, .rxEntry, .receiveSkbEntry, .receiveSkb: true
        case .copyToReader, .qdiscDequeue, .drop, .schedSwitch, .schedWakeup: false
        }
    }

    /// True for the events of a packet arriving on a device (rx_entry, receive_skb_entry, receive_skb).
    public var isReceive: Bool { self == .rxEntry || self == .receiveSkbEntry || self == .receiveSkb }

    /// "group:name", as perf and bpftrace write it.
    public var description: String { "\(tracepoint.group):\(tracepoint.name)" }
}

/// One kernel event about one packet (`skbaddr`), on the packets' clock.
///
/// The optional fields are those the event's tracepoint carries: `interface` for the net: events,
/// `length` for all but qdisc_dequeue and kfree_skb, `ifindex` for qdisc_dequeue, `returnCode` for
/// net_dev_xmit, `dropReason` (+ its kernel name) for kfree_skb.
public struct KernelEvent: Sendable, Equatable, CustomStringConvertible {
    /// CLOCK_REALTIME in nanoseconds: the clock of the capture's packet timestamps.
    public var timeNs: Int64
    public var kind: KernelEventKind
    /// The CPU the event happened on.
    public var cpu: UInt32
    /// The process (thread group) and thread that hit the tracepoint: the reader for
    /// `copyToReader`; for the others whatever ran (a softirq borrows the interrupted task).
    public var pid: Int32
    public var tid: Int32
    /// The socket buffer's kernel address: the key that follows one packet across hops while it
    /// lives (the address is reused once the skb is freed).
    public var skbaddr: UInt64
    /// Device name (net: events).
    public var interface: String?
    /// skb length (or bytes copied, for `copyToReader`).
    public var length: UInt32?
    /// Device index in its network namespace (qdisc_dequeue).
    public var ifindex: Int32?
    /// The driver's return code (net_dev_xmit).
    public var returnCode: Int32?
    /// enum skb_drop_reason (kfree_skb) and its name from the kernel's format ("NO_SOCKET").
    public var dropReason: UInt32?
    public var dropReasonName: String?
    /// sched_switch: the thread that gets the CPU; sched_wakeup: the thread made runnable.
    public var targetTid: Int32?
    /// sched_switch: the state thread `tid` left the CPU in, as the kernel's prev_state: 0 still
    /// runnable (preempted), else bits of TASK_INTERRUPTIBLE 0x1, TASK_UNINTERRUPTIBLE 0x2,
    /// __TASK_STOPPED 0x4, __TASK_TRACED 0x8 ... (see `ThreadState`).
    public var prevState: UInt32?

    public init(timeNs: Int64, kind: KernelEventKind, cpu: UInt32, pid: Int32, tid: Int32, skbaddr: UInt64,
                interface: String? = nil, length: UInt32? = nil, ifindex: Int32? = nil, returnCode: Int32? = nil,
                dropReason: UInt32? = nil, dropReasonName: String? = nil, targetTid: Int32? = nil, prevState: UInt32? = nil) {
        self.timeNs = timeNs
        self.kind = kind
        self.cpu = cpu
        self.pid = pid
        self.tid = tid
        self.skbaddr = skbaddr
        self.interface = interface
        self.length = length
        self.ifindex = ifindex
        self.returnCode = returnCode
        self.dropReason = dropReason
        self.dropReasonName = dropReasonName
        self.targetTid = targetTid
        self.prevState = prevState
    }

    public var description: String {
        var s = "\(timeNs) cpu\(cpu) \(pid)/\(tid) \(kind) skb=0x\(String(skbaddr, radix: 16))"
        if let interface { s += " dev=\(interface)" }
        if let length { s += " len=\(length)" }
        if let ifindex { s += " ifindex=\(ifindex)" }
        if let returnCode { s += " rc=\(returnCode)" }
        if let dropReason { s += " reason=\(dropReasonName ?? String(dropReason))" }
        if let targetTid { s += " target=\(targetTid)" }
        if let prevState { s += " prev_state=0x\(String(prevState, radix: 16))" }
        return s
    }
}
