import Foundation
import Testing
@testable import NetprobeLab

/// Parts of the lab that need neither root nor a guest.
@Suite("lab building blocks")
struct LabUnitTests {
    // MARK: initramfs

    /// Reads a newc archive back: (name, mode, data) per entry, checking magic and alignment.
    static func entries(_ bytes: [UInt8]) throws -> [(name: String, mode: UInt32, data: [UInt8], rdev: (UInt32, UInt32))] {
        var out: [(String, UInt32, [UInt8], (UInt32, UInt32))] = []
        var at = 0
        func field(_ i: Int) -> UInt32 { UInt32(String(decoding: bytes[(at + 6 + i * 8)..<(at + 14 + i * 8)], as: UTF8.self), radix: 16)! }
        while true {
            try #require(at % 4 == 0, "entry at \(at) is not 4-byte aligned")
            try #require(String(decoding: bytes[at..<(at + 6)], as: UTF8.self) == "070701")
            let mode = field(1), size = Int(field(6)), nameSize = Int(field(11)), rdev = (field(9), field(10))
            let nameStart = at + 110
            let name = String(decoding: bytes[nameStart..<(nameStart + nameSize - 1)], as: UTF8.self)
            #expect(bytes[nameStart + nameSize - 1] == 0)
            var dataStart = nameStart + nameSize
            while dataStart % 4 != 0 { dataStart += 1 }
            if name == "TRAILER!!!" { break }
            out.append((name, mode, Array(bytes[dataStart..<(dataStart + size)]), rdev))
            at = dataStart + size
            while at % 4 != 0 { at += 1 }
        }
        return out
    }

    @Test("newc archive: parents first, modes, symlink targets, device numbers, trailer, 4-byte alignment")
    func newcArchive() throws {
        var archive = NewcArchive()
        archive.file("/usr/bin/redis-server", contents: [1, 2, 3], permissions: 0o755)
        archive.symlink("bin/sh", target: "/bin/busybox")
        archive.characterDevice("dev/console", major: 5, minor: 1)
        archive.directory("usr")  // already there: not repeated
        let entries = try Self.entries(archive.finish())
        #expect(entries.map(\.name) == ["usr", "usr/bin", "usr/bin/redis-server", "bin", "bin/sh", "dev", "dev/console"])
        let redis = entries[2]
        #expect(redis.mode == 0o100755)
        #expect(redis.data == [1, 2, 3])
        #expect(entries[0].mode == 0o040755)
        #expect(entries[4].mode == 0o120777)
        #expect(String(decoding: entries[4].data, as: UTF8.self) == "/bin/busybox")
        #expect(entries[6].mode == 0o020600)
        #expect(entries[6].rdev == (5, 1))
    }

    @Test("paths inside the archive are relative", arguments: [("/init", "init"), ("./bin/sh", "bin/sh"), ("lib/", "lib")])
    func normalize(input: String, expected: String) {
        #expect(NewcArchive.normalize(input) == expected)
    }

    // MARK: kernel modules

    /// The dependencies of the Debian 6.1 cloud kernel's virtio network modules.
    static let cloudKernelDependencies: [String: [String]] = [
        "virtio_net": ["net_failover", "virtio", "virtio_ring"],
        "net_failover": ["failover"], "failover": [],
        "virtio_pci": ["virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio", "virtio_ring"],
        "virtio_pci_legacy_dev": [], "virtio_pci_modern_dev": [], "virtio": ["virtio_ring"], "virtio_ring": [],
    ]

    @Test("modules load after their dependencies (insmod resolves nothing itself)")
    func moduleOrder() throws {
        let deps = Self.cloudKernelDependencies
        let modules = KernelModules(files: Dictionary(uniqueKeysWithValues: deps.keys.map { ($0, $0) }), dependencies: { deps[$0] ?? [] })
        let order = try modules.loadOrder(["virtio_pci", "virtio_net"]).map(\.name)
        #expect(Set(order) == Set(deps.keys))
        for (module, needs) in deps {
            for dependency in needs {
                #expect(order.firstIndex(of: dependency)! < order.firstIndex(of: module)!, "\(dependency) must load before \(module)")
            }
        }
    }

    @Test("built-in modules are skipped; a module that is nowhere is an error")
    func builtinAndMissing() throws {
        let modules = KernelModules(files: ["virtio_net": "v"], builtin: ["virtio", "virtio_ring", "net_failover"],
                                    dependencies: { _ in ["net_failover", "virtio", "virtio_ring"] })
        #expect(try modules.loadOrder(["virtio_net"]).map(\.name) == ["virtio_net"])
        #expect(throws: LabError.self) { try modules.loadOrder(["virtio_blk"]) }
    }

    @Test("depends= from .modinfo, and module names from file names")
    func modinfo() {
        #expect(KernelModules.dependencies(fromModinfo: ["license=GPL", "depends=virtio,virtio_ring", "name=virtio_net"]) == ["virtio", "virtio_ring"])
        #expect(KernelModules.dependencies(fromModinfo: ["depends="]) == [])
        #expect(KernelModules.moduleName(fileName: "virtio-rng.ko.xz") == "virtio_rng")
        #expect(KernelModules.moduleName(fileName: "modules.order") == nil)
    }

    /// A minimal ELF64 little-endian file with sections: null, .modinfo (`modinfo`), .shstrtab.
    static func elf(modinfo: [String]) -> [UInt8] {
        func le(_ value: Int, _ bytes: Int) -> [UInt8] { (0..<bytes).map { UInt8((value >> (8 * $0)) & 0xFF) } }
        let info: [UInt8] = modinfo.flatMap { (entry: String) -> [UInt8] in Array(entry.utf8) + [0] }
        var names: [UInt8] = [0]
        names += Array(".modinfo".utf8) + [0]
        names += Array(".shstrtab".utf8) + [0]
        let infoOffset = 64, namesOffset = infoOffset + info.count, sectionsOffset = (namesOffset + names.count + 7) / 8 * 8
        var header: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        header += le(1, 2) + le(62, 2) + le(1, 4) + le(0, 8) + le(0, 8) + le(sectionsOffset, 8)  // type, machine, version, entry, phoff, shoff
        header += le(0, 4) + le(64, 2) + le(56, 2) + le(0, 2) + le(64, 2) + le(3, 2) + le(2, 2)  // flags, sizes, counts, shstrndx
        func section(name: Int, type: Int, offset: Int, size: Int) -> [UInt8] {
            le(name, 4) + le(type, 4) + le(0, 8) + le(0, 8) + le(offset, 8) + le(size, 8) + le(0, 4) + le(0, 4) + le(1, 8) + le(0, 8)
        }
        var bytes = header + info + names
        bytes += [UInt8](repeating: 0, count: sectionsOffset - bytes.count)
        bytes += section(name: 0, type: 0, offset: 0, size: 0)
        bytes += section(name: 1, type: 1, offset: infoOffset, size: info.count)
        bytes += section(name: 10, type: 3, offset: namesOffset, size: names.count)
        return bytes
    }

    @Test("a module's depends= is read from its .modinfo section through the ELF section table")
    func modinfoSection() throws {
        let bytes = Self.elf(modinfo: ["license=GPL", "depends=net_failover,virtio,virtio_ring", "name=virtio_net"])
        let elf = try #require(ELFFile(bytes))
        #expect(elf.strings(inSection: ".modinfo").count == 3)
        #expect(elf.section(named: ".text") == nil)
        #expect(!elf.hasInterpreter)
        let path = "\(NSTemporaryDirectory())/netprobe-test-\(getpid()).ko"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try KernelModules.readDependencies(ofModuleAt: path) == ["net_failover", "virtio", "virtio_ring"])
    }

    // MARK: guest image inputs

    @Test("ldd output: libraries and the loader, vdso skipped, 'not found' is an error")
    func ldd() throws {
        let text = """
            \tlinux-vdso.so.1 (0x00007ffd)
            \tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f)
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f)
            """
        #expect(try GuestImageBuilder.parseLdd(text, program: "redis-server") == [
            "/lib/x86_64-linux-gnu/libssl.so.3", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2",
        ])
        #expect(throws: LabError.self) { try GuestImageBuilder.parseLdd("\tlibfoo.so.1 => not found\n", program: "x") }
    }

    @Test("static and dynamic programs are told apart by PT_INTERP")
    func elfInterpreter() throws {
        #expect(ELFFile.isDynamicallyLinked(path: "/usr/bin/env"))
        if FileManager.default.fileExists(atPath: "/bin/busybox") {
            #expect(!ELFFile.isDynamicallyLinked(path: "/bin/busybox"), "/bin/busybox should be busybox-static's")
        }
        #expect(ELFFile(Array("#!/bin/sh\n".utf8)) == nil)
    }

    @Test("the init script configures eth0 from the kernel command line and execs Redis as asked")
    func initScript() {
        let s = GuestInit.script
        #expect(s.hasPrefix("#!/bin/sh\n"))
        #expect(s.contains("np.ip=*"))
        #expect(s.contains("insmod /lib/modules/$m.ko"))
        #expect(s.contains("exec /usr/bin/redis-server --bind 0.0.0.0 --port \"$PORT\" --protected-mode no --save '' --appendonly no"))
        #expect(s.contains(GuestInit.aliveMarker))
    }

    @Test("cloud kernel package names and their order")
    func kernelPackages() {
        #expect(GuestImageBuilder.isCloudKernelPackage("linux-image-6.1.0-56-cloud-amd64"))
        #expect(!GuestImageBuilder.isCloudKernelPackage("linux-image-cloud-amd64"))
        #expect(GuestImageBuilder.versionOrder("linux-image-6.1.0-9-cloud-amd64", "linux-image-6.1.0-56-cloud-amd64"))
    }

    // MARK: QEMU and libvirt

    static let image = GuestImage(kernel: "/k/vmlinuz", initrd: "/k/initrd.gz", kernelVersion: "6.1.0-56-cloud-amd64",
                                  kernelPackage: "linux-image.deb", directory: "/k")

    @Test("QEMU command line: direct kernel boot, serial to a file, the NIC as asked")
    func qemuArguments() {
        let launch = QEMULaunch(accel: "tcg", image: Self.image, consoleLog: "/run/x/console.log")
        let args = launch.arguments(network: .init(netdev: "tap,id=n0,fd=3", mac: "02:00:00:00:00:01"))
        #expect(args.contains("tcg"))
        #expect(args.contains("file:/run/x/console.log"))
        #expect(args.contains("tap,id=n0,fd=3"))
        #expect(args.contains("virtio-net-pci,netdev=n0,mac=02:00:00:00:00:01"))
        #expect(args[args.firstIndex(of: "-append")! + 1] == "console=ttyS0 panic=-1 np.ip=10.77.0.2/24")
        #expect(!launch.arguments(network: nil).contains("-netdev"))
    }

    @Test("libvirt domain XML: type, direct kernel boot, bridge interface, file serial, the lab's mark")
    func domainXML() {
        let launch = QEMULaunch(accel: "tcg", image: Self.image, consoleLog: "/run/x/console.log")
        let xml = LibvirtDomain.xml(name: "lv", lab: "lv", type: "qemu", launch: launch, bridge: "virbr0", mac: LabNetwork.guestMAC, vhost: false)
        #expect(xml.contains("<domain type='qemu'>"))
        #expect(xml.contains("<name>lv</name>"))
        #expect(LabDomainMark.lab(inDomainXML: xml) == "lv")
        #expect(xml.contains("<kernel>/k/vmlinuz</kernel>"))
        #expect(xml.contains("<source bridge='virbr0'/>"))
        #expect(xml.contains("<model type='virtio'/>"))
        #expect(xml.contains("<source path='/run/x/console.log'/>"))
        #expect(!xml.contains("vhost"))
        #expect(LibvirtDomain.xml(name: "a", lab: "a", type: "kvm", launch: launch, bridge: "b", mac: "m", vhost: true).contains("<driver name='vhost'/>"))
    }

    @Test("which domains are a lab's: its mark (as libvirt gives it back), else the unmarked domain its state names")
    func domainMark() {
        // What `virsh dumpxml` returns for a lab's domain (libvirt rewrites the quotes).
        let marked = "<domain type='qemu' id='1'>\n  <name>lv</name>\n  <metadata>\n    <netprobe:lab xmlns:netprobe=\"urn:netprobe:lab\" name=\"lv\"/>\n  </metadata>\n</domain>\n"
        let handMade = "<domain type='qemu'>\n  <name>osv-redis</name>\n  <description>OSv with Redis 3.2</description>\n</domain>\n"
        let otherMark = "<domain type='qemu'><name>x</name><metadata><app:lab xmlns:app='urn:someone:else' name='lv'/></metadata></domain>"
        #expect(LabDomainMark.lab(inDomainXML: marked) == "lv")
        #expect(LabDomainMark.lab(inDomainXML: handMade) == nil)
        #expect(LabDomainMark.lab(inDomainXML: otherMark) == nil, "a `lab` element of another namespace is not netprobe's")
        #expect(LabDomainMark.domainName(inXML: handMade) == "osv-redis")
        #expect(LabDomainMark.belongs(name: "lv", xml: marked, toLab: "lv", labDomain: "lv"))
        #expect(!LabDomainMark.belongs(name: "lv", xml: marked, toLab: "other", labDomain: "lv"), "marked for another lab")
        #expect(!LabDomainMark.belongs(name: "osv-redis", xml: handMade, toLab: "lv", labDomain: "lv"))
        // A lab made before the mark: its own domain has none, and is still the lab's.
        #expect(LabDomainMark.belongs(name: "lv", xml: "<domain><name>lv</name></domain>", toLab: "lv", labDomain: "lv"))
        #expect(!LabDomainMark.belongs(name: "x", xml: otherMark, toLab: "lv", labDomain: "lv"))
    }

    @Test("private passwd and group gain kvm and libvirt-qemu with free ids, once")
    func accounts() {
        let (passwd, group) = LabLibvirt.accounts(passwd: "root:x:0:0:root:/root:/bin/bash\nx:x:64055:64055::/:/bin/sh\n",
                                                  group: "root:x:0:\nkvm:x:994:\nx:x:64055:\n")
        #expect(group.contains("kvm:x:994:\n"))
        #expect(group.contains("libvirt-qemu:x:64056:\n"))
        #expect(passwd.contains("libvirt-qemu:x:64056:64056:"))
        let again = LabLibvirt.accounts(passwd: passwd, group: group)
        #expect(again.passwd == passwd && again.group == group)
    }

    @Test("virsh domiflist rows")
    func domiflist() {
        let text = """
             Interface   Type     Source   Model    MAC
            -----------------------------------------------------------
             vnet0       bridge   virbr0   virtio   52:54:00:77:00:02

            """
        let rows = LabLibvirt.parseDomiflist(text)
        #expect(rows.count == 1)
        #expect(rows.first?.interface == "vnet0")
        #expect(rows.first?.source == "virbr0")
    }

    // MARK: names, errors, commands

    @Test("lab names", arguments: ["netprobe", "osv-redis", "a.b_c-1"])
    func goodNames(name: String) throws {
        try Lab.validate(name: name)
    }

    @Test("bad lab names", arguments: ["", "-x", "a/b", "a b", "x-srv", String(repeating: "a", count: 41)])
    func badNames(name: String) {
        #expect(throws: LabError.self) { try Lab.validate(name: name) }
    }

    @Test("the vhost-net error says what is missing and what the host would need")
    func vhostMessage() {
        let text = LabError.vhostNetUnavailable.description
        #expect(text.contains("/dev/vhost-net"))
        #expect(text.contains("CONFIG_VHOST_NET"))
        #expect(text.contains("modprobe vhost_net"))
    }

    @Test("missing packages: the error lists them with the apt-get command")
    func missingPackages() {
        #expect(throws: LabError.missingPackages(tools: ["no-such-tool-np"], packages: ["no-such-package-np"])) {
            try Requirements.check([.init(command: "no-such-tool-np", package: "no-such-package-np")])
        }
        let text = LabError.missingPackages(tools: ["qemu-system-x86_64"], packages: ["qemu-system-x86"]).description
        #expect(text.contains("apt-get install -y --no-install-recommends qemu-system-x86"))
    }

    @Test("a missing libvirtd asks for the daemon and its QEMU driver, named as overridden")
    func missingLibvirtd() {
        let tool = Requirements.Tool(command: "/nonexistent/np-libvirtd", package: "libvirt-daemon", alsoNeeds: ["libvirt-daemon-driver-qemu"],
                                     label: "libvirtd (NETPROBE_LIBVIRTD=/nonexistent/np-libvirtd)")
        #expect(throws: LabError.missingPackages(tools: ["libvirtd (NETPROBE_LIBVIRTD=/nonexistent/np-libvirtd)", "/nonexistent/np-virtlogd"],
                                                 packages: ["libvirt-daemon", "libvirt-daemon-driver-qemu"])) {
            try Requirements.check([tool, .init(command: "/nonexistent/np-virtlogd", package: "libvirt-daemon")])
        }
        let libvirtd = Requirements.libvirt.first { $0.package == "libvirt-daemon" && !$0.alsoNeeds.isEmpty }
        #expect(libvirtd?.alsoNeeds == ["libvirt-daemon-driver-qemu"])
        #expect(LabLibvirt.Daemon.libvirtd.variable == "NETPROBE_LIBVIRTD")
        #expect(LabLibvirt.Daemon.virtlogd.variable == "NETPROBE_VIRTLOGD")
    }

    @Test("a foreign namespace: the error names it, what is in it, the marker, and how to remove it")
    func foreignNamespaceMessage() {
        let text = LabError.foreignNamespace(namespace: "np-x", lab: "x", stateFile: "/run/netprobe/lab/x/state.json",
                                             marker: "netprobe-lab x", processes: 2, links: ["eth9"]).description
        #expect(text.contains("namespace np-x exists, but netprobe lab did not make it"))
        #expect(text.contains("/run/netprobe/lab/x/state.json"))
        #expect(text.contains("'netprobe-lab x'"))
        #expect(text.contains("2 processes and links eth9"))
        #expect(text.contains("ip netns pids np-x"))
        #expect(text.contains("ip netns delete np-x"))
        #expect(text.contains("--name"))
    }

    @Test("a failing command's error carries its stderr and status")
    func commandFailure() {
        do {
            try Command.check(["sh", "-c", "echo broken >&2; exit 3"])
            Issue.record("expected a failure")
        } catch let LabError.commandFailed(command, status, stderr) {
            #expect(status == 3)
            #expect(stderr.contains("broken"))
            #expect(command.contains("sh -c"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("a command past its deadline is stopped")
    func commandTimeout() {
        #expect(throws: LabError.commandTimedOut(command: "sleep 600", seconds: 0.5)) { try Command.run(["sleep", "600"], timeout: 0.5) }
    }

    @Test("a program that leaves a daemon behind still counts as finished when it exits")
    func daemonizingCommand() throws {
        // The background sleep inherits the shell's stdout and stderr; the shell's exit must still be
        // seen, while the daemon lives on holding them.
        let out = try Command.run(["sh", "-c", "sleep 600 & echo $!; exit 4"], timeout: 300)
        #expect(out.status == 4)
        let daemon = try #require(Int32(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(ProcessTable.isAlive(daemon), "run waited for the daemon to end")
        kill(daemon, SIGKILL)
    }

    @Test("programs start with no signal blocked, so SIGTERM ends them")
    func signalMask() throws {
        let out = try Command.check(["grep", "SigBlk", "/proc/self/status"])
        #expect(out.stdout.contains("0000000000000000"), "\(out.stdout)")
    }
}
