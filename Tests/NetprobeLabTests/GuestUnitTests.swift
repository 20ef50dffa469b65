import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import NetprobeCore
import Testing
@testable import NetprobeLab

/// The pieces of bring-your-own guests that need no root: QEMU and libvirt for a disk or a
/// kernel, the DHCP server's configuration and log, halt signs, file kinds, the DHCP init.
@Suite("bring-your-own guest building blocks")
struct GuestUnitTests {
    @Test("QEMU for a disk image: virtio-blk, never written, SeaBIOS on the serial console, no PXE ROM, no kernel")
    func qemuDisk() {
        var launch = QEMULaunch(accel: "tcg", boot: .disk(path: "/img/a,b.qcow2", format: "qcow2"), consoleLog: "/c.log")
        launch.memoryMiB = 1024
        launch.vcpus = 2
        launch.extraArguments = ["-cpu", "max"]
        let args = launch.arguments(network: .init(netdev: "tap,id=n0", mac: "52:54:00:77:00:02"))
        #expect(args.contains("file=/img/a,,b.qcow2,if=virtio,format=qcow2,snapshot=on"))
        #expect(args.contains("graphics=off"))
        #expect(args.contains("reboot-timeout=0"))
        #expect(args.contains("virtio-net-pci,netdev=n0,mac=52:54:00:77:00:02,romfile="))
        #expect(!args.contains("-kernel") && !args.contains("-append"))
        #expect(args[args.firstIndex(of: "-m")! + 1] == "1024")
        #expect(args[args.firstIndex(of: "-smp")! + 1] == "2")
        #expect(Array(args.suffix(2)) == ["-cpu", "max"])
    }

    @Test("QEMU for a kernel: -kernel, -initrd and -append only as given (no np.ip=)")
    func qemuKernel() {
        let json = #"{"net":{"if":"vioif0","method":"dhcp"}}"#
        let launch = QEMULaunch(accel: "tcg", boot: .kernel(path: "/k/redis.bin", initrd: nil, cmdline: json), consoleLog: "/c.log")
        let args = launch.arguments(network: nil)
        #expect(args[args.firstIndex(of: "-kernel")! + 1] == "/k/redis.bin")
        #expect(!args.contains("-initrd"))
        #expect(args[args.firstIndex(of: "-append")! + 1] == json)
        let bare = QEMULaunch(accel: "tcg", boot: .kernel(path: "/k/b", initrd: "/k/i", cmdline: nil), consoleLog: "/c.log").arguments(network: nil)
        #expect(bare[bare.firstIndex(of: "-initrd")! + 1] == "/k/i")
        #expect(!bare.contains("-append"))
    }

    @Test("libvirt XML for a disk: the disk (transient), boot from hd, ACPI, APIC, HPET, no NIC ROM, extra QEMU arguments, the lab's mark")
    func domainDisk() throws {
        var launch = QEMULaunch(accel: "tcg", boot: .disk(path: "/img/osv.qcow2", format: "qcow2"), consoleLog: "/c.log")
        launch.memoryMiB = 1024
        launch.vcpus = 2
        launch.extraArguments = ["-cpu", "max"]
        let xml = LibvirtDomain.xml(name: "osv", lab: "osv", type: "qemu", launch: launch, bridge: "virbr0", mac: LabNetwork.guestMAC, vhost: false)
        let document = try XMLDocument(xmlString: xml, options: [])
        func values(_ path: String) throws -> [String] { try document.nodes(forXPath: path).compactMap(\.stringValue) }
        #expect(try values("/domain/devices/disk/source/@file") == ["/img/osv.qcow2"])
        #expect(try values("/domain/devices/disk/driver/@type") == ["qcow2"])
        #expect(try values("/domain/devices/disk/target/@bus") == ["virtio"])
        #expect(try document.nodes(forXPath: "/domain/devices/disk/transient").count == 1)
        #expect(try values("/domain/os/boot/@dev") == ["hd"])
        #expect(try document.nodes(forXPath: "/domain/os/kernel").isEmpty)
        #expect(try document.nodes(forXPath: "/domain/features/acpi").count == 1)
        #expect(try document.nodes(forXPath: "/domain/features/apic").count == 1)
        #expect(try values("/domain/clock/timer[@name='hpet']/@present") == ["yes"])
        #expect(try values("/domain/devices/interface/rom/@enabled") == ["no"])
        #expect(try values("/domain/memory") == ["1024"])
        #expect(try values("/domain/vcpu") == ["2"])
        #expect(xml.contains("<qemu:arg value='-machine'/>") && xml.contains("<qemu:arg value='graphics=off'/>"))
        #expect(xml.contains("<qemu:arg value='-cpu'/>") && xml.contains("<qemu:arg value='max'/>"))
        #expect(xml.contains("xmlns:qemu='\(LibvirtDomain.qemuNamespace)'"))
        #expect(LabDomainMark.lab(inDomainXML: xml) == "osv")
    }

    @Test("libvirt XML for a kernel: kernel, initrd and cmdline as given (escaped), ACPI and HPET, no disk")
    func domainKernel() throws {
        let json = #"{"net":{"if":"vioif0"},"cmdline":"redis-server --port 6379 & <x>"}"#
        let launch = QEMULaunch(accel: "tcg", boot: .kernel(path: "/r/redis.bin", initrd: nil, cmdline: json), consoleLog: "/c.log")
        let xml = LibvirtDomain.xml(name: "rump", lab: "rump", type: "qemu", launch: launch, bridge: "virbr0", mac: LabNetwork.guestMAC, vhost: false)
        let document = try XMLDocument(xmlString: xml, options: [])
        #expect(try document.nodes(forXPath: "/domain/os/kernel").first?.stringValue == "/r/redis.bin")
        #expect(try document.nodes(forXPath: "/domain/os/cmdline").first?.stringValue == json)
        #expect(try document.nodes(forXPath: "/domain/os/initrd").isEmpty)
        #expect(try document.nodes(forXPath: "/domain/devices/disk").isEmpty)
        #expect(try document.nodes(forXPath: "/domain/features/acpi").count == 1)
        #expect(!xml.contains("qemu:commandline"))
    }

    @Test("udhcpd's configuration: one address, reserved for the guest's MAC, on the given link")
    func dhcpConfiguration() {
        let text = DHCPServer.configuration(interface: "np-cli", address: "10.77.0.2", netmask: DHCPServer.netmask(prefixLength: 24),
                                            router: "10.77.0.1", mac: "52:54:00:77:00:02", leaseFile: "/l", pidFile: "/p")
        let lines = Set(text.split(separator: "\n").map(String.init))
        for expected in ["interface np-cli", "start 10.77.0.2", "end 10.77.0.2", "max_leases 1", "static_lease 52:54:00:77:00:02 10.77.0.2",
                         "option subnet 255.255.255.0", "option router 10.77.0.1", "lease_file /l", "pidfile /p"] {
            #expect(lines.contains(expected), "\(expected)")
        }
        #expect(DHCPServer.netmask(prefixLength: 16) == "255.255.0.0")
        #expect(DHCPServer.netmask(prefixLength: 32) == "255.255.255.255")
        #expect(DHCPServer.netmask(prefixLength: 0) == "0.0.0.0")
    }

    @Test("udhcpd's log says whether it offered and acknowledged (lines as busybox 1.35 writes them)")
    func dhcpEvents() {
        let log = "udhcpd: started, v1.35.0\nudhcpd: found static lease: 2004d0a\nudhcpd: sending OFFER to 10.77.0.2\n"
        #expect(DHCPServer.events(inLog: log) == .init(offered: true, acknowledged: false))
        #expect(DHCPServer.events(inLog: log + "udhcpd: sending ACK to 10.77.0.2\n") == .init(offered: true, acknowledged: true))
        #expect(DHCPServer.events(inLog: "udhcpd: started, v1.35.0\n") == .init())
    }

    @Test("halt signs on a console: SeaBIOS without a bootable disk, a panic, an OSv abort; a kernel command line with panic=-1 is not one")
    func haltSigns() {
        let seabios = "\u{1B}c\u{1B}[2JSeaBIOS (version 1.16.2)\r\nBooting from Hard Disk...\r\nBoot failed: not a bootable disk\r\n\r\nNo bootable device.\r\n"
        let found = GuestConsole.halt(in: seabios)
        #expect(found?.line == "Boot failed: not a bootable disk")
        #expect(found?.sign.meaning.contains("SeaBIOS") == true)
        #expect(GuestConsole.halt(in: "[ 0.0] Kernel panic - not syncing: VFS: Unable to mount root fs\n")?.sign.meaning == "the guest kernel panicked")
        #expect(GuestConsole.halt(in: "OSv v0.57\nAborted\n\n[backtrace]\n0x40...\n")?.line == "Aborted")
        #expect(GuestConsole.halt(in: "[ 0.0] Kernel command line: console=ttyS0 panic=-1 np.ip=10.77.0.2/24\nnetprobe-init: alive\n") == nil)
        #expect(GuestConsole.mentionsDHCP("udhcpc: broadcasting discover\n"))
        #expect(!GuestConsole.mentionsDHCP("netprobe-init: eth0 up 10.77.0.2/24\n"))
    }

    @Test("console text in messages: escape sequences, carriage returns and backspaces are dropped")
    func printable() {
        #expect(LogFile.printable("\u{1B}c\u{1B}[?7l\u{1B}[2J\u{1B}[0mSeaBIOS\r\nok\u{8} \u{8}\tx") == "SeaBIOS\nok \tx")
    }

    @Test("kernel kinds from the first bytes: bzImage and multiboot pass; multiboot 2 only, plain ELF and other files get a note")
    func kernelKinds() {
        var bz = [UInt8](repeating: 0, count: 1024)
        bz.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
        #expect(GuestFiles.kernelNotes(bz, path: "k").isEmpty)
        var elf: [UInt8] = [0x7F, 0x45, 0x4C, 0x46] + [UInt8](repeating: 0, count: 4092)
        #expect(GuestFiles.kernelNotes(elf, path: "k").first?.contains("without a multiboot header") == true)
        elf.replaceSubrange(0x1000 - 8..<0x1000 - 4, with: [0x02, 0xB0, 0xAD, 0x1B])
        #expect(GuestFiles.kernelNotes(elf, path: "k").isEmpty)
        var mb2: [UInt8] = [0x7F, 0x45, 0x4C, 0x46] + [UInt8](repeating: 0, count: 60)
        mb2.replaceSubrange(8..<12, with: [0xD6, 0x50, 0x52, 0xE8])
        #expect(GuestFiles.kernelNotes(mb2, path: "k").first?.contains("multiboot 2") == true)
        #expect(GuestFiles.kernelNotes(Array("#!/bin/sh\n".utf8), path: "k").first?.contains("neither") == true)
    }

    @Test("guest files: missing, a folder or empty is an error naming the file; a raw disk without boot signature gets a note; qcow2 is recognised")
    func files() throws {
        let dir = NSTemporaryDirectory() + "netprobe-guestfiles-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: LabError.guestFileMissing(path: "\(dir)/none.img", role: "disk image", reason: "no such file")) {
            try GuestFiles.inspect(GuestSpec(kind: .disk, path: "\(dir)/none.img"))
        }
        #expect(throws: LabError.guestFileMissing(path: dir, role: "kernel", reason: "it is a folder")) {
            try GuestFiles.inspect(GuestSpec(kind: .kernel, path: dir))
        }
        try #require(FileManager.default.createFile(atPath: "\(dir)/empty", contents: Data()))
        #expect(throws: LabError.guestFileMissing(path: "\(dir)/empty", role: "disk image", reason: "it is empty")) {
            try GuestFiles.inspect(GuestSpec(kind: .disk, path: "\(dir)/empty"))
        }
        try #require(FileManager.default.createFile(atPath: "\(dir)/zero.img", contents: Data(count: 4096)))
        let zero = try GuestFiles.inspect(GuestSpec(kind: .disk, path: "\(dir)/zero.img"))
        #expect(zero.diskFormat == "raw")
        #expect(zero.notes.first?.contains("no boot signature (55 aa) at byte 510") == true)
        var mbr = Data(count: 512)
        mbr[510] = 0x55
        mbr[511] = 0xAA
        try #require(FileManager.default.createFile(atPath: "\(dir)/mbr.img", contents: mbr))
        #expect(try GuestFiles.inspect(GuestSpec(kind: .disk, path: "\(dir)/mbr.img")).notes.isEmpty)
        try #require(FileManager.default.createFile(atPath: "\(dir)/q.qcow2", contents: Data([0x51, 0x46, 0x49, 0xFB]) + Data(count: 100)))
        #expect(try GuestFiles.inspect(GuestSpec(kind: .disk, path: "\(dir)/q.qcow2")).diskFormat == "qcow2")
        let told = try GuestFiles.inspect(GuestSpec(kind: .disk, path: "\(dir)/q.qcow2", format: "raw"))
        #expect(told.diskFormat == "raw")
        #expect(told.notes.first?.contains("looks like a qcow2 image") == true)
        #expect(throws: LabError.guestFileMissing(path: "\(dir)/no-initrd", role: "initrd", reason: "no such file")) {
            try GuestFiles.inspect(GuestSpec(kind: .kernel, path: "\(dir)/mbr.img", initrd: "\(dir)/no-initrd"))
        }
    }

    @Test("the DHCP init asks udhcpc instead of setting np.ip=, and the static one is unchanged")
    func dhcpInit() {
        #expect(GuestInit.script.contains(GuestInit.staticNetworkLines))
        #expect(!GuestInit.dhcpScript.contains("ip addr add \"$IP\" dev eth0"))
        #expect(GuestInit.dhcpScript.contains("udhcpc -i eth0 -q -n -t 10 -T 1 -s /etc/udhcpc.script"))
        #expect(GuestInit.dhcpScript.contains("exec /usr/bin/redis-server"))
        #expect(GuestInit.udhcpcScript.contains("ip addr add \"$ip/$mask\" dev \"$interface\""))
    }

    @Test("--qemu-commandline splits like a shell: blanks, quotes, escapes; an open quote is an error")
    func qemuCommandline() throws {
        #expect(try QEMUArguments.split("-cpu max  -device 'virtio-rng-pci,id=r 0'") == ["-cpu", "max", "-device", "virtio-rng-pci,id=r 0"])
        #expect(try QEMUArguments.split(#"-name "a \"b\"" x\ y ''"#) == ["-name", #"a "b""#, "x y", ""])
        #expect(try QEMUArguments.split("  ") == [])
        #expect(throws: QEMUArguments.SplitError.self) { try QEMUArguments.split("-append 'x") }
    }

    @Test("a static guest address outside the lab's /24 gets a host side in its /24")
    func foreignSubnet() {
        #expect(LabNetwork.hostCIDR(forGuest: "10.77.0.9") == nil)
        #expect(LabNetwork.hostCIDR(forGuest: "192.168.122.50") == "192.168.122.1/24")
        #expect(LabNetwork.hostCIDR(forGuest: "192.168.122.1") == "192.168.122.254/24")
        #expect(LabNetwork.parseIPv4("1.2.3") == nil)
        #expect(LabNetwork.parseIPv4("1.2.3.256") == nil)
    }
}
