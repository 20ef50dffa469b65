import Foundation
import NetprobeCore

/// What `netprobe lab up` is asked to build.
public struct LabOptions: Sendable {
    /// The lab's name: its namespace is `np-<name>`, its state `/run/netprobe/lab/<name>/`, and
    /// with `libvirt` it is also the domain's name.
    public var name: String
    /// The topology (default bridge).
    public var setup: LabSetup
    /// Run the guest as a libvirt domain under a libvirtd inside the namespace.
    public var libvirt: Bool
    /// KVM or TCG for the guest: probed by default.
    public var accel: AccelPreference
    /// How long to wait for Redis to answer PING (a TCG guest needs 5-15 s).
    public var bootTimeout: Double

    /// Options with the defaults of `netprobe lab up`.
    public init(name: String = Lab.defaultName, setup: LabSetup = .bridge, libvirt: Bool = false,
                accel: AccelPreference = .auto, bootTimeout: Double = 120) {
        self.name = name
        self.setup = setup
        self.libvirt = libvirt
        self.accel = accel
        self.bootTimeout = bootTimeout
    }
}

/// The built-in testbed: Redis behind a bridge, macvtap, vhost-net, veth or loopback, in a
/// network namespace of its own. `up`, `status` and `down` are what `netprobe lab` runs.
public enum Lab {
    /// The name used when none is given.
    public static let defaultName = "netprobe"

    /// The lab's namespace, where the client side runs and the vantage interfaces live.
    public static func namespace(for name: String) -> String { "np-\(name)" }
    /// The veth setup's second namespace, where Redis runs.
    public static func serverNamespace(for name: String) -> String { "np-\(name)-srv" }

    /// Lab names become namespace and file names (and libvirt domain names): letters, digits,
    /// `-`, `_` and `.`, at most 40 characters, not ending in `-srv`.
    public static func validate(name: String) throws {
        guard !name.isEmpty, name.count <= 40 else { throw LabError.invalidName(name, reason: "use 1 to 40 characters") }
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }), name.first?.isLetter == true || name.first?.isNumber == true else {
            throw LabError.invalidName(name, reason: "use letters, digits, '-', '_' and '.', starting with a letter or digit")
        }
        guard !name.hasSuffix("-srv") else {
            throw LabError.invalidName(name, reason: "names ending in -srv would clash with the veth setup's second namespace")
        }
    }

    // MARK: up

    /// Builds the lab and returns when Redis answers PING. When a lab of the same name and setup
    /// is already up and healthy, returns its state; leftovers of anything else under that name
    /// (a crash, another setup) are removed first. On failure everything made is removed again.
    public static func up(_ options: LabOptions, progress: @escaping LabProgress = { _ in }) throws -> LabState {
        guard geteuid() == 0 else { throw LabError.notRoot }
        try validate(name: options.name)
        return try LabLock.with(options.name, progress: progress) { try upLocked(options, progress: progress) }
    }

    private static func upLocked(_ options: LabOptions, progress: @escaping LabProgress) throws -> LabState {
        // Reasons to refuse, checked before anything is made.
        if options.setup == .vhostNet, !FileManager.default.fileExists(atPath: "/dev/vhost-net") {
            throw LabError.vhostNetUnavailable
        }
        if options.libvirt, options.setup != .bridge, options.setup != .vhostNet {
            throw LabError.invalidOptions("--libvirt runs the guest as a libvirt domain on the lab's bridge: use it with --setup bridge (or vhost-net), not \(options.setup.rawValue)")
        }
        try Requirements.check(Requirements.tools(for: options.setup, libvirt: options.libvirt))

        let name = options.name
        let existing = LabStore.load(name)
        // A namespace under the lab's names that is not provably the lab's is never taken over.
        if let foreign = foreignNamespaces(name, state: existing).first {
            throw foreignNamespaceError(foreign, lab: name)
        }
        if let existing, existing.setup == options.setup,
           (existing.libvirtDomain != nil) == options.libvirt, status(name)?.healthy == true {
            progress("lab \(name) is already up (setup \(existing.setup.rawValue)): nothing to do")
            return existing
        }
        if hasLeftovers(name) {
            if let existing, existing.setup != options.setup || (existing.libvirtDomain != nil) != options.libvirt {
                progress("lab \(name) exists as setup \(existing.setup.rawValue)\(existing.libvirtDomain == nil ? "" : " with libvirt"): removing it first")
            } else if existing == nil {
                progress("lab \(name): its namespace carries the lab's marker but its state is gone (a crash, or \(LabState.stateDirectory) was emptied): removing it first")
            } else {
                progress("lab \(name): removing what an earlier lab of this name left (crashed, or no longer answering)")
            }
            _ = try down(name)
        }

        // The long preparations come before anything is created.
        var image: GuestImage?
        var verdict: HypervisorVerdict?
        if options.setup.hasGuest {
            let guest = try GuestImageBuilder.prepare(progress: progress)
            image = guest
            verdict = HypervisorProbe.verdict(image: guest, preference: options.accel, progress: progress)
        }
        let paths = LabPaths(name: name)
        let namespace = Netns(name: namespace(for: name))
        let libvirt = options.libvirt ? try LabLibvirt.plan(namespace: namespace, paths: paths) : nil

        let port = LabNetwork.redisPort
        let address = options.setup == .host ? "127.0.0.1:\(port)" : "\(LabNetwork.guestAddress):\(port)"
        let initial = LabState(
            name: name, setup: options.setup, namespace: namespace.name,
            extraNamespaces: options.setup == .veth ? [serverNamespace(for: name)] : [],
            redisAddress: address, hypervisor: verdict?.mode, hypervisorReason: verdict?.reason,
            libvirtDomain: libvirt == nil ? nil : name, libvirtURI: libvirt?.uri,
            guestKernel: image?.kernelVersion, createdAt: ISO8601DateFormatter().string(from: Date()))
        let builder = LabBuilder(options: options, state: initial, progress: progress)
        do {
            try builder.save()  // before anything exists, so that `down` can always find it
            try namespace.create(marker: marker(for: name))
            switch options.setup {
            case .host:
                builder.addVantage("lo", role: .host)
                let pid = try RedisProcess.start(in: namespace, bind: "127.0.0.1", paths: paths)
                try builder.addProcess(pid, "redis-server")
            case .veth:
                let server = Netns(name: serverNamespace(for: name))
                try server.create(marker: marker(for: name))
                try builder.buildVeth(server: server)
                let pid = try RedisProcess.start(in: server, bind: LabNetwork.guestAddress, paths: paths)
                try builder.addProcess(pid, "redis-server")
            case .bridge, .vhostNet, .macvtap:
                try startGuest(builder, image: image!, verdict: verdict!, libvirt: libvirt)
            }
            progress(options.setup.hasGuest
                     ? "waiting for Redis in the guest at \(address) (\(verdict?.mode ?? "")); a TCG guest takes 5-15 s"
                     : "waiting for Redis at \(address)")
            let watched = builder.state.processes.filter { $0.what == "qemu" || $0.what == "redis-server" }.map { ($0.pid, $0.what) }
            try RedisPing.wait(from: namespace, address: address, timeout: options.bootTimeout, watch: watched,
                               consoleLog: options.setup.hasGuest ? paths.consoleLog : paths.redisLog)
            try builder.save()
            return builder.state
        } catch {
            progress("lab \(name): up failed; removing what was made")
            _ = try? down(name)
            throw error
        }
    }

    /// Starts the guest: QEMU directly on a tap or macvtap, or a libvirt domain on the bridge.
    static func startGuest(_ builder: LabBuilder, image: GuestImage, verdict: HypervisorVerdict, libvirt: LabLibvirt?) throws {
        let paths = builder.paths
        var launch = QEMULaunch(accel: verdict.mode, image: image, consoleLog: paths.consoleLog)
        launch.name = "netprobe-\(builder.options.name)"
        let vhost = builder.options.setup == .vhostNet
        if let libvirt {
            try builder.buildBridge()
            builder.progress("starting libvirtd and virtlogd inside \(builder.namespace.name)")
            try libvirt.startDaemons { pid, what in try builder.addProcess(pid, what) }
            builder.progress("defining and starting libvirt domain \(builder.options.name) (type \(verdict.mode == "kvm" ? "kvm" : "qemu"))")
            let xml = LibvirtDomain.xml(name: builder.options.name, lab: builder.options.name, type: verdict.mode == "kvm" ? "kvm" : "qemu", launch: launch,
                                        bridge: LabNetwork.bridge, mac: LabNetwork.guestMAC, vhost: vhost)
            let pid = try libvirt.defineAndStart(name: builder.options.name, xml: xml)
            try builder.addProcess(pid, "qemu")
            for row in try libvirt.interfaces(of: builder.options.name) where row.source == LabNetwork.bridge {
                builder.addVantage(row.interface, role: .tap)
            }
            try builder.save()
            return
        }
        let network: QEMULaunch.Network
        var device: String?
        switch builder.options.setup {
        case .macvtap:
            let (tapDevice, mac) = try builder.buildMacvtap()
            device = tapDevice
            network = .init(netdev: "tap,id=n0,fd=3", mac: mac)
        default:
            try builder.buildBridge()
            try builder.buildTap()
            let netdev = "tap,id=n0,ifname=\(LabNetwork.tap),script=no,downscript=no" + (vhost ? ",vhost=on,vhostforce=on" : "")
            network = .init(netdev: netdev, mac: LabNetwork.guestMAC)
        }
        builder.progress("booting the Redis guest (kernel \(image.kernelVersion), \(verdict.mode)); console: \(paths.consoleLog)")
        let pid = try launch.startDaemon(in: builder.namespace, network: network, inheritedDevice: device, pidFile: paths.qemuPidFile)
        try builder.addProcess(pid, "qemu")
    }
}
