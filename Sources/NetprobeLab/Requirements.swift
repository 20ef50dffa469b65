import Foundation
import NetprobeModel

/// The programs each part of the lab runs, and the Debian package that has each one: checked
/// before anything is created, so a missing program gives one clear error listing the packages.
enum Requirements {
    /// A program and the Debian package that installs it.
    struct Tool: Sendable {
        var command: String
        var package: String
        /// Where it must be when it is not looked up in PATH (busybox-static's /bin/busybox).
        var path: String? = nil
        /// Further packages to install with `package` when the tool is missing.
        var alsoNeeds: [String] = []
        /// How to name the tool in the error, when not by `path` or `command`.
        var label: String? = nil
    }

    static let network = [Tool(command: "ip", package: "iproute2"), Tool(command: "redis-cli", package: "redis-tools")]
    static let hostRedis = [Tool(command: "redis-server", package: "redis-server")]
    static let guest = [
        Tool(command: "qemu-system-x86_64", package: "qemu-system-x86"),
        Tool(command: "busybox", package: "busybox-static", path: GuestImageBuilder.busyboxPath),
        Tool(command: "redis-server", package: "redis-server", path: GuestImageBuilder.redisServerPath),
        Tool(command: "apt-get", package: "apt"),
        Tool(command: "apt-cache", package: "apt"),
        Tool(command: "dpkg-deb", package: "dpkg"),
        Tool(command: "ldd", package: "libc-bin"),
        Tool(command: "gzip", package: "gzip"),
        Tool(command: "sha256sum", package: "coreutils"),
    ]
    /// The daemons as `LabLibvirt.Daemon` finds them (PATH, or NETPROBE_LIBVIRTD / NETPROBE_VIRTLOGD).
    static var libvirt: [Tool] { [
        Tool(command: LabLibvirt.Daemon.libvirtd.program, package: "libvirt-daemon", alsoNeeds: ["libvirt-daemon-driver-qemu"],
             label: LabLibvirt.Daemon.libvirtd.label),
        Tool(command: LabLibvirt.Daemon.virtlogd.program, package: "libvirt-daemon", label: LabLibvirt.Daemon.virtlogd.label),
        Tool(command: "virsh", package: "libvirt-clients"),
        Tool(command: "libvirt_driver_qemu.so", package: "libvirt-daemon-driver-qemu",
             path: "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so"),
    ] }

    /// The tools a setup needs.
    static func tools(for setup: LabSetup, libvirt: Bool) -> [Tool] {
        var tools = network
        tools += setup.hasGuest ? guest : hostRedis
        if libvirt { tools += Self.libvirt }
        return tools
    }

    /// Throws `LabError.missingPackages` naming every missing program and its package.
    static func check(_ tools: [Tool]) throws {
        var missingTools: [String] = []
        var packages: [String] = []
        for tool in tools {
            let present = tool.path.map { FileManager.default.fileExists(atPath: $0) } ?? (Command.find(tool.command) != nil)
            if !present {
                missingTools.append(tool.label ?? tool.path ?? tool.command)
                for package in [tool.package] + tool.alsoNeeds where !packages.contains(package) { packages.append(package) }
            }
        }
        guard missingTools.isEmpty else { throw LabError.missingPackages(tools: missingTools, packages: packages) }
        if tools.contains(where: { $0.package == "busybox-static" }), ELFFile.isDynamicallyLinked(path: GuestImageBuilder.busyboxPath) {
            throw LabError.missingPackages(
                tools: ["\(GuestImageBuilder.busyboxPath) is dynamically linked (the `busybox` package); the guest needs a static one"],
                packages: ["busybox-static"])
        }
    }
}
