/// The lab's topologies. Every one lives in the lab's own network namespace.
public enum LabSetup: String, CaseIterable, Codable, Sendable {
    /// Guest behind a tap (vnet0) enslaved to a bridge (virbr0).
    case bridge
    /// Guest on a macvtap (bridge mode) whose parent is one end of a veth pair; the client talks
    /// to it from a macvlan on the same parent.
    case macvtap
    /// Like bridge, with the tap served by the kernel's vhost-net (needs /dev/vhost-net).
    case vhostNet = "vhost-net"
    /// Redis (the host's redis-server) in a second namespace behind a veth pair on the bridge:
    /// a container-like baseline.
    case veth
    /// Redis on loopback in the lab's namespace: the bare-metal baseline.
    case host

    /// Whether the setup boots the Redis guest under QEMU.
    public var hasGuest: Bool { self == .bridge || self == .macvtap || self == .vhostNet }
}
