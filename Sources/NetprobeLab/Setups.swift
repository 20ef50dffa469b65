import Foundation
import NetprobeCore

/// Names and addresses inside a lab's namespace. Every lab has its own namespace, so every lab
/// uses the same ones; they never appear in the root namespace.
enum LabNetwork {
    /// The host side of the lab's private /24 (bridge or client macvlan).
    static let hostAddress = "10.77.0.1"
    /// The guest's (or the Redis namespace's) address.
    static let guestAddress = "10.77.0.2"
    static let prefixLength = 24
    static let redisPort = 6379
    /// Locally administered, QEMU's usual 52:54:00 prefix.
    static let guestMAC = "52:54:00:77:00:02"

    static let bridge = "virbr0"
    static let tap = "vnet0"
    static let macvtap = "macvtap0"
    /// The macvtap's parent: one end of a veth pair (this kernel has no dummy links).
    static let parent = "np-parent"
    static let parentPeer = "np-peer"
    /// The client's macvlan on the macvtap's parent.
    static let client = "np-cli"
    /// veth setup: the end on the bridge, and the end in Redis's namespace.
    static let vethHost = "veth0"
    static let vethServer = "eth0"

    static var hostCIDR: String { "\(hostAddress)/\(prefixLength)" }
    static var guestCIDR: String { "\(guestAddress)/\(prefixLength)" }

    /// The four octets of a dotted IPv4 address, or nil.
    static func parseIPv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map { UInt8($0) }
        guard parts.count == 4, parts.allSatisfy({ $0 != nil }) else { return nil }
        return parts.map { $0! }
    }

    /// For a guest whose static address is outside the lab's /24: the host side's address in the
    /// guest's /24 (.1, or .254 when the guest is .1), as CIDR; nil when the lab's own one serves.
    static func hostCIDR(forGuest address: String) -> String? {
        guard let octets = parseIPv4(address), let lab = parseIPv4(guestAddress), Array(octets.prefix(3)) != Array(lab.prefix(3)) else { return nil }
        let host: UInt8 = octets[3] == 1 ? 254 : 1
        return octets.prefix(3).map(String.init).joined(separator: ".") + ".\(host)/24"
    }
}

/// Builds one lab step by step, saving the state after every step so that `down` can undo a
/// half-built lab (after a failure or a crash).
final class LabBuilder {
    let options: LabOptions
    let paths: LabPaths
    let namespace: Netns
    let progress: LabProgress
    private(set) var state: LabState

    init(options: LabOptions, state: LabState, progress: @escaping LabProgress) {
        self.options = options
        self.paths = LabPaths(name: options.name)
        self.namespace = Netns(name: state.namespace)
        self.state = state
        self.progress = progress
    }

    func save() throws { try LabStore.save(state) }

    func addProcess(_ pid: Int32, _ what: String) throws {
        state.processes.append(LabState.Process(pid: pid, what: what))
        try save()
    }

    func addVantage(_ interface: String, role: VantageRole, namespace: Netns? = nil) {
        state.vantages.append(LabState.Vantage(interface: interface, role: role, namespace: (namespace ?? self.namespace).name))
    }

    /// The link the lab's DHCP server listens on, once started.
    private(set) var dhcpInterface: String?

    /// What a user's guest needs on `interface` (the bridge, or the client macvlan of a macvtap
    /// setup) before it boots: the DHCP server when it is addressed by DHCP; a host-side address
    /// in its subnet when its static address is outside the lab's.
    func startNetworkServices(on interface: String) throws {
        guard let guest = state.guest else { return }
        switch guest.addressing {
        case .dhcp:
            progress("starting the lab's DHCP server (busybox udhcpd) on \(interface): \(LabNetwork.guestAddress) for MAC \(guest.mac)")
            let pid = try DHCPServer(paths: paths).start(in: namespace, interface: interface, address: LabNetwork.guestAddress,
                                                         prefixLength: LabNetwork.prefixLength, router: LabNetwork.hostAddress, mac: guest.mac)
            dhcpInterface = interface
            try addProcess(pid, "udhcpd")
        case .static:
            if let address = options.guest.staticAddress, let cidr = LabNetwork.hostCIDR(forGuest: address) {
                progress("the guest's address \(address) is outside \(LabNetwork.hostCIDR): adding \(cidr) to \(interface)")
                try namespace.ip("addr", "add", cidr, "dev", interface)
            }
        case .commandLine:
            break
        }
    }

    func update(_ change: (inout LabState) -> Void) throws {
        change(&state)
        try save()
    }

    // MARK: Networks

    /// virbr0 with the host address (vantage: bridge).
    func buildBridge() throws {
        try namespace.addBridge(LabNetwork.bridge, address: LabNetwork.hostCIDR)
        addVantage(LabNetwork.bridge, role: .bridge)
        try save()
    }

    /// vnet0 on virbr0 (vantage: tap), for QEMU's `-netdev tap,ifname=vnet0`.
    func buildTap() throws {
        try namespace.addTap(LabNetwork.tap, bridge: LabNetwork.bridge)
        addVantage(LabNetwork.tap, role: .tap)
        try save()
    }

    /// The veth parent, macvtap0 (bridge mode) and the client macvlan np-cli with the host
    /// address. Returns the macvtap's character device and MAC for QEMU.
    func buildMacvtap() throws -> (device: String, mac: String) {
        try namespace.addVethPair(LabNetwork.parent, peer: LabNetwork.parentPeer)
        try namespace.ip("link", "add", "link", LabNetwork.parent, "name", LabNetwork.macvtap, "address", LabNetwork.guestMAC,
                         "type", "macvtap", "mode", "bridge")
        try namespace.ip("link", "set", LabNetwork.macvtap, "up")
        try namespace.ip("link", "add", "link", LabNetwork.parent, "name", LabNetwork.client, "type", "macvlan", "mode", "bridge")
        try namespace.ip("addr", "add", LabNetwork.hostCIDR, "dev", LabNetwork.client)
        try namespace.ip("link", "set", LabNetwork.client, "up")
        addVantage(LabNetwork.macvtap, role: .macvtap)
        addVantage(LabNetwork.parent, role: .parent)
        addVantage(LabNetwork.client, role: .client)
        try save()
        let info = try namespace.link(LabNetwork.macvtap)
        guard let mac = info.address else { throw LabError.conflict("\(LabNetwork.macvtap) has no MAC address (ip -n \(namespace.name) link show \(LabNetwork.macvtap))") }
        let device = try macvtapDevice(ifindex: info.ifindex)
        return (device, mac)
    }

    /// `/dev/tap<ifindex>`, the macvtap's character device. devtmpfs (or udev) normally makes
    /// it; where neither does, it is made here with the numbers from sysfs and removed by `down`.
    func macvtapDevice(ifindex: Int) throws -> String {
        let device = "/dev/tap\(ifindex)"
        let numbers = try namespace.sysfs("/sys/class/net/\(LabNetwork.macvtap)/macvtap/tap\(ifindex)/dev")
        let parts = numbers.split(separator: ":").compactMap { UInt32($0) }
        guard parts.count == 2 else { throw LabError.conflict("unexpected device numbers '\(numbers)' for \(LabNetwork.macvtap)") }
        let deadline = Date().addingTimeInterval(2)
        while !FileManager.default.fileExists(atPath: device), Date() < deadline { usleep(50_000) }
        if let existing = DeviceNode.numbers(of: device) {
            guard existing == (parts[0], parts[1]) else {
                throw LabError.conflict("\(device) exists but is device \(existing.0):\(existing.1), not the macvtap's \(numbers) (another namespace's macvtap with the same ifindex?)")
            }
            return device
        }
        try Command.check(["mknod", "-m", "0600", device, "c", String(parts[0]), String(parts[1])])
        try CreatedPaths(paths: paths).record(.node, device)
        return device
    }

    /// The bridge, a second namespace for Redis, and a veth pair between them: veth0 on the
    /// bridge, eth0 with the guest address in Redis's namespace.
    func buildVeth(server: Netns) throws {
        try buildBridge()
        try namespace.ip("link", "add", LabNetwork.vethHost, "type", "veth", "peer", "name", LabNetwork.vethServer, "netns", server.name)
        try namespace.ip("link", "set", LabNetwork.vethHost, "master", LabNetwork.bridge)
        try namespace.ip("link", "set", LabNetwork.vethHost, "up")
        try server.ip("addr", "add", LabNetwork.guestCIDR, "dev", LabNetwork.vethServer)
        try server.ip("link", "set", LabNetwork.vethServer, "up")
        addVantage(LabNetwork.vethHost, role: .veth)
        try save()
    }
}

/// Device numbers of a character device node.
enum DeviceNode {
    /// (major, minor) of the character device at `path`, or nil when it is not one.
    static func numbers(of path: String) -> (UInt32, UInt32)? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFCHR else { return nil }
        let dev = UInt64(info.st_rdev)
        // glibc's encoding (gnu_dev_major / gnu_dev_minor).
        let major = UInt32(((dev >> 8) & 0xFFF) | ((dev >> 32) & 0xFFFF_F000))
        let minor = UInt32((dev & 0xFF) | ((dev >> 12) & 0xFFFF_FF00))
        return (major, minor)
    }
}
