import Foundation

/// The QEMU command line that boots a lab guest: one virtio-net NIC, serial console to a file,
/// no other devices but the boot medium (the built-in guest's kernel and initramfs, a user's
/// kernel, or a user's disk image on virtio-blk).
struct QEMULaunch {
    static let binary = "qemu-system-x86_64"

    /// The guest's NIC backend: `-netdev` text with id `n0`, and the NIC's MAC address.
    struct Network {
        var netdev: String
        var mac: String
    }

    /// What the guest boots from.
    enum Boot: Equatable {
        /// netprobe's own microVM: its kernel, its initramfs and `np.ip=` on the command line.
        case builtin(GuestImage)
        /// A kernel QEMU loads itself (bzImage or multiboot ELF), with an optional initrd and command line.
        case kernel(path: String, initrd: String?, cmdline: String?)
        /// A disk image the firmware boots from virtio-blk; the file is never written (`snapshot=on`).
        case disk(path: String, format: String)
    }

    /// "kvm" or "tcg".
    var accel: String
    var boot: Boot
    /// Where the guest's serial console (its kernel log and init's lines) is written.
    var consoleLog: String
    var memoryMiB = 512
    var vcpus = 1
    /// Arguments added at the end (`--qemu-commandline`).
    var extraArguments: [String] = []
    /// The built-in guest's eth0 address, handed to its init on the kernel command line (`np.ip=`).
    var guestAddress = "\(LabNetwork.guestAddress)/\(LabNetwork.prefixLength)"
    var extraKernelArguments: [String] = []
    /// Process name (`-name`), shown in ps.
    var name = "netprobe-guest"

    init(accel: String, boot: Boot, consoleLog: String) {
        self.accel = accel
        self.boot = boot
        self.consoleLog = consoleLog
    }

    /// The built-in guest.
    init(accel: String, image: GuestImage, consoleLog: String) {
        self.init(accel: accel, boot: .builtin(image), consoleLog: consoleLog)
    }

    /// The kernel command line (nil when QEMU passes none: a disk boot, or a kernel without one).
    var kernelCommandLine: String? {
        switch boot {
        case .builtin: return (["console=ttyS0", "panic=-1", "np.ip=\(guestAddress)"] + extraKernelArguments).joined(separator: " ")
        case .kernel(_, _, let cmdline): return cmdline
        case .disk: return nil
        }
    }

    /// The kernel and initrd QEMU loads itself (nil for a disk boot).
    var kernelFiles: (kernel: String, initrd: String?)? {
        switch boot {
        case .builtin(let image): return (image.kernel, image.initrd)
        case .kernel(let path, let initrd, _): return (path, initrd)
        case .disk: return nil
        }
    }

    /// The arguments after the program name; `network: nil` boots without a NIC.
    func arguments(network: Network?) -> [String] {
        var args = [
            "-name", name, "-accel", accel, "-m", "\(memoryMiB)", "-smp", "\(vcpus)",
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "file:\(consoleLog)", "-no-reboot",
        ]
        if let (kernel, initrd) = kernelFiles {
            args += ["-kernel", kernel]
            if let initrd { args += ["-initrd", initrd] }
            if let line = kernelCommandLine { args += ["-append", line] }
        }
        if case .disk(let path, let format) = boot {
            // graphics=off: SeaBIOS writes to the serial console, so "No bootable device" is seen;
            // reboot-timeout=0 with -no-reboot: QEMU then exits instead of retrying every minute.
            args += ["-machine", "graphics=off", "-boot", "reboot-timeout=0",
                     "-drive", "file=\(path.replacingOccurrences(of: ",", with: ",,")),if=virtio,format=\(format),snapshot=on"]
        }
        if let network {
            // A disk boot without the NIC's option ROM: iPXE would otherwise try a network boot
            // (and get the lab's DHCP lease) when the disk does not boot.
            let rom: String
            if case .disk = boot { rom = ",romfile=" } else { rom = "" }
            args += ["-netdev", network.netdev, "-device", "virtio-net-pci,netdev=n0,mac=\(network.mac)\(rom)"]
        }
        return args + extraArguments
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
