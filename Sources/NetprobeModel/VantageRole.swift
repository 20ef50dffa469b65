/// What a capture interface is on the path from the client to Redis.
///
/// Stored as its raw value in traces (pcapng `if_description`, the `run` block) and lab state.
/// The order of the cases is not the path order: `pathRank` is.
public enum VantageRole: String, Codable, Sendable, CaseIterable {
    /// The client's own interface (the lab's macvlan next to a macvtap guest).
    case client
    /// A Linux bridge (virbr0): the host side of bridge + tap.
    case bridge
    /// A macvtap's parent link.
    case parent
    /// The tap device a guest's virtual NIC reads and writes (vnet0).
    case tap
    /// A macvtap device (the guest's NIC backend without a bridge).
    case macvtap
    /// The host end of a veth pair to a container-like namespace.
    case veth
    /// Loopback on the host: the client and Redis on one kernel.
    case host
    /// Anything else: placed with the outer vantage points.
    case other

    /// Position on the path from the client (0) towards the server.
    public var pathRank: Int {
        switch self {
        case .client: 0
        case .bridge, .parent, .other: 1
        case .tap, .macvtap, .veth: 2
        case .host: 3
        }
    }

    /// Whether this is the device a guest's virtual NIC backend reads: a tap or a macvtap.
    public var isGuestDevice: Bool { self == .tap || self == .macvtap }

    /// A role for an interface that has none recorded, from its name (libvirt's and the lab's
    /// naming: virbr0, vnet0, macvtap0, veth..., np-cli for the lab's client macvlan).
    public static func guess(interface: String) -> VantageRole {
        if interface == "lo" { return .host }
        for (prefix, role) in [("virbr", VantageRole.bridge), ("br", .bridge), ("vnet", .tap), ("tap", .tap),
                               ("macvtap", .macvtap), ("veth", .veth), ("np-cli", .client)]
        where interface.hasPrefix(prefix) {
            return role
        }
        return .other
    }
}
