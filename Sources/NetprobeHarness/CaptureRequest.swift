import NetprobeCore

/// What `netprobe capture` is asked to do, as typed values: the command line parses into it, the
/// harness builds one and turns it into that command line (`arguments`) to run capture as a child.
/// The one place where capture's arguments are written.
public struct CaptureRequest: Sendable, Equatable {
    /// An interface's role on the path, as `--role IFACE=ROLE` gives it.
    public struct RoleAssignment: Sendable, Equatable {
        public var interface: String
        /// bridge, tap, macvtap, parent, client, host, veth (stored as given).
        public var role: String
        public init(interface: String, role: String) {
            self.interface = interface
            self.role = role
        }
        /// From `IFACE=ROLE`; nil without an `=`.
        public init?(parsing text: String) {
            let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 else { return nil }
            self.init(interface: parts[0], role: parts[1])
        }
    }

    /// `-i`: capture on these interfaces (or `vm`).
    public var interfaces: [String] = []
    /// `--vm`: the libvirt domain whose interfaces to capture on.
    public var vm: String?
    /// `-c`: the libvirt URI for `vm`.
    public var libvirtURI: String?
    /// `-f`: the BPF filter (default: the Redis port).
    public var filter: String?
    /// `-s`: snapshot length; 0 means whole packets.
    public var snapLength: Int32 = 2048
    /// `-B`: kernel buffer per interface, KiB.
    public var bufferKiB: Int32 = 65_536
    /// `--duration`: stop after this long.
    public var duration: TimeSpan?
    /// `-w`: the trace file.
    public var output = "trace.pcapng"
    /// `--netns`: the namespace of the interfaces.
    public var namespace: String?
    /// `--redis`: Redis to ask for INFO (HOST:PORT).
    public var redis: String?
    /// `--redis-password-file`: the password for INFO's AUTH (else $REDISCLI_AUTH).
    public var redisPasswordFile: String?
    /// `--role`: roles given on the command line.
    public var roles: [RoleAssignment] = []
    /// `--immediate-mode`.
    public var immediateMode = false
    /// `--quiet`.
    public var quiet = false
    /// `--kernel-events`: which tracepoints to record beside the packets (none, essential, all).
    public var kernelEvents: KernelEventSelection = .essential
    /// After `--`: the load command.
    public var load: [String] = []

    public init() {}

    /// The command line of `netprobe capture` for this request (without the program).
    public var arguments: [String] {
        var a = ["capture"]
        for i in interfaces { a += ["-i", i] }
        if let vm { a += ["--vm", vm] }
        if let libvirtURI { a += ["-c", libvirtURI] }
        if let namespace { a += ["--netns", namespace] }
        a += ["-w", output]
        if let redis { a += ["--redis", redis] }
        if let redisPasswordFile { a += ["--redis-password-file", redisPasswordFile] }
        if let duration { a += ["--duration", duration.description] }
        if let filter { a += ["-f", filter] }
        if snapLength != 2048 { a += ["-s", "\(snapLength)"] }
        if bufferKiB != 65_536 { a += ["-B", "\(bufferKiB)"] }
        for r in roles { a += ["--role", "\(r.interface)=\(r.role)"] }
        if immediateMode { a.append("--immediate-mode") }
        if quiet { a.append("--quiet") }
        if kernelEvents != .essential { a += ["--kernel-events", kernelEvents.rawValue] }
        if !load.isEmpty { a += ["--"] + load }
        return a
    }
}

/// Which kernel tracepoints a capture records beside the packets.
public enum KernelEventSelection: String, Sendable, Equatable, CaseIterable {
    /// None: packets only.
    case none
    /// What the report's hops use: transmit and receive per device, copies to readers, qdisc
    /// dequeues, drops.
    case essential
    /// `essential` and the scheduler's events of the backend's threads (sched_switch,
    /// sched_wakeup), so that the report can tell a busy backend from a starved, stopped or
    /// unwoken one. Not the default: they cost the traffic about 9 % of its median request time
    /// on the bridge lab (scripts/kevents-latency), where essential costs about 2 %.
    case scheduler
    /// Every tracepoint the recorder knows (twice the events: for looking at the kernel's path in detail).
    case all

    /// The tracepoints, or nil for none.
    public var kinds: [KernelEventKind]? {
        switch self {
        case .none: nil
        case .essential: KernelEventKind.essential
        case .scheduler: KernelEventKind.essential + KernelEventKind.scheduler
        case .all: KernelEventKind.allCases
        }
    }
}
