import Foundation
import NetprobeCore
import Testing
@testable import NetprobeLab

/// `lab up --guest`: the built-in guest driven through the bring-your-own paths (as a kernel with
/// a DHCP-client initramfs, and as an extlinux disk image), with the lab's DHCP server, behind a
/// bridge, a macvtap and under libvirt; and the ways it fails (a missing image, a disk that does
/// not boot, a guest whose DHCP request nobody answers, a Redis that never answers). Real QEMU
/// (TCG here), busybox udhcpd and udhcpc, libvirtd. Serialized: TCG guests share two cores.
@Suite("netprobe lab up --guest (root)", .serialized)
struct GuestTests {
    /// Seconds from the start of the wait to Redis's answer, from the progress line.
    static func bootSeconds(_ log: ProgressLog) -> String {
        log.text.split(separator: "\n").first { $0.contains("Redis answered") }.map(String.init) ?? "(no answer line)"
    }

    @Test("kernel: + initrd whose init runs udhcpc, bridge: udhcpd gives it 10.77.0.2 by MAC; status shows the guest; up again does nothing; capture works; down removes udhcpd too")
    func kernelOnBridge() throws {
        try requireRoot()
        let name = "byog-kbr"
        let images = try OwnGuestImages.get()
        let before = try HostSnapshot.take(testing: name)
        let log = ProgressLog()
        defer { _ = try? Lab.down(name) }
        let options = LabOptions(name: name, setup: .bridge, guest: LabGuestOptions(spec: OwnGuestImages.kernelSpec(images)))

        let state = try Lab.up(options, progress: log.sink)
        print("kernel: on bridge: \(Self.bootSeconds(log))")
        #expect(state.redisAddress == "10.77.0.2:6379")
        let guest = try #require(state.guest)
        #expect(guest.addressing == .dhcp)
        #expect(guest.spec == OwnGuestImages.kernelSpec(images))
        #expect(state.guestKernel == nil)
        #expect(Set(state.processes.map(\.what)) == ["udhcpd", "qemu"])
        #expect(try ping(state.redisAddress, from: state.namespace) == "PONG", "\(log.text)")
        // The address came by DHCP: the guest's init says so and udhcpd acknowledged it.
        let console = LogFile.read("\(LabState.stateDirectory)/\(name)/console.log")
        #expect(console.contains("\(GuestInit.networkMarker) 10.77.0.2/24 by DHCP"), "\(console)")
        let dhcpLog = LogFile.read("\(LabState.stateDirectory)/\(name)/udhcpd.log")
        #expect(dhcpLog.contains("sending ACK to 10.77.0.2"), "\(dhcpLog)")
        let config = LogFile.read("\(LabState.stateDirectory)/\(name)/udhcpd.conf")
        #expect(config.contains("interface virbr0") && config.contains("static_lease \(LabNetwork.guestMAC) 10.77.0.2"))
        // udhcpd runs in the lab's namespace.
        let udhcpd = try #require(state.processes.first { $0.what == "udhcpd" })
        #expect(try Command.check(["ip", "netns", "identify", String(udhcpd.pid)]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == state.namespace)

        // lab status (the CLI) shows the spec and how the guest got its address.
        let status = try NetprobeBinary.run(["lab", "status", name])
        #expect(status.stdout.contains("guest       kernel:\(images.kernel),initrd=\(images.dhcpInitrd),cmdline=\(OwnGuestImages.cmdline)"), "\(status.stdout)")
        #expect(status.stdout.contains("address by DHCP"), "\(status.stdout)")
        #expect(status.stdout.contains("ping        PONG"), "\(status.stdout)")

        // The same guest again: nothing to do.
        let again = ProgressLog()
        #expect(try Lab.up(options, progress: again.sink) == state)
        #expect(again.text.contains("nothing to do"), "\(again.text)")

        // capture works against such a lab: its vantages and Redis come from the state.
        let trace = "\(images.directory)/kbr.pcapng"
        let capture = try NetprobeBinary.run(["capture", "-i", "virbr0", "-i", "vnet0", "--netns", state.namespace, "-w", trace, "--quiet",
                                              "--", NetprobeBinary.path, "load", "--target", state.redisAddress, "--duration", "2s"], timeout: 300)
        #expect(capture.succeeded, "\(capture.stderr)")
        let report = try NetprobeBinary.run(["report", "--format", "json", trace], timeout: 300)
        #expect(report.succeeded, "\(report.stderr)")
        #expect(report.stdout.contains("\"bridge\"") && report.stdout.contains("\"tap\""))

        try Lab.down(name)
        #expect(!ProcessTable.isAlive(udhcpd.pid))
        #expect(try HostSnapshot.take(testing: name) == before)
    }

    @Test("disk: (extlinux on ext2) behind a macvtap: udhcpd on the client macvlan answers the guest's frames; the image is not written")
    func diskOnMacvtap() throws {
        try requireRoot()
        let name = "byog-dmv"
        let images = try OwnGuestImages.get()
        let before = try HostSnapshot.take(testing: name)
        let diskBefore = try Digest.sha256(file: images.disk)
        let log = ProgressLog()
        defer { _ = try? Lab.down(name) }

        let state = try Lab.up(LabOptions(name: name, setup: .macvtap, guest: LabGuestOptions(spec: GuestSpec(kind: .disk, path: images.disk))),
                               progress: log.sink)
        print("disk: on macvtap: \(Self.bootSeconds(log))")
        #expect(state.guest?.diskFormat == "raw")
        #expect(state.vantages.map(\.role) == [.macvtap, .parent, .client])
        #expect(try ping(state.redisAddress, from: state.namespace) == "PONG", "\(log.text)")
        #expect(LogFile.read("\(LabState.stateDirectory)/\(name)/udhcpd.conf").contains("interface \(LabNetwork.client)"))
        #expect(LogFile.read("\(LabState.stateDirectory)/\(name)/udhcpd.log").contains("sending ACK to 10.77.0.2"))
        let console = LogFile.read("\(LabState.stateDirectory)/\(name)/console.log")
        #expect(console.contains("SeaBIOS") && console.contains("by DHCP"), "\(console)")

        try Lab.down(name)
        #expect(try Digest.sha256(file: images.disk) == diskBefore, "snapshot=on: the user's image is never written")
        #expect(try HostSnapshot.take(testing: name) == before)
    }

    @Test("disk: under --libvirt: the domain XML carries the disk (transient), ACPI and HPET; DHCP on the bridge; down removes domain, daemons and udhcpd")
    func diskUnderLibvirt() throws {
        try requireRoot()
        let name = "byog-dlv"
        let images = try OwnGuestImages.get()
        let before = try HostSnapshot.take(testing: name)
        let diskBefore = try Digest.sha256(file: images.disk)
        let log = ProgressLog()
        defer { _ = try? Lab.down(name) }

        let state = try Lab.up(LabOptions(name: name, setup: .bridge, libvirt: true,
                                          guest: LabGuestOptions(spec: GuestSpec(kind: .disk, path: images.disk), memoryMiB: 384)),
                               progress: log.sink)
        print("disk: under libvirt: \(Self.bootSeconds(log))")
        let uri = try #require(state.libvirtURI)
        #expect(Set(state.processes.map(\.what)) == ["udhcpd", "virtlogd", "libvirtd", "qemu"])
        #expect(try ping(state.redisAddress, from: state.namespace) == "PONG", "\(log.text)")
        let xml = try Command.check(["virsh", "-c", uri, "dumpxml", name]).stdout
        #expect(xml.contains("<source file='\(images.disk)'"), "\(xml)")
        #expect(xml.contains("<transient/>") && xml.contains("<acpi/>") && xml.contains("<timer name='hpet' present='yes'/>"), "\(xml)")
        #expect(xml.contains("<memory unit='KiB'>393216</memory>"), "\(xml)")
        // libvirt gave QEMU ACPI: no -no-acpi on its command line (OSv halts without ACPI).
        let qemu = try #require(state.processes.first { $0.what == "qemu" })
        #expect(!ProcessTable.commandLine(qemu.pid).contains("-no-acpi"))
        #expect(LogFile.read("\(LabState.stateDirectory)/\(name)/udhcpd.log").contains("sending ACK to 10.77.0.2"))

        try Lab.down(name)
        for process in state.processes { #expect(!ProcessTable.isAlive(process.pid), "\(process.what)") }
        #expect(try Digest.sha256(file: images.disk) == diskBefore)
        #expect(try HostSnapshot.take(testing: name) == before)
    }

    @Test("an image that is not there: up fails at once naming it, and makes nothing")
    func missingImage() throws {
        try requireRoot()
        let name = "byog-miss"
        let before = try HostSnapshot.take(testing: name)
        defer { _ = try? Lab.down(name) }
        let missing = "/nonexistent/netprobe-guest.qcow2"
        #expect(throws: LabError.guestFileMissing(path: missing, role: "disk image", reason: "no such file")) {
            try Lab.up(LabOptions(name: name, setup: .bridge, guest: LabGuestOptions(spec: GuestSpec(kind: .disk, path: missing))))
        }
        let cli = try NetprobeBinary.run(["lab", "up", "--name", name, "--guest", "kernel:\(missing)"])
        #expect(cli.status == 1)
        #expect(cli.stderr.contains("the guest's kernel \(missing) cannot be used: no such file"), "\(cli.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(LabState.stateDirectory)/\(name)"))
        #expect(try HostSnapshot.take(testing: name) == before)
    }

    @Test("a zero-filled disk: up stops as soon as the console shows that nothing boots (long before its timeout), says so, and removes everything")
    func unbootableDisk() throws {
        try requireRoot()
        let name = "byog-zero"
        let images = try OwnGuestImages.get()
        let before = try HostSnapshot.take(testing: name)
        defer { _ = try? Lab.down(name) }
        let started = Date()
        do {
            _ = try Lab.up(LabOptions(name: name, setup: .bridge, bootTimeout: 300,
                                      guest: LabGuestOptions(spec: GuestSpec(kind: .disk, path: images.zeroDisk))))
            Issue.record("a zero-filled disk cannot boot: up should have failed")
        } catch let error as LabError {
            guard case let .guestHalted(meaning, line, _, _, tail, checks) = error else {
                Issue.record("expected guestHalted, got \(error)")
                return
            }
            #expect(meaning.contains("SeaBIOS"), "\(error)")
            #expect(line.contains("not a bootable disk") || line.contains("No bootable device"), "\(line)")
            #expect(tail.contains("SeaBIOS"))
            #expect(!tail.contains("\u{1B}"), "escape sequences are dropped from messages")
            #expect(checks.contains { $0.contains("no boot signature (55 aa) at byte 510") }, "\(checks)")
            #expect(!tail.contains("iPXE"), "no network boot from the NIC's option ROM")
        }
        let seconds = Date().timeIntervalSince(started)
        print("zero disk: halt detected after \(String(format: "%.1f", seconds)) s")
        #expect(seconds < 60, "the halt is seen on the console, not after the 300 s timeout")
        #expect(!FileManager.default.fileExists(atPath: "\(LabState.stateDirectory)/\(name)"))
        #expect(try HostSnapshot.take(testing: name) == before)
    }

    @Test("a guest asking for DHCP while --guest-address says static: no answer; the error shows its console and says what to check")
    func noDHCPAnswer() throws {
        try requireRoot()
        let name = "byog-nodhcp"
        let images = try OwnGuestImages.get()
        defer { _ = try? Lab.down(name) }
        do {
            _ = try Lab.up(LabOptions(name: name, setup: .bridge, bootTimeout: 45,
                                      guest: LabGuestOptions(spec: OwnGuestImages.kernelSpec(images), staticAddress: "10.77.0.2")))
            Issue.record("nobody answers the guest's DHCP requests: up should have failed")
        } catch let LabError.redisNotAnswering(address, _, _, _, consoleTail, checks) {
            #expect(address == "10.77.0.2:6379")
            #expect(consoleTail.contains("udhcpc"), "\(consoleTail)")
            #expect(checks.contains { $0.contains("no DHCP server runs for this guest") }, "\(checks)")
            #expect(checks.contains { $0.contains("its console mentions DHCP") }, "\(checks)")
            #expect(checks.contains { $0.contains("does not answer ARP") }, "\(checks)")
            let text = "\(LabError.redisNotAnswering(address: address, namespace: "n", seconds: 45, lastError: "", consoleTail: consoleTail, checks: checks))"
            #expect(text.contains("What to check:\n  - "))
        }
        #expect(!FileManager.default.fileExists(atPath: "\(LabState.stateDirectory)/\(name)"))
    }

    @Test("Redis never answering (it listens on 6380): the address was leased and answers ARP, and the error says to look at Redis")
    func redisNeverAnswers() throws {
        try requireRoot()
        let name = "byog-nored"
        let images = try OwnGuestImages.get()
        defer { _ = try? Lab.down(name) }
        let spec = OwnGuestImages.kernelSpec(images, cmdline: OwnGuestImages.cmdline + " np.port=6380")
        do {
            _ = try Lab.up(LabOptions(name: name, setup: .bridge, bootTimeout: 45, guest: LabGuestOptions(spec: spec)))
            Issue.record("Redis listens on 6380, not 6379: up should have failed")
        } catch let LabError.redisNotAnswering(_, _, _, lastError, consoleTail, checks) {
            #expect(consoleTail.contains("port 6380"), "\(consoleTail)")
            #expect(checks.contains { $0.contains("the lab's DHCP server gave 10.77.0.2 to the guest") }, "\(checks)")
            #expect(checks.contains { $0.contains("answers ARP") && $0.contains("is Redis running there") }, "\(checks)")
            #expect(lastError.lowercased().contains("refused"), "\(lastError)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(LabState.stateDirectory)/\(name)"))
    }

    @Test("kernel: without its initrd under --libvirt: the kernel panics and hangs while libvirt says running; up says so from the console at once")
    func haltedUnderLibvirt() throws {
        try requireRoot()
        let name = "byog-khalt"
        let images = try OwnGuestImages.get()
        let before = try HostSnapshot.take(testing: name)
        defer { _ = try? Lab.down(name) }
        let started = Date()
        // No panic=-1: the panicked kernel waits for ever, as a halted guest does, and QEMU runs on.
        let spec = GuestSpec(kind: .kernel, path: images.kernel, cmdline: "console=ttyS0")
        do {
            _ = try Lab.up(LabOptions(name: name, setup: .bridge, libvirt: true, bootTimeout: 300, guest: LabGuestOptions(spec: spec)))
            Issue.record("a kernel without its initramfs cannot start Redis: up should have failed")
        } catch let LabError.guestHalted(meaning, line, qemuRunning, _, tail, _) {
            #expect(meaning == "the guest kernel panicked")
            #expect(line.contains("Kernel panic - not syncing"), "\(line)")
            #expect(qemuRunning, "libvirt's QEMU still runs a halted guest")
            #expect(tail.contains("Kernel panic"))
        }
        let seconds = Date().timeIntervalSince(started)
        print("kernel panic under libvirt: halt detected after \(String(format: "%.1f", seconds)) s")
        #expect(seconds < 120, "seen on the console, not after the 300 s timeout")
        #expect(!FileManager.default.fileExists(atPath: "\(LabState.stateDirectory)/\(name)"))
        #expect(try HostSnapshot.take(testing: name) == before)
    }

    @Test("--guest-address outside the lab's /24 (the built-in guest given 192.168.50.9): no DHCP server, the host side gets 192.168.50.1/24, Redis answers there")
    func staticAddressElsewhere() throws {
        try requireRoot()
        let name = "byog-static"
        let before = try HostSnapshot.take(testing: name)
        let log = ProgressLog()
        defer { _ = try? Lab.down(name) }
        let state = try Lab.up(LabOptions(name: name, setup: .bridge, guest: LabGuestOptions(staticAddress: "192.168.50.9")), progress: log.sink)
        #expect(state.redisAddress == "192.168.50.9:6379")
        #expect(state.guest?.addressing == .static)
        #expect(!state.processes.contains { $0.what == "udhcpd" })
        #expect(try Command.check(["ip", "-n", state.namespace, "addr", "show", "dev", "virbr0"]).stdout.contains("inet 192.168.50.1/24"))
        #expect(try ping(state.redisAddress, from: state.namespace) == "PONG", "\(log.text)")
        try Lab.down(name)
        #expect(try HostSnapshot.take(testing: name) == before)
    }
}
