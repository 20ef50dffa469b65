import Foundation

/// A network namespace made with `ip netns add` (a file under /run/netns), and the `ip`
/// commands that build links inside it. Nothing here touches the root namespace: every link
/// command runs as `ip -n NAME ...`.
struct Netns: Sendable, Equatable {
    /// Where `ip netns` keeps its namespaces.
    static let directory = "/run/netns"

    let name: String

    /// The namespaces `ip netns list` shows.
    static func list() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    var exists: Bool { FileManager.default.fileExists(atPath: "\(Self.directory)/\(name)") }

    /// Creates the namespace with its loopback up. `marker` becomes lo's alias (ifalias): a
    /// label that lives and dies with the namespace, so that a namespace can later be told to be
    /// the lab's even when its state file is gone (see `Lab.ownership`).
    func create(marker: String? = nil) throws {
        try Command.check(["ip", "netns", "add", name])
        if let marker { try ip("link", "set", "lo", "alias", marker) }
        try ip("link", "set", "lo", "up")
    }

    /// The namespace's identity as /proc/PID/ns/net shows it (`net:[INODE]`), or nil when it is
    /// not there: `ip netns add` bind-mounts the namespace's nsfs file at /run/netns/NAME.
    var identity: String? {
        var info = stat()
        guard stat("\(Self.directory)/\(name)", &info) == 0 else { return nil }
        return "net:[\(info.st_ino)]"
    }

    /// lo's alias in this namespace (the lab's marker), or nil when it has none or the
    /// namespace is not there.
    var marker: String? {
        guard exists, let out = try? Command.run(["ip", "-n", name, "-j", "link", "show", "dev", "lo"], timeout: 10), out.succeeded,
              let infos = try? JSONDecoder().decode([LinkInfo].self, from: Data(out.stdout.utf8)) else { return nil }
        return infos.first?.ifalias
    }

    /// Removes the namespace (nothing when it is not there). Its links go with it; processes
    /// still inside would keep it alive unseen, so end them first (`pids`).
    func delete() throws {
        guard exists else { return }
        try Command.check(["ip", "netns", "delete", name])
    }

    /// Processes whose network namespace is this one (`ip netns pids`).
    func pids() -> [Int32] {
        guard exists, let out = try? Command.run(["ip", "netns", "pids", name], timeout: 20) else { return [] }
        return out.stdout.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
    }

    /// Runs `ip -n NAME ARGS...`; a failure carries ip's stderr.
    @discardableResult
    func ip(_ arguments: String...) throws -> CommandOutput {
        try Command.check(["ip", "-n", name] + arguments)
    }

    /// Runs `argv` inside the namespace (`ip netns exec NAME argv...`), without checking its status.
    func exec(_ argv: [String], timeout: Double = 60) throws -> CommandOutput {
        try Command.run(["ip", "netns", "exec", name] + argv, timeout: timeout)
    }

    /// Like `exec`, but throws with the program's stderr when it fails.
    @discardableResult
    func execChecked(_ argv: [String], timeout: Double = 60) throws -> CommandOutput {
        try Command.check(["ip", "netns", "exec", name] + argv, timeout: timeout)
    }

    /// What `ip -j link show dev LINK` says about a link in this namespace.
    func link(_ link: String) throws -> LinkInfo {
        let out = try ip("-j", "link", "show", "dev", link)
        guard let data = out.stdout.data(using: .utf8),
              let infos = try? JSONDecoder().decode([LinkInfo].self, from: data), let info = infos.first
        else {
            throw LabError.commandFailed(command: "ip -n \(name) -j link show dev \(link)", status: 0, stderr: "unexpected output: \(out.stdout.prefix(200))")
        }
        return info
    }

    /// Reads a sysfs file as this namespace sees it (`ip netns exec` mounts the namespace's /sys).
    func sysfs(_ path: String) throws -> String {
        try execChecked(["cat", path]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: Links

    /// A bridge with `address` (CIDR) as the host side of the lab's /24, up.
    func addBridge(_ bridge: String, address: String) throws {
        try ip("link", "add", bridge, "type", "bridge")
        try ip("addr", "add", address, "dev", bridge)
        try ip("link", "set", bridge, "up")
    }

    /// A tap device (for QEMU's `-netdev tap,ifname=`), enslaved to `bridge`, up.
    func addTap(_ tap: String, bridge: String) throws {
        try ip("tuntap", "add", "dev", tap, "mode", "tap")
        try ip("link", "set", tap, "master", bridge)
        try ip("link", "set", tap, "up")
    }

    /// A veth pair, both ends up.
    func addVethPair(_ end: String, peer: String) throws {
        try ip("link", "add", end, "type", "veth", "peer", "name", peer)
        try ip("link", "set", end, "up")
        try ip("link", "set", peer, "up")
    }
}

/// The fields of `ip -j link show` the lab reads.
struct LinkInfo: Decodable, Sendable {
    var ifindex: Int
    var ifname: String
    var address: String?
    /// The link's alias (`ip link set ... alias`).
    var ifalias: String?
}
