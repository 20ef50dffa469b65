import NetprobeModel
import NetprobeTrace
/// Stage 1 of the attribution: the vantage points in path order, from the client inwards.
///
/// The outermost vantage point gives the end-to-end time when the client's own stamps are
/// missing; the innermost one is nearest the server (a tap, a macvtap, a veth, loopback). With
/// one vantage point nothing between them can be resolved.
public struct AttributionPath: Sendable, Equatable {
    /// One vantage point on the path: its index in the analysis, its interface, its role.
    public struct Hop: Sendable, Equatable {
        public var vantage: Int
        public var interface: String
        public var role: VantageRole
        public init(vantage: Int, interface: String, role: VantageRole) {
            self.vantage = vantage
            self.interface = interface
            self.role = role
        }
    }

    /// Path order; ties keep the analysis's order.
    public let hops: [Hop]

    /// `vantages` in analysis order (a trace's interfaces).
    public init(vantages: [(interface: String, role: VantageRole)]) {
        hops = vantages.indices
            .sorted { (vantages[$0].role.pathRank, $0) < (vantages[$1].role.pathRank, $1) }
            .map { Hop(vantage: $0, interface: vantages[$0].interface, role: vantages[$0].role) }
    }

    public var outer: Hop? { hops.first }
    public var inner: Hop? { hops.last }
    /// Whether there is something between two vantage points to measure.
    public var hasTwoSides: Bool { hops.count >= 2 }
    /// The innermost vantage point when it is the device in front of the server side whose qdisc
    /// can hold a queue: a tap or macvtap (a guest's NIC backend reads it) or a veth (a
    /// namespace's stack reads it). The tap-queue model reads its netlink samples.
    public var queueDevice: Hop? {
        inner.flatMap { $0.role.isGuestDevice || $0.role == .veth ? $0 : nil }
    }
}
