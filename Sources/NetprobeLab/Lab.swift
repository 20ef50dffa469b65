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
    /// Which guest, with what memory, vCPUs and extra QEMU arguments, addressed how.
    public var guest: LabGuestOptions

    /// Options with the defaults of `netprobe lab up`.
    public init(name: String = Lab.defaultName, setup: LabSetup = .bridge, libvirt: Bool = false,
                accel: AccelPreference = .auto, bootTimeout: Double = 120, guest: LabGuestOptions = LabGuestOptions()) {
        self.name = name
        self.setup = setup
        self.libvirt = libvirt
        self.accel = accel
        self.bootTimeout = bootTimeout
        self.guest = guest
    }
}

/// The guest part of `lab up`: `--guest`, `--memory`, `--vcpus`, `--qemu-commandline`, `--guest-address`.
public struct LabGuestOptions: Sendable, Equatable {
    /// The built-in microVM (default), or a user's disk image or kernel.
    public var spec: GuestSpec
    /// MiB of guest memory (default 512).
    public var memoryMiB: Int
    /// Virtual CPUs (default 1).
    public var vcpus: Int
    /// Arguments appended to QEMU's command line (with libvirt: `<qemu:commandline>`).
    public var qemuArguments: [String]
    /// The address a guest configures itself (no DHCP then), as A.B.C.D; nil: the lab's guest
    /// address, by DHCP for a user's image, on the kernel command line for the built-in guest.
    public var staticAddress: String?

    /// `--memory` and `--vcpus`: the defaults and what is accepted.
    public static let defaultMemoryMiB = 512, defaultVCPUs = 1
    public static let memoryRange = 16...1_048_576, vcpuRange = 1...64

    public init(spec: GuestSpec = .builtin, memoryMiB: Int = defaultMemoryMiB, vcpus: Int = defaultVCPUs, qemuArguments: [String] = [],
                staticAddress: String? = nil) {
        self.spec = spec
        self.memoryMiB = memoryMiB
        self.vcpus = vcpus
        self.qemuArguments = qemuArguments
        self.staticAddress = staticAddress
    }

    /// Any option beyond the defaults (they need a setup with a guest).
    public var isDefault: Bool { self == LabGuestOptions() }
}

extension LabState {
    /// The guest this lab runs: as recorded, or, in a state saved before guests were recorded,
    /// the built-in one where the setup has a guest.
    var effectiveGuest: LabGuest? { guest ?? (setup.hasGuest ? Lab.builtinGuest : nil) }
}

extension LabOptions {
    /// Why these options cannot make a lab, before anything is looked at on the host (the
    /// command line asks it too, to refuse them as a usage error); nil when they can.
    public var problem: LabError? {
        if libvirt, setup != .bridge, setup != .vhostNet {
            return .invalidOptions("--libvirt runs the guest as a libvirt domain on the lab's bridge: use it with --setup bridge (or vhost-net), not \(setup.rawValue)")
        }
        if !setup.hasGuest, !guest.isDefault {
            return .invalidOptions("--guest, --memory, --vcpus, --qemu-commandline and --guest-address are for setups with a guest (bridge, macvtap, vhost-net), not \(setup.rawValue)")
        }
        if !LabGuestOptions.memoryRange.contains(guest.memoryMiB) {
            return .invalidOptions("--memory must be between \(LabGuestOptions.memoryRange.lowerBound) and \(LabGuestOptions.memoryRange.upperBound), got \(guest.memoryMiB)")
        }
        if !LabGuestOptions.vcpuRange.contains(guest.vcpus) {
            return .invalidOptions("--vcpus must be between \(LabGuestOptions.vcpuRange.lowerBound) and \(LabGuestOptions.vcpuRange.upperBound), got \(guest.vcpus)")
        }
        if let address = guest.staticAddress, LabNetwork.parseIPv4(address) == nil {
            return .invalidOptions("--guest-address \(address): give an IPv4 address (A.B.C.D)")
        }
        return nil
    }
}

/// The built-in testbed: Redis behind a bridge, macvtap, vhost-net, veth or loopback, in a
/// network namespace of its own. `up`, `status` and `down` are what `netprobe lab` runs.
public enum Lab {
    /// The name used when none is given.
    public static let defaultName = "netprobe"
    /// The guest's address in every lab (handed out by DHCP to a user's guest).
    public static var guestAddress: String { LabNetwork.guestAddress }
    /// The guest NIC's MAC in every lab (the DHCP server's lease is for it).
    public static var guestMAC: String { LabNetwork.guestMAC }

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
        if let problem = options.problem { throw problem }
        try Requirements.check(Requirements.tools(for: options.setup, libvirt: options.libvirt))
        // A missing or unreadable image fails here, before anything is made.
        let inspection = try GuestFiles.inspect(options.guest.spec)
        for note in inspection.notes { progress("note: \(note)") }

        let name = options.name
        let existing = LabStore.load(name)
        // A namespace under the lab's names that is not provably the lab's is never taken over.
        if let foreign = foreignNamespaces(name, state: existing).first {
            throw foreignNamespaceError(foreign, lab: name)
        }
        let guest = options.setup.hasGuest ? labGuest(options.guest, inspection: inspection) : nil
        if let existing, existing.setup == options.setup, existing.effectiveGuest == guest,
           (existing.libvirtDomain != nil) == options.libvirt, status(name)?.healthy == true {
            progress("lab \(name) is already up (setup \(existing.setup.rawValue)): nothing to do")
            return existing
        }
        if hasLeftovers(name) {
            if let existing, existing.setup != options.setup || (existing.libvirtDomain != nil) != options.libvirt || existing.guest != guest {
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
            // A user's guest needs the built-in image only for the KVM probe, and only once per host boot.
            if options.guest.spec.kind == .builtin || HypervisorProbe.needsProbe(options.accel) {
                image = try GuestImageBuilder.prepare(progress: progress)
            }
            verdict = HypervisorProbe.verdict(image: image, preference: options.accel, progress: progress)
        }
        let paths = LabPaths(name: name)
        let namespace = Netns(name: namespace(for: name))
        let libvirt = options.libvirt ? try LabLibvirt.plan(namespace: namespace, paths: paths) : nil

        let port = LabNetwork.redisPort
        let guestIP = options.guest.staticAddress ?? LabNetwork.guestAddress
        let address = options.setup == .host ? "127.0.0.1:\(port)" : "\(guestIP):\(port)"
        let initial = LabState(
            name: name, setup: options.setup, namespace: namespace.name,
            extraNamespaces: options.setup == .veth ? [serverNamespace(for: name)] : [],
            redisAddress: address, hypervisor: verdict?.mode, hypervisorReason: verdict?.reason,
            libvirtDomain: libvirt == nil ? nil : name, libvirtURI: libvirt?.uri,
            guestKernel: guest?.spec.kind == .builtin ? image?.kernelVersion : nil, guest: guest, createdAt: ISO8601DateFormatter().string(from: Date()))
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
                try startGuest(builder, image: image, verdict: verdict!, libvirt: libvirt)
            }
            progress(options.setup.hasGuest
                     ? "waiting for Redis in the guest at \(address) (\(verdict?.mode ?? "")); a TCG guest takes 5-15 s"
                     : "waiting for Redis at \(address)")
            let watched = builder.state.processes.filter { $0.what == "qemu" || $0.what == "redis-server" }.map { ($0.pid, $0.what) }
            var diagnosis: GuestDiagnosis?
            if let guest, guest.spec.kind != .builtin {
                let (host, portText) = RedisPing.split(address)
                diagnosis = GuestDiagnosis(namespace: namespace, address: host, port: portText, guest: guest,
                                           dhcp: guest.addressing == .dhcp ? DHCPServer(paths: paths) : nil,
                                           dhcpInterface: builder.dhcpInterface, consoleLog: paths.consoleLog, fileNotes: inspection.notes)
            }
            let started = Date()
            try RedisPing.wait(from: namespace, address: address, timeout: options.bootTimeout, watch: watched,
                               consoleLog: options.setup.hasGuest ? paths.consoleLog : paths.redisLog,
                               watchConsole: options.setup.hasGuest, diagnosis: diagnosis)
            progress("Redis answered \(String(format: "%.1f", Date().timeIntervalSince(started))) s after the guest started")
            try builder.save()
            return builder.state
        } catch {
            progress("lab \(name): up failed; removing what was made")
            _ = try? down(name)
            throw error
        }
    }

    /// What the lab records about the built-in guest with the default options: the guest of a
    /// state saved before bring-your-own guests, which recorded none.
    static let builtinGuest = labGuest(LabGuestOptions(), inspection: .init())

    /// What the lab records about the guest it is asked for.
    static func labGuest(_ options: LabGuestOptions, inspection: GuestFiles.Inspection) -> LabGuest {
        let addressing: LabGuest.Addressing = options.staticAddress != nil ? .static : options.spec.kind == .builtin ? .commandLine : .dhcp
        var spec = options.spec
        spec.path = spec.path.map(GuestFiles.absolute)
        spec.initrd = spec.initrd.map(GuestFiles.absolute)
        return LabGuest(spec: spec, diskFormat: inspection.diskFormat, memoryMiB: options.memoryMiB, vcpus: options.vcpus,
                        qemuArguments: options.qemuArguments, addressing: addressing, mac: LabNetwork.guestMAC)
    }

    /// Starts the guest: QEMU directly on a tap or macvtap, or a libvirt domain on the bridge;
    /// before it, the DHCP server where the guest's frames arrive (a user's guest without
    /// `--guest-address`).
    static func startGuest(_ builder: LabBuilder, image: GuestImage?, verdict: HypervisorVerdict, libvirt: LabLibvirt?) throws {
        let paths = builder.paths
        let guest = builder.state.guest ?? builtinGuest
        let boot: QEMULaunch.Boot
        switch guest.spec.kind {
        case .builtin:
            guard let image else { throw LabError.guestImage("the built-in guest image was not prepared") }
            boot = .builtin(image)
        case .kernel:
            boot = .kernel(path: guest.spec.path ?? "", initrd: guest.spec.initrd, cmdline: guest.spec.cmdline)
        case .disk:
            boot = .disk(path: guest.spec.path ?? "", format: guest.diskFormat ?? "raw")
        }
        var launch = QEMULaunch(accel: verdict.mode, boot: boot, consoleLog: paths.consoleLog)
        launch.name = "netprobe-\(builder.options.name)"
        launch.memoryMiB = guest.memoryMiB
        launch.vcpus = guest.vcpus
        launch.extraArguments = guest.qemuArguments
        if guest.spec.kind == .builtin, let address = builder.options.guest.staticAddress {
            // The built-in guest takes a static address from its command line (np.ip=).
            launch.guestAddress = "\(address)/\(LabNetwork.prefixLength)"
        }
        let what = guest.spec.kind == .builtin ? "the Redis guest (kernel \(image?.kernelVersion ?? "?"), \(verdict.mode))"
                                               : "guest \(guest.spec) (\(verdict.mode), \(guest.addressing.rawValue) address)"
        let vhost = builder.options.setup == .vhostNet
        if let libvirt {
            try builder.buildBridge()
            try builder.startNetworkServices(on: LabNetwork.bridge)
            builder.progress("starting libvirtd and virtlogd inside \(builder.namespace.name)")
            try libvirt.startDaemons { pid, what in try builder.addProcess(pid, what) }
            builder.progress("defining and starting libvirt domain \(builder.options.name) (type \(verdict.mode == "kvm" ? "kvm" : "qemu")): \(what)")
            let xml = LibvirtDomain.xml(name: builder.options.name, lab: builder.options.name, type: verdict.mode == "kvm" ? "kvm" : "qemu", launch: launch,
                                        bridge: LabNetwork.bridge, mac: guest.mac, vhost: vhost)
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
            try builder.startNetworkServices(on: LabNetwork.client)
            device = tapDevice
            network = .init(netdev: "tap,id=n0,fd=3", mac: mac)
        default:
            try builder.buildBridge()
            try builder.buildTap()
            try builder.startNetworkServices(on: LabNetwork.bridge)
            let netdev = "tap,id=n0,ifname=\(LabNetwork.tap),script=no,downscript=no" + (vhost ? ",vhost=on,vhostforce=on" : "")
            network = .init(netdev: netdev, mac: guest.mac)
        }
        builder.progress("booting \(what); console: \(paths.consoleLog)")
        let pid = try launch.startDaemon(in: builder.namespace, network: network, inheritedDevice: device, pidFile: paths.qemuPidFile)
        try builder.addProcess(pid, "qemu")
    }
}
