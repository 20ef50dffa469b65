import Foundation
import NetprobeCore

/// A libvirtd (with its virtlogd) of the lab's own, running inside the lab's network namespace so
/// that the taps it makes for a domain live there too.
///
/// The host's libvirt configuration is left alone: both daemons start in a mount namespace of
/// their own (the one `ip netns exec` makes) where private folders from the lab's state folder
/// are bind-mounted over /etc/libvirt (qemu.conf: user and group root, `security_driver = "none"`,
/// `cgroup_controllers = [ ]`), /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt, and
/// private copies of /etc/passwd and /etc/group that add the `kvm` group and the `libvirt-qemu`
/// user and group the QEMU driver looks up at start (Debian's libvirt-daemon-system would create
/// them). Missing mount points are created empty and removed by `down`.
///
/// The sockets: a Unix socket bound to a path is reachable from every network namespace (only
/// abstract sockets belong to one), so what matters is the path. When /run/libvirt does not exist
/// on the host, it becomes a symbolic link to the lab's private run folder: the daemons create
/// their sockets there and `qemu:///system` reaches them from the root namespace and from inside
/// the lab's namespace alike. When the host has a /run/libvirt of its own, the private run folder
/// is bind-mounted over it for the daemons only, and the URI names the socket explicitly
/// (`qemu:///system?socket=...`).
struct LabLibvirt {
    /// Where libvirt's clients look for the system daemon's sockets.
    static let hostRunDirectory = "/run/libvirt"
    /// Folders hidden behind private ones for the daemons.
    static let privateMounts = [
        ("etc", "/etc/libvirt"), ("lib", "/var/lib/libvirt"), ("log", "/var/log/libvirt"), ("cache", "/var/cache/libvirt"),
    ]
    /// What the daemons see as /var/cache/libvirt: kept across labs, so that the QEMU driver's
    /// capability cache (probing two QEMU binaries takes about 8 s under TCG here) is made once.
    /// libvirt checks each entry against the QEMU binary, libvirt and the host before using it.
    static let sharedCacheDirectory = "/var/cache/netprobe/libvirt"

    /// Where the daemons' sockets live.
    enum RunDirectory: Equatable {
        /// /run/libvirt is a link to the lab's run folder: plain qemu:///system works everywhere.
        case linked
        /// The host has its own /run/libvirt: the daemons see the lab's folder mounted over it.
        case mounted
    }

    /// The two daemons. Each is run as found in PATH, or as the environment variable
    /// NETPROBE_LIBVIRTD / NETPROBE_VIRTLOGD names it (a path or a program name): for a libvirt
    /// installed elsewhere, and for checking what `up --libvirt` does when libvirtd is missing.
    enum Daemon: String, CaseIterable, Sendable {
        case libvirtd, virtlogd

        /// The environment variable that overrides the program.
        var variable: String { "NETPROBE_\(rawValue.uppercased())" }

        /// The program to run: the override when set and not empty, else the daemon's name.
        var program: String {
            if let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty { return value }
            return rawValue
        }

        /// "libvirtd" or, when overridden, "libvirtd (NETPROBE_LIBVIRTD=/x/libvirtd)": for messages.
        var label: String { program == rawValue ? rawValue : "\(rawValue) (\(variable)=\(program))" }

        /// The Debian packages a working daemon comes from: the daemon alone is no use to the lab
        /// without the QEMU driver, which `--no-install-recommends` would leave out.
        static let packages = ["libvirt-daemon", "libvirt-daemon-driver-qemu"]
    }

    let namespace: Netns
    let paths: LabPaths
    let runDirectory: RunDirectory

    var directory: String { paths.libvirtDirectory }
    var runFolder: String { "\(directory)/run" }

    /// The URI that reaches this libvirtd, from the root namespace and from the lab's.
    var uri: String {
        runDirectory == .linked ? "qemu:///system" : "qemu:///system?socket=\(runFolder)/libvirt-sock"
    }

    /// Checks what is at /run/libvirt and decides where the sockets go. A link left by a lab
    /// that is gone is removed; a link of a lab that still runs libvirtd is a conflict.
    static func plan(namespace: Netns, paths: LabPaths) throws -> LabLibvirt {
        let fm = FileManager.default
        let path = hostRunDirectory
        if let target = try? fm.destinationOfSymbolicLink(atPath: path) {
            let labs = LabState.stateDirectory + "/"
            if target.hasPrefix(labs) {
                let owner = String(target.dropFirst(labs.count).split(separator: "/").first ?? "")
                let ownerAlive = owner != paths.name && (LabStore.load(owner)?.processes.contains {
                    $0.what == "libvirtd" && ProcessTable.isAlive($0.pid)
                } ?? false)
                if ownerAlive {
                    throw LabError.conflict("lab \(owner) already runs a libvirtd whose sockets are at \(path); one --libvirt lab at a time: netprobe lab down \(owner)")
                }
                unlink(path)  // left by a lab that is gone
                return LabLibvirt(namespace: namespace, paths: paths, runDirectory: .linked)
            }
        }
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDirectory) {
            return LabLibvirt(namespace: namespace, paths: paths, runDirectory: .mounted)
        }
        return LabLibvirt(namespace: namespace, paths: paths, runDirectory: .linked)
    }

    /// Writes the private configuration, starts virtlogd and libvirtd inside the namespace, and
    /// waits until libvirtd answers. `record` is called with each daemon's pid as soon as it is known.
    func startDaemons(record: (Int32, String) throws -> Void) throws {
        let created = CreatedPaths(paths: paths)
        for (sub, _) in Self.privateMounts { try GuestImageBuilder.makeDirectory(source(sub)) }
        try GuestImageBuilder.makeDirectory(runFolder)
        try writeConfiguration()
        for (_, mountPoint) in Self.privateMounts where !FileManager.default.fileExists(atPath: mountPoint) {
            try GuestImageBuilder.makeDirectory(mountPoint)
            try created.record(.directory, mountPoint)
        }
        if runDirectory == .linked {
            do { try FileManager.default.createSymbolicLink(atPath: Self.hostRunDirectory, withDestinationPath: runFolder) } catch {
                throw LabError.file(path: Self.hostRunDirectory, detail: "cannot link it to \(runFolder): \(error.localizedDescription)")
            }
            try created.record(.symlink, Self.hostRunDirectory)
        }

        // One shell in the namespace's own mount namespace: mounts, then both daemons. Its exit
        // status says which step failed (10 a mount, 11 virtlogd, 12 libvirtd).
        var script = ""
        for (sub, mountPoint) in Self.privateMounts { script += "mount --bind \(source(sub)) \(mountPoint) || exit 10\n" }
        script += "mount --bind \"$0/passwd\" /etc/passwd || exit 10\nmount --bind \"$0/group\" /etc/group || exit 10\n"
        if runDirectory == .mounted { script += "mount --bind \"$0/run\" \(Self.hostRunDirectory) || exit 10\n" }
        script += "\"$1\" -d -p \"$0/virtlogd.pid\" || { echo \"virtlogd: exit status $?\" >&2; exit 11; }\n"
        script += "\"$2\" -d -p \"$0/libvirtd.pid\" || { echo \"libvirtd: exit status $?\" >&2; exit 12; }\n"
        let argv = ["/bin/sh", "-c", script, directory, Daemon.virtlogd.program, Daemon.libvirtd.program]
        let out = try namespace.exec(argv, timeout: 60)
        switch out.status {
        case 0: break
        case 11: throw diedWhileStarting(.virtlogd, detail: out.stderr)
        case 12: throw diedWhileStarting(.libvirtd, detail: out.stderr)
        default:
            throw LabError.commandFailed(command: Command.display(["ip", "netns", "exec", namespace.name] + argv), status: out.status,
                                         stderr: out.stderr.isEmpty ? out.stdout : out.stderr)
        }

        guard let logd = PidFile.wait("\(directory)/virtlogd.pid", seconds: 10) else {
            throw diedWhileStarting(.virtlogd, detail: "it reported success but did not stay up")
        }
        try record(logd, "virtlogd")
        guard let daemon = PidFile.wait("\(directory)/libvirtd.pid", seconds: 10) else {
            throw diedWhileStarting(.libvirtd, detail: "it reported success but did not stay up")
        }
        try record(daemon, "libvirtd")

        // libvirtd forks before its drivers start: wait until it answers on its socket.
        let deadline = Date().addingTimeInterval(30)
        var last = ""
        while Date() < deadline {
            guard ProcessTable.isAlive(daemon) else {
                throw diedWhileStarting(.libvirtd, detail: "pid \(daemon) exited before it answered at \(uri)")
            }
            if let out = try? virsh(["version"], timeout: 10), out.succeeded { return }
            last = (try? virsh(["version"], timeout: 10))?.stderr ?? ""
            usleep(300_000)
        }
        throw LabError.libvirt("libvirtd (pid \(daemon)) did not answer at \(uri) within 30 s: \(last)\n\(LogFile.tail("\(directory)/libvirtd.log"))")
    }

    /// The folder mounted over a private mount's mount point (lab names have no shell metacharacters).
    func source(_ sub: String) -> String { sub == "cache" ? Self.sharedCacheDirectory : "\(directory)/\(sub)" }

    /// The error for a daemon that exited while starting: which program, what it said, its log,
    /// and where a working one comes from.
    func diedWhileStarting(_ daemon: Daemon, detail: String) -> LabError {
        let log = LogFile.tail("\(directory)/\(daemon.rawValue).log")
        let said = detail.trimmingCharacters(in: .whitespacesAndNewlines)
        return .processDied(
            what: daemon.label,
            detail: "exited while starting in namespace \(namespace.name)" + (said.isEmpty ? "" : " (\(said))")
                + ". Check that it runs on this host (`\(daemon.program) --version`); the lab needs the Debian packages "
                + "\(Daemon.packages.joined(separator: " ")) (apt-get install -y --no-install-recommends \(Daemon.packages.joined(separator: " ")))",
            logTail: log)
    }

    /// The socket clients of `uri` connect to.
    var socketPath: String { runDirectory == .linked ? "\(Self.hostRunDirectory)/libvirt-sock" : "\(runFolder)/libvirt-sock" }

    /// Why `virsh STEP` failed once libvirtd had answered: libvirtd died, cannot be reached, is
    /// stopped, or the step itself failed (then with the domain's QEMU log).
    func failure(_ step: [String], virshSaid: String, domain: String) -> LabError {
        let said = virshSaid.trimmingCharacters(in: .whitespacesAndNewlines)
        let command = "virsh -c \(uri) \(step.joined(separator: " "))"
        guard let pid = PidFile.read("\(directory)/libvirtd.pid"), ProcessTable.isAlive(pid) else {
            return .processDied(what: "libvirtd", detail: "exited while the lab ran `\(command)` (virsh: \(said))",
                                logTail: LogFile.tail("\(directory)/libvirtd.log"))
        }
        if ProcessTable.state(pid) == "T" {
            return .libvirt("libvirtd (pid \(pid)) is stopped (SIGSTOP?) and does not answer: `\(command)`: \(said)")
        }
        if !FileManager.default.fileExists(atPath: socketPath) {
            return .libvirt("libvirtd (pid \(pid)) runs but cannot be reached at \(uri): its socket \(socketPath) is gone (`\(command)`: \(said))")
        }
        return .libvirt("`\(command)` failed: \(said)\n\(LogFile.tail("\(directory)/log/qemu/\(domain).log"))")
    }

    /// qemu.conf, libvirtd.conf and virtlogd.conf for the private /etc/libvirt; passwd and group.
    func writeConfiguration() throws {
        let qemu = """
            # netprobe lab: QEMU runs as root without confinement or cgroups (nothing here manages them).
            user = "root"
            group = "root"
            security_driver = "none"
            cgroup_controllers = [ ]

            """
        try GuestImageBuilder.write(Array(qemu.utf8), to: "\(directory)/etc/qemu.conf")
        try GuestImageBuilder.write(Array("log_outputs = \"3:file:\(directory)/libvirtd.log\"\n".utf8), to: "\(directory)/etc/libvirtd.conf")
        try GuestImageBuilder.write(Array("log_outputs = \"3:file:\(directory)/virtlogd.log\"\n".utf8), to: "\(directory)/etc/virtlogd.conf")
        let (passwd, group) = Self.accounts(
            passwd: LogFile.read("/etc/passwd"), group: LogFile.read("/etc/group"))
        try GuestImageBuilder.write(Array(passwd.utf8), to: "\(directory)/passwd")
        try GuestImageBuilder.write(Array(group.utf8), to: "\(directory)/group")
    }

    /// The host's passwd and group with `kvm` and `libvirt-qemu` added where missing (ids not in use).
    static func accounts(passwd: String, group: String) -> (passwd: String, group: String) {
        func ids(_ text: String) -> Set<Int> { Set(text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            return f.count > 2 ? Int(f[2]) : nil
        }) }
        func has(_ text: String, _ name: String) -> Bool { text.split(separator: "\n").contains { $0.hasPrefix("\(name):") } }
        func free(_ used: Set<Int>, from start: Int) -> Int {
            var id = start
            while used.contains(id) { id += 1 }
            return id
        }
        var passwd = passwd.hasSuffix("\n") || passwd.isEmpty ? passwd : passwd + "\n"
        var group = group.hasSuffix("\n") || group.isEmpty ? group : group + "\n"
        var groupIDs = ids(group)
        if !has(group, "kvm") {
            let gid = free(groupIDs, from: 64054)
            group += "kvm:x:\(gid):\n"
            groupIDs.insert(gid)
        }
        var qemuGID = 0
        if !has(group, "libvirt-qemu") {
            qemuGID = free(groupIDs, from: 64055)
            group += "libvirt-qemu:x:\(qemuGID):\n"
        } else if let line = group.split(separator: "\n").first(where: { $0.hasPrefix("libvirt-qemu:") }) {
            qemuGID = Int(line.split(separator: ":", omittingEmptySubsequences: false)[2]) ?? 0
        }
        if !has(passwd, "libvirt-qemu") {
            let uid = free(ids(passwd), from: 64055)
            passwd += "libvirt-qemu:x:\(uid):\(qemuGID):Libvirt Qemu (netprobe lab):/var/lib/libvirt:/usr/sbin/nologin\n"
        }
        return (passwd, group)
    }

    /// Runs `virsh -c URI ARGS...` (from the host; the URI reaches the namespaced daemon).
    func virsh(_ arguments: [String], timeout: Double = 60) throws -> CommandOutput {
        try Command.run(["virsh", "-c", uri] + arguments, timeout: timeout)
    }

    /// Defines the domain from `xml` and starts it; returns the pid of its QEMU.
    func defineAndStart(name: String, xml: String) throws -> Int32 {
        let file = "\(directory)/\(name).xml"
        try GuestImageBuilder.write(Array(xml.utf8), to: file)
        for (arguments, timeout) in [(["define", file], 30.0), (["start", name], 120)] {
            let out: CommandOutput
            do { out = try virsh(arguments, timeout: timeout) } catch LabError.commandTimedOut(_, let seconds) {
                throw failure(arguments, virshSaid: "no answer within \(Int(seconds)) s", domain: name)
            }
            guard out.succeeded else { throw failure(arguments, virshSaid: out.stderr, domain: name) }
        }
        guard let pid = PidFile.wait("\(runFolder)/qemu/\(name).pid", seconds: 10) else {
            throw LabError.libvirt("domain \(name) started but its QEMU pid file \(runFolder)/qemu/\(name).pid did not appear")
        }
        return pid
    }

    /// The domain's interfaces as `virsh domiflist` lists them: (interface, source).
    func interfaces(of name: String) throws -> [(interface: String, source: String)] {
        let out = try virsh(["domiflist", name], timeout: 30)
        guard out.succeeded else { throw LabError.libvirt("virsh -c \(uri) domiflist \(name): \(out.stderr)") }
        return Self.parseDomiflist(out.stdout)
    }

    /// Rows of `virsh domiflist` ("vnet0   bridge   virbr0   virtio   52:54:00:..."), after the dashes.
    static func parseDomiflist(_ text: String) -> [(interface: String, source: String)] {
        var rows: [(String, String)] = []
        var seenRule = false
        for line in text.split(separator: "\n") {
            if line.hasPrefix("---") { seenRule = true; continue }
            let fields = line.split(whereSeparator: \.isWhitespace).map(String.init)
            if seenRule, fields.count >= 3 { rows.append((fields[0], fields[2])) }
        }
        return rows
    }

    /// Stops and undefines domain `name` at `uri` (best effort: teardown goes on regardless).
    static func removeDomain(_ name: String, uri: String) {
        _ = try? Command.run(["virsh", "-c", uri, "destroy", name], timeout: 20)
        _ = try? Command.run(["virsh", "-c", uri, "undefine", name], timeout: 20)
    }
}

/// The libvirt domain XML for the lab's guest.
enum LibvirtDomain {
    /// libvirt's namespace for raw QEMU arguments (`<qemu:commandline>`).
    static let qemuNamespace = "http://libvirt.org/schemas/domain/qemu/1.0"

    /// A domain of `type` (qemu for TCG, kvm) booting what `launch` boots (a kernel directly, or
    /// a disk image on virtio-blk that is never written: `<transient/>`), with one virtio NIC on
    /// `bridge`, the serial console written to `consoleLog`, ACPI, APIC and HPET (OSv halts at
    /// boot without ACPI, and libvirt passes `-no-acpi` when `<acpi/>` is missing), marked as lab
    /// `lab`'s (`LabDomainMark`: `down` removes only what carries it).
    static func xml(name: String, lab: String, type: String, launch: QEMULaunch, bridge: String, mac: String, vhost: Bool) -> String {
        func e(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "'", with: "&apos;")
        }
        var os = "<type arch='x86_64' machine='pc'>hvm</type>"
        var disk = ""
        var extra = launch.extraArguments
        if let (kernel, initrd) = launch.kernelFiles {
            os += "\n    <kernel>\(e(kernel))</kernel>"
            if let initrd { os += "\n    <initrd>\(e(initrd))</initrd>" }
            if let line = launch.kernelCommandLine { os += "\n    <cmdline>\(e(line))</cmdline>" }
        }
        if case .disk(let path, let format) = launch.boot {
            os += "\n    <boot dev='hd'/>\n    <bios rebootTimeout='0'/>"
            disk = """

                    <disk type='file' device='disk'>
                      <driver name='qemu' type='\(e(format))'/>
                      <source file='\(e(path))'/>
                      <target dev='vda' bus='virtio'/>
                      <transient/>
                    </disk>
                """
            // SeaBIOS on the serial console, as without libvirt (`QEMULaunch`).
            extra = ["-machine", "graphics=off"] + extra
        }
        let commandline = extra.isEmpty ? "" : "\n  <qemu:commandline>\n" + extra.map { "    <qemu:arg value='\(e($0))'/>\n" }.joined() + "  </qemu:commandline>"
        return """
            <domain type='\(e(type))'\(extra.isEmpty ? "" : " xmlns:qemu='\(qemuNamespace)'")>
              <name>\(e(name))</name>
              <description>Redis guest made by netprobe lab</description>
              \(LabDomainMark.metadata(lab: lab))
              <memory unit='MiB'>\(launch.memoryMiB)</memory>
              <vcpu>\(launch.vcpus)</vcpu>
              <os>
                \(os)
              </os>
              <features>
                <acpi/>
                <apic/>
              </features>
              <clock offset='utc'>
                <timer name='hpet' present='yes'/>
              </clock>
              <on_poweroff>destroy</on_poweroff>
              <on_reboot>destroy</on_reboot>
              <on_crash>destroy</on_crash>
              <devices>
                <emulator>\(e(Command.find(QEMULaunch.binary) ?? "/usr/bin/\(QEMULaunch.binary)"))</emulator>\(disk)
                <interface type='bridge'>
                  <source bridge='\(e(bridge))'/>
                  <mac address='\(e(mac))'/>
                  <model type='virtio'/>\(vhost ? "\n      <driver name='vhost'/>" : "")\(disk.isEmpty ? "" : "\n      <rom enabled='no'/>")
                </interface>
                <serial type='file'>
                  <source path='\(e(launch.consoleLog))'/>
                  <target port='0'/>
                </serial>
                <memballoon model='none'/>
              </devices>\(commandline)
            </domain>

            """
    }
}
