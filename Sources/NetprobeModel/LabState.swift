/// What `netprobe lab up` built, as recorded in `<stateDirectory>/<name>/state.json`.
///
/// The lab writes it; `capture`, `load`, `experiment` and `lab status` read it (so a VM made by
/// the lab is found with its namespace and vantage interfaces without further flags).
public struct LabState: Codable, Sendable, Equatable {
    /// Where lab state lives: one folder per lab.
    public static let stateDirectory = "/run/netprobe/lab"

    public struct Vantage: Codable, Sendable, Equatable {
        /// Interface name inside `namespace` (virbr0, vnet0, macvtap0, np-parent, lo ...).
        public var interface: String
        /// Where it sits on the path (stored as the role's name: bridge, tap, macvtap ...).
        public var role: VantageRole
        public var namespace: String
        public init(interface: String, role: VantageRole, namespace: String) {
            self.interface = interface
            self.role = role
            self.namespace = namespace
        }
    }

    public struct Process: Codable, Sendable, Equatable {
        public var pid: Int32
        /// qemu, redis-server, libvirtd, virtlogd ...
        public var what: String
        public init(pid: Int32, what: String) {
            self.pid = pid
            self.what = what
        }
    }

    /// Lab name (also the libvirt domain name with --libvirt).
    public var name: String
    /// The topology (stored as its name: bridge, macvtap, vhost-net, veth or host).
    public var setup: LabSetup
    /// The network namespace everything lives in (the client side runs here).
    public var namespace: String
    /// Other namespaces the lab made (veth: Redis's own namespace).
    public var extraNamespaces: [String]
    /// Redis as HOST:PORT, reachable from `namespace`.
    public var redisAddress: String
    /// "kvm" or "tcg" for a guest; nil when Redis runs on the host side (host, veth).
    public var hypervisor: String?
    /// Why that hypervisor mode was chosen (the probe's finding).
    public var hypervisorReason: String?
    public var vantages: [Vantage]
    public var processes: [Process]
    /// With --libvirt: the domain name and the URI that reaches the libvirtd in the namespace.
    public var libvirtDomain: String?
    public var libvirtURI: String?
    /// Guest kernel version, when the guest is the built-in one.
    public var guestKernel: String?
    /// The guest as `lab up --guest` was asked for it (image, memory, vCPUs, addressing); nil
    /// in states of labs without a guest and of labs made before bring-your-own guests.
    public var guest: LabGuest?
    /// ISO 8601 creation time.
    public var createdAt: String

    public init(name: String, setup: LabSetup, namespace: String, extraNamespaces: [String] = [],
                redisAddress: String, hypervisor: String? = nil, hypervisorReason: String? = nil,
                vantages: [Vantage] = [], processes: [Process] = [], libvirtDomain: String? = nil,
                libvirtURI: String? = nil, guestKernel: String? = nil, guest: LabGuest? = nil, createdAt: String) {
        self.name = name
        self.setup = setup
        self.namespace = namespace
        self.extraNamespaces = extraNamespaces
        self.redisAddress = redisAddress
        self.hypervisor = hypervisor
        self.hypervisorReason = hypervisorReason
        self.vantages = vantages
        self.processes = processes
        self.libvirtDomain = libvirtDomain
        self.libvirtURI = libvirtURI
        self.guestKernel = guestKernel
        self.guest = guest
        self.createdAt = createdAt
    }
}
