import Foundation

/// The QEMU command line that boots the Redis guest (direct kernel boot, one virtio-net NIC,
/// serial console to a file, no other devices).
struct QEMULaunch {
    static let binary = "qemu-system-x86_64"

    /// The guest's NIC backend: `-netdev` text with id `n0`, and the NIC's MAC address.
    struct Network {
        var netdev: String
        var mac: String
    }

    /// "kvm" or "tcg".
    var accel: String
    var image: GuestImage
    /// Where the guest's serial console (its kernel log and init's lines) is written.
    var consoleLog: String
    var memoryMiB = 512
    /// The guest's eth0 address, handed to its init on the kernel command line (`np.ip=`).
    var guestAddress = "\(LabNetwork.guestAddress)/\(LabNetwork.prefixLength)"
    var extraKernelArguments: [String] = []
    /// Process name (`-name`), shown in ps.
    var name = "netprobe-guest"

    var kernelCommandLine: String {
        (["console=ttyS0", "panic=-1", "np.ip=\(guestAddress)"] + extraKernelArguments).joined(separator: " ")
    }

    /// The arguments after the program name; `network: nil` boots without a NIC.
    func arguments(network: Network?) -> [String] {
        var args = [
            "-name", name, "-accel", accel, "-m", "\(memoryMiB)", "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "file:\(consoleLog)", "-no-reboot",
            "-kernel", image.kernel, "-initrd", image.initrd, "-append", kernelCommandLine,
        ]
        if let network {
            args += ["-netdev", network.netdev, "-device", "virtio-net-pci,netdev=n0,mac=\(network.mac)"]
        }
        return args
    }

    /// Starts QEMU inside `namespace` as a daemon (`-daemonize -pidfile`): QEMU sets up its
    /// devices, reports errors before detaching, and returns. `inheritedDevice` is opened
    /// read-write as fd 3 first (a macvtap's /dev/tapN for `-netdev tap,fd=3`).
    /// Returns the daemon's pid.
    func startDaemon(in namespace: Netns, network: Network, inheritedDevice: String? = nil, pidFile: String) throws -> Int32 {
        var argv = [Self.binary] + arguments(network: network) + ["-daemonize", "-pidfile", pidFile]
        if let inheritedDevice {
            // The shell opens the device as fd 3 and execs QEMU, which inherits it.
            argv = ["/bin/sh", "-c", "exec 3<>\"$0\" && exec \"$@\"", inheritedDevice] + argv
        }
        let out = try namespace.exec(argv, timeout: 120)
        guard out.succeeded else {
            throw LabError.processDied(what: "QEMU", detail: "did not start (exit status \(out.status)): `\(Command.display(argv))`",
                                       logTail: (out.stderr + out.stdout).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        guard let pid = PidFile.wait(pidFile, seconds: 10) else {
            throw LabError.processDied(what: "QEMU", detail: "wrote no pid file \(pidFile)", logTail: out.stderr)
        }
        return pid
    }
}

/// Pid files written by daemons (QEMU, redis-server, libvirtd, virtlogd).
enum PidFile {
    /// The pid in `path`, or nil.
    static func read(_ path: String) -> Int32? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Waits up to `seconds` for `path` to hold a pid of a live process.
    static func wait(_ path: String, seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if let pid = read(path), ProcessTable.isAlive(pid) { return pid }
            usleep(50_000)
        } while Date() < deadline
        return nil
    }
}
