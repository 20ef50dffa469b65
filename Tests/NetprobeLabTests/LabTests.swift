import Foundation
import NetprobeCore
import Testing
@testable import NetprobeLab

/// The real lab on this host: namespaces, links, QEMU guests (TCG here), libvirtd. Serialized:
/// two TCG guests at once on two cores only slow each other down. Every test removes its lab in
/// a `defer`, so a failing test leaves nothing behind either.
@Suite("netprobe lab on this host (root)", .serialized)
struct LabTests {
    @Test("bridge: Redis in the guest answers through virbr0 and vnet0; up and down are idempotent; the host is left as it was")
    func bridge() throws {
        try requireRoot()
        let name = "labtest-br"
        let before = try HostSnapshot.take(testing: name)
        let log = ProgressLog()
        defer { _ = try? Lab.down(name) }

        let state = try Lab.up(LabOptions(name: name, setup: .bridge), progress: log.sink)
        #expect(state.namespace == "np-\(name)")
        #expect(state.redisAddress == "10.77.0.2:6379")
        #expect(state.vantages.map { "\($0.interface)/\($0.role)/\($0.namespace)" } == ["virbr0/bridge/np-\(name)", "vnet0/tap/np-\(name)"])
        #expect(state.hypervisor == "kvm" || state.hypervisor == "tcg")
        #expect(state.hypervisorReason?.isEmpty == false)
        #expect(state.guestKernel?.hasSuffix("-cloud-amd64") == true)
        #expect(try ping(state.redisAddress, from: state.namespace) == "PONG", "\(log.text)")
        let tap = try Command.check(["ip", "-n", state.namespace, "-d", "link", "show", "vnet0"]).stdout
        #expect(tap.contains("master virbr0"))
        #expect(tap.contains("tun type tap"))
        // The state file is the LabState that up returned.
        let data = try #require(FileManager.default.contents(atPath: "\(LabState.stateDirectory)/\(name)/state.json"))
        #expect(try JSONDecoder().decode(LabState.self, from: data) == state)
        let qemu = try #require(state.processes.first { $0.what == "qemu" })

        // up again: nothing to do, same guest (the same QEMU still running), and it says so.
        let againLog = ProgressLog()
        let again = try Lab.up(LabOptions(name: name, setup: .bridge), progress: againLog.sink)
        #expect(again == state)
        #expect(againLog.text.contains("is already up (setup bridge): nothing to do"), "\(againLog.text)")
        #expect(ProcessTable.isAlive(qemu.pid))
        #expect(Lab.status(name)?.healthy == true)

        let first = try Lab.down(name)
        #expect(first.namespaces == ["np-\(name)"])
        #expect(first.processes.contains(qemu.pid))
        #expect(!ProcessTable.isAlive(qemu.pid))
        let second = try Lab.down(name)
        #expect(second.nothingFound)
        #expect(try HostSnapshot.take(testing: name) == before)
        #expect(!FileManager.default.fileExists(atPath: "\(LabState.stateDirectory)/\(name)"))
    }

    @Test("macvtap: the guest on macvtap0 (bridge mode, veth parent) answers the client's macvlan")
    func macvtap() throws {
        try requireRoot()
        let name = "labtest-mv"
        let before = try HostSnapshot.take(testing: name)
        let log = ProgressLog()
        defer { _ = try? Lab.down(name) }

        let state = try Lab.up(LabOptions(name: name, setup: .macvtap), progress: log.sink)
        #expect(state.vantages.map(\.role) == [.macvtap, .parent, .client])
        #expect(state.vantages.map(\.interface) == ["macvtap0", "np-parent", "np-cli"])
        #expect(try ping(state.redisAddress, from: state.namespace) == "PONG", "\(log.text)")
        let link = try Command.check(["ip", "-n", state.namespace, "-d", "link", "show", "macvtap0"]).stdout
        #expect(link.contains("macvtap mode bridge"))
        #expect(link.contains("macvtap0@np-parent"))
        // The route to the guest goes through the client macvlan.
        let route = try Command.check(["ip", "-n", state.namespace, "route", "get", "10.77.0.2"]).stdout
        #expect(route.contains("dev np-cli"))
        // The guest's MAC is the macvtap's: its ARP entry on the client side says so.
        let neighbours = try Command.check(["ip", "-n", state.namespace, "neigh", "show", "10.77.0.2"]).stdout
        #expect(neighbours.contains(LabNetwork.guestMAC))

        try Lab.down(name)
        #expect(try HostSnapshot.take(testing: name) == before)
    }

    @Test("veth: the host's redis-server in a second namespace answers across the bridge")
    func veth() throws {
        try requireRoot()
        let name = "labtest-ve"
        let before = try HostSnapshot.take(testing: name)
        defer { _ = try? Lab.down(name) }

        let state = try Lab.up(LabOptions(name: name, setup: .veth))
        #expect(state.extraNamespaces == ["np-\(name)-srv"])
        #expect(state.hypervisor == nil)
        #expect(state.vantages.map(\.interface) == ["virbr0", "veth0"])
        #expect(try ping(state.redisAddress, from: state.namespace) == "PONG")
        // Redis runs in the second namespace, not in the client's.
        let redis = try #require(state.processes.first { $0.what == "redis-server" })
        let serverNamespace = try Command.check(["ip", "netns", "identify", String(redis.pid)]).stdout
        #expect(serverNamespace.trimmingCharacters(in: .whitespacesAndNewlines) == "np-\(name)-srv")

        let teardown = try Lab.down(name)
        #expect(Set(teardown.namespaces) == ["np-\(name)", "np-\(name)-srv"])
        #expect(try HostSnapshot.take(testing: name) == before)
    }

    @Test("host (through the CLI): up prints the address and vantage, status --format json is the state, down twice")
    func hostThroughCLI() throws {
        try requireRoot()
        let name = "labtest-host"
        let before = try HostSnapshot.take(testing: name)
        defer { _ = try? Lab.down(name) }

        let up = try NetprobeBinary.run(["lab", "up", "--setup", "host", "--name", name])
        #expect(up.status == 0, "\(up.stderr)")
        #expect(up.stdout.contains("lab \(name) is up (setup host"))
        #expect(up.stdout.contains("127.0.0.1:6379 from namespace np-\(name)"))
        #expect(up.stdout.contains("lo (host) in np-\(name)"))
        #expect(try ping("127.0.0.1:6379", from: "np-\(name)") == "PONG")

        let status = try NetprobeBinary.run(["lab", "status", name, "--format", "json"])
        #expect(status.status == 0, "\(status.stderr)")
        let state = try JSONDecoder().decode(LabState.self, from: Data(status.stdout.utf8))
        #expect(state.setup == .host)
        #expect(state.vantages == [LabState.Vantage(interface: "lo", role: .host, namespace: "np-\(name)")])
        let text = try NetprobeBinary.run(["lab", "status", name])
        #expect(text.stdout.contains("ping        PONG"))

        for _ in 0..<2 {
            let down = try NetprobeBinary.run(["lab", "down", name])
            #expect(down.status == 0, "\(down.stderr)")
        }
        let missing = try NetprobeBinary.run(["lab", "status", name])
        #expect(missing.status == 1)
        #expect(try HostSnapshot.take(testing: name) == before)
    }

    @Test("vhost-net: where /dev/vhost-net is missing, up fails saying why and leaves nothing")
    func vhostNet() throws {
        try requireRoot()
        let name = "labtest-vh"
        let before = try HostSnapshot.take(testing: name)
        defer { _ = try? Lab.down(name) }
        let result = try NetprobeBinary.run(["lab", "up", "--setup", "vhost-net", "--name", name])
        if FileManager.default.fileExists(atPath: "/dev/vhost-net") {
            // A host with vhost-net: the setup works like bridge, with vhost=on.
            #expect(result.status == 0, "\(result.stderr)")
            #expect(try ping("10.77.0.2:6379", from: "np-\(name)") == "PONG")
            try Lab.down(name)
        } else {
            #expect(result.status != 0)
            #expect(result.stderr.contains("/dev/vhost-net is missing"))
            #expect(result.stderr.contains("CONFIG_VHOST_NET"))
            #expect(result.stderr.contains("modprobe vhost_net"))
            #expect(throws: LabError.vhostNetUnavailable) { try Lab.up(LabOptions(name: name, setup: .vhostNet)) }
            #expect(!FileManager.default.fileExists(atPath: "\(LabState.stateDirectory)/\(name)"))
        }
        #expect(try HostSnapshot.take(testing: name) == before)
    }

    @Test("after a crash (QEMU killed, namespace left behind) up rebuilds the lab")
    func crashRecovery() throws {
        try requireRoot()
        let name = "labtest-crash"
        let before = try HostSnapshot.take(testing: name)
        defer { _ = try? Lab.down(name) }

        let first = try Lab.up(LabOptions(name: name, setup: .bridge))
        let qemu = try #require(first.processes.first { $0.what == "qemu" })
        kill(qemu.pid, SIGKILL)
        #expect(eventually { !ProcessTable.isAlive(qemu.pid) })
        #expect(Netns(name: first.namespace).exists)
        let broken = try #require(Lab.status(name))
        #expect(!broken.healthy)
        #expect(broken.processes.first?.alive == false)

        let second = try Lab.up(LabOptions(name: name, setup: .bridge))
        let newQemu = try #require(second.processes.first { $0.what == "qemu" })
        #expect(newQemu.pid != qemu.pid)
        #expect(try ping(second.redisAddress, from: second.namespace) == "PONG")
        try Lab.down(name)
        #expect(try HostSnapshot.take(testing: name) == before)
    }

    @Test("an up that fails half-way removes what it made (here: Redis cannot answer within 0.1 s)")
    func failedUpTearsDown() throws {
        try requireRoot()
        let name = "labtest-fail"
        let before = try HostSnapshot.take(testing: name)
        defer { _ = try? Lab.down(name) }
        do {
            _ = try Lab.up(LabOptions(name: name, setup: .bridge, bootTimeout: 0.1))
            Issue.record("no guest kernel boots to Redis within 0.1 s: up should have failed")
        } catch let LabError.redisNotAnswering(address, namespace, _, _, _, _) {
            #expect(address == "10.77.0.2:6379")
            #expect(namespace == "np-\(name)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(LabState.stateDirectory)/\(name)"))
        #expect(try HostSnapshot.take(testing: name) == before)
    }

    @Test("--libvirt: libvirtd in the namespace runs domain lv (the lab's Linux guest) with vnet0 on virbr0; down removes it all")
    func libvirt() throws {
        try requireRoot()
        let name = "lv"
        let before = try HostSnapshot.take(testing: name)
        let log = ProgressLog()
        defer { _ = try? Lab.down(name) }
        // A host libvirtd (if any) and host libvirt folders must be exactly as they were afterwards.
        let daemonsBefore = Set(livePids(named: "libvirtd") + livePids(named: "virtlogd"))
        let folders = ["/run/libvirt", "/etc/libvirt", "/var/lib/libvirt", "/var/log/libvirt", "/var/cache/libvirt"]
        func present() -> [Bool] { folders.map { FileManager.default.fileExists(atPath: $0) } }
        let foldersBefore = present()

        let state = try Lab.up(LabOptions(name: name, setup: .bridge, libvirt: true), progress: log.sink)
        #expect(state.libvirtDomain == name)
        let uri = try #require(state.libvirtURI)
        #expect(Set(state.processes.map(\.what)) == ["virtlogd", "libvirtd", "qemu"])
        #expect(try ping(state.redisAddress, from: state.namespace) == "PONG", "\(log.text)")
        let domiflist = try Command.check(["ip", "netns", "exec", state.namespace, "virsh", "-c", uri, "domiflist", name]).stdout
        let row = try #require(domiflist.split(separator: "\n").first { $0.contains("vnet0") }, "\(domiflist)")
        #expect(row.contains("virbr0"))
        #expect(state.vantages.map(\.interface) == ["virbr0", "vnet0"])
        // The daemons run inside the lab's namespace.
        for process in state.processes {
            let namespace = try Command.check(["ip", "netns", "identify", String(process.pid)]).stdout
            #expect(namespace.trimmingCharacters(in: .whitespacesAndNewlines) == state.namespace, "\(process.what)")
        }

        try Lab.down(name)
        for process in state.processes { #expect(!ProcessTable.isAlive(process.pid), "\(process.what) \(process.pid)") }
        #expect(Set(livePids(named: "libvirtd") + livePids(named: "virtlogd")) == daemonsBefore)
        #expect(present() == foldersBefore, "\(folders)")
        #expect(try HostSnapshot.take(testing: name) == before)
    }
}
