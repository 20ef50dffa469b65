/// Where a request's time goes, along its path from the client to Redis and back.
///
/// Segments (README, "What each segment means"):
/// - `client`: client's send -> outermost capture, and outermost capture -> client's receive
///   (needs the built-in load generator's own timestamps in the trace);
/// - `bridge`: forwarding between the outer vantage points and the tap (request path; the reply
///   path too where its two stamps differ: the kernel stamps a received frame once, so on the
///   guest -> host path the hop is usually unresolved);
/// - `tap`: the part of the bridge -> tap hop spent queued in the tap's qdisc, told apart from
///   forwarding with the netlink samples (backlog, overlimits, drops);
/// - `vnic-backend`: the request's wait in the tap's (or macvtap's) queue until the virtual NIC's
///   backend reads it (QEMU's thread, or a vhost-net worker), from the host kernel's events;
/// - `guest-stack`: tap out -> tap in, less Redis's own time and the backend's wait: QEMU's
///   emulation, virtio, the guest kernel (and the backend's wait where no kernel events show it);
/// - `redis`: Redis executing the command (INFO commandstats) plus waiting behind other commands
///   on the single-threaded server, inferred from the wire at the innermost vantage point.
public enum SegmentName: String, Codable, Sendable, CaseIterable {
    case client
    case bridge
    case tap
    case vnicBackend = "vnic-backend"
    case guestStack = "guest-stack"
    case redis

    /// Whether the segment is part of the virtual network (the seed's claim is about these): what
    /// a bypass (macvtap, vhost-net, SR-IOV) takes off the path.
    public var isVirtualNetwork: Bool { self == .bridge || self == .tap || self == .vnicBackend }

    /// Position in `allCases`.
    public var index: Int {
        switch self {
        case .client: 0
        case .bridge: 1
        case .tap: 2
        case .vnicBackend: 3
        case .guestStack: 4
        case .redis: 5
        }
    }
}

