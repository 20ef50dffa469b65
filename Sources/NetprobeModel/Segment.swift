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
/// - `guest-stack`: tap out -> tap in, less Redis's own time: QEMU, virtio, the guest kernel;
///   without vhost-net also the wait in the tun queue until QEMU reads it;
/// - `redis`: Redis executing the command (INFO commandstats) plus waiting behind other commands
///   on the single-threaded server, inferred from the wire at the innermost vantage point.
public enum SegmentName: String, Codable, Sendable, CaseIterable {
    case client
    case bridge
    case tap
    case guestStack = "guest-stack"
    case redis

    /// Whether the segment is part of the virtual network (the seed's claim is about these).
    public var isVirtualNetwork: Bool { self == .bridge || self == .tap }

    /// Position in `allCases`.
    public var index: Int {
        switch self {
        case .client: 0
        case .bridge: 1
        case .tap: 2
        case .guestStack: 3
        case .redis: 4
        }
    }
}

