import Foundation
import NetprobeCore
import Testing
@testable import NetprobeLab
import NetprobeSystem

/// The lab under faults (issue 7, item 4), on the real host: libvirtd missing, dying or
/// unreachable; a namespace under the lab's name that the lab did not make; the leftovers of a
/// crashed lab (stale links, a lost state folder, a state pointing at vanished pids, links and
/// namespaces). No mocks: real namespaces, links and processes. Each test ends by checking that
/// the root namespace's `ip netns` and `ip -d link` are exactly as before and that no process of
/// the lab is left; what a test made itself is removed in a `defer`. QEMU killed under a running
/// lab is `LabTests.crashRecovery`.
@Suite("netprobe lab under faults (root)", .serialized)
struct LabFaultTests {
    /// The host folders a namespaced libvirtd mounts over or links: present or not, exactly as before.
    static let libvirtFolders = ["/run/libvirt", "/etc/libvirt", "/var/lib/libvirt", "/var/log/libvirt", "/var/cache/libvirt"]
    static func libvirtFoldersPresent() -> [Bool] { libvirtFolders.map { FileManager.default.fileExists(atPath: $0) } }

    // MARK: libvirtd missing, dying, unreachable

    @Test("libvirtd missing, or present but exiting at once: up --libvirt says what to install, exits 1, leaves nothing")
    func libvirtdMissing() throws {
        try requireRoot()
        let name = "labtest-nolv"
        let before = try HostSnapshot.take(testing: name)
        let daemonsBefore = Set(livePids(named: "libvirtd") + livePids(named: "virtlogd"))
        let foldersBefore = Self.libvirtFoldersPresent()
        defer { _ = try? Lab.down(name) }
        func up(libvirtd: String) throws -> CommandOutput {
            try Command.run(["/usr/bin/env", "NETPROBE_LIBVIRTD=\(libvirtd)", NetprobeBinary.path,
                             "lab", "up", "--libvirt", "--name", name], timeout: 300)
        }

        // Not installed: refused before anything is made.
        let missing = try up(libvirtd: "/nonexistent/libvirtd")
        #expect(missing.status == 1, "\(missing.stderr)")
        #expect(missing.stderr.contains("missing programs: libvirtd (NETPROBE_LIBVIRTD=/nonexistent/libvirtd)"), "\(missing.stderr)")
        #expect(missing.stderr.contains("apt-get install -y --no-install-recommends libvirt-daemon libvirt-daemon-driver-qemu"), "\(missing.stderr)")
        #expect(!missing.stderr.contains("starting libvirtd"), "nothing is started when a program is missing")
        try expectNothingLeft(of: name, before: before)

        // Installed but broken (exits at once, as a libvirtd with a missing library does): the
        // namespace, bridge and virtlogd were made by then, and are removed again.
        let broken = try up(libvirtd: "/bin/false")
        #expect(broken.status == 1, "\(broken.stderr)")
        #expect(broken.stderr.contains("libvirtd (NETPROBE_LIBVIRTD=/bin/false) exited while starting in namespace np-\(name)"), "\(broken.stderr)")
        #expect(broken.stderr.contains("libvirt-daemon-driver-qemu"), "\(broken.stderr)")
        #expect(broken.stderr.contains("removing what was made"), "\(broken.stderr)")
        try expectNothingLeft(of: name, before: before)
        #expect(Set(livePids(named: "libvirtd") + livePids(named: "virtlogd")) == daemonsBefore, "the lab's virtlogd must be gone")
        #expect(Self.libvirtFoldersPresent() == foldersBefore, "\(Self.libvirtFolders)")

        let down = try NetprobeBinary.run(["lab", "down", name])
        #expect(down.status == 0, "\(down.stderr)")
        #expect(down.stdout.contains("nothing to remove"))
    }

    /// How libvirtd fails once it has answered, just before the domain is defined.
    enum LibvirtdFault: String, CaseIterable, CustomTestStringConvertible {
        /// SIGKILL: it crashed.
        case killed
        /// Its socket is removed: it runs, but no client reaches it.
        case socketRemoved
        var testDescription: String { rawValue }
    }

    @Test("libvirtd dies or becomes unreachable while up runs: a clear error, and everything is removed", arguments: LibvirtdFault.allCases)
    func libvirtdFails(fault: LibvirtdFault) throws {
        try requireRoot()
        let name = "labtest-lvfail"
        let before = try HostSnapshot.take(testing: name)
        let daemonsBefore = Set(livePids(named: "libvirtd") + livePids(named: "virtlogd"))
        let foldersBefore = Self.libvirtFoldersPresent()
        defer { _ = try? Lab.down(name) }

        let seen = Recorded()
        let log = ProgressLog()
        let sink = log.sink
        let progress: LabProgress = { line in
            sink(line)
            guard line.hasPrefix("defining and starting libvirt domain"), let state = LabStore.load(name) else { return }
            seen.set(state.processes)
            guard let daemon = state.processes.first(where: { $0.what == "libvirtd" }) else { return }
            switch fault {
            case .killed: kill(daemon.pid, SIGKILL)
            case .socketRemoved: unlink("\(LabState.stateDirectory)/\(name)/libvirt/run/libvirt-sock")
            }
        }
        do {
            _ = try Lab.up(LabOptions(name: name, setup: .bridge, libvirt: true), progress: progress)
            Issue.record("up should have failed: \(log.text)")
        } catch let LabError.processDied(what, detail, _) where fault == .killed {
            #expect(what == "libvirtd")
            #expect(detail.contains("exited while the lab ran `virsh -c"), "\(detail)")
            #expect(detail.contains(" define "), "\(detail)")
        } catch let LabError.libvirt(text) where fault == .socketRemoved {
            #expect(text.contains("runs but cannot be reached"), "\(text)")
            #expect(text.contains("libvirt-sock is gone"), "\(text)")
        }
        #expect(log.text.contains("up failed; removing what was made"))
        let processes = seen.value
        #expect(Set(processes.map(\.what)) == ["libvirtd", "virtlogd"], "\(log.text)")
        for process in processes { #expect(!ProcessTable.isAlive(process.pid), "\(process.what) \(process.pid)") }
        try expectNothingLeft(of: name, before: before)
        #expect(Set(livePids(named: "libvirtd") + livePids(named: "virtlogd")) == daemonsBefore)
        #expect(Self.libvirtFoldersPresent() == foldersBefore, "\(Self.libvirtFolders)")
        #expect(try Lab.down(name).nothingFound)
    }

    @Test("up --libvirt killed mid-way (netprobe SIGKILLed once libvirtd runs, libvirtd then stopped): the next up rebuilds the lab, down removes it all")
    func libvirtUpKilled() throws {
        try requireRoot()
        let name = "labtest-lvcrash"
        let before = try HostSnapshot.take(testing: name)
        let daemonsBefore = Set(livePids(named: "libvirtd") + livePids(named: "virtlogd"))
        let foldersBefore = Self.libvirtFoldersPresent()
        defer { _ = try? Lab.down(name) }

        let cli = try Command.start([NetprobeBinary.path, "lab", "up", "--libvirt", "--name", name])
        defer { cli.stop() }
        #expect(eventually(600) { LabStore.load(name)?.processes.contains { $0.what == "libvirtd" } == true || !cli.isRunning },
                "\(cli.standardError)")
        cli.signal(SIGKILL)
        #expect(cli.wait(timeout: 60) != nil)
        let crashed = try #require(LabStore.load(name), "\(cli.standardError)")
        #expect(crashed.processes.contains { $0.what == "libvirtd" && Lab.isOurs($0, lab: name) }, "libvirtd runs on after the crash")
        #expect(Lab.status(name)?.healthy == false)
        // And the orphaned libvirtd hangs (stopped): removing it must not wait for virsh timeouts
        // (2 x 20 s before down sent SIGCONT).
        let daemon = try #require(crashed.processes.first { $0.what == "libvirtd" })
        kill(daemon.pid, SIGSTOP)

        let log = ProgressLog()
        let state = try Lab.up(LabOptions(name: name, setup: .bridge, libvirt: true), progress: log.sink)
        #expect(log.text.contains("removing what an earlier lab of this name left"), "\(log.text)")
        // Removing the leftovers (and only that: not the boot) continued the stopped daemon before
        // asking virsh: without SIGCONT it waits out 2 x 20 s of virsh timeouts; with it, a second or two.
        let removal = try #require(log.secondsAfter("removing what an earlier lab of this name left"), "\(log.text)")
        #expect(removal < 30, "removing the crashed lab took \(removal) s: virsh timed out against the stopped libvirtd?\n\(log.text)")
        #expect(try ping(state.redisAddress, from: state.namespace) == "PONG", "\(log.text)")
        // libvirt's QEMU names nothing of the lab on its command line: it is the lab's by its namespace.
        #expect(Lab.status(name)?.processes.map(\.alive) == [true, true, true], "\(state.processes)")
        #expect(Lab.status(name)?.healthy == true)
        for process in crashed.processes { #expect(!ProcessTable.isAlive(process.pid), "\(process.what) \(process.pid) of the crashed up") }

        try Lab.down(name)
        try expectNothingLeft(of: name, before: before, recorded: crashed.processes + state.processes)
        #expect(Set(livePids(named: "libvirtd") + livePids(named: "virtlogd")) == daemonsBefore)
        #expect(Self.libvirtFoldersPresent() == foldersBefore, "\(Self.libvirtFolders)")
    }

    // MARK: the namespace already there

    @Test("a namespace under the lab's name that the lab did not make: up refuses, down leaves it, both say how to remove it",
          arguments: ["np-labtest-foreign", "np-labtest-foreign-srv"])
    func foreignNamespace(namespace: String) throws {
        try requireRoot()
        let name = "labtest-foreign"
        let before = try HostSnapshot.take(testing: name)
        // Someone else's namespace: a veth pair and a process inside, no marker, no state.
        try Command.check(["ip", "netns", "add", namespace])
        var sleeper: ChildProcess?
        defer {
            sleeper?.stop()
            _ = try? Command.run(["ip", "netns", "delete", namespace])
            _ = try? Lab.down(name)
        }
        try Command.check(["ip", "-n", namespace, "link", "add", "np-x0", "type", "veth", "peer", "name", "np-x1"])
        sleeper = try Command.start(["ip", "netns", "exec", namespace, "sleep", "120"])
        let sleeperPid = try #require(sleeper?.pid)
        #expect(eventually { ProcessTable.commandLine(sleeperPid).hasPrefix("sleep") })
        func untouched() throws {
            #expect(Netns(name: namespace).exists)
            #expect(ProcessTable.isAlive(sleeperPid))
            #expect(try Command.check(["ip", "-n", namespace, "link", "show", "np-x0"]).stdout.contains("np-x0@np-x1"))
            #expect(Netns(name: namespace).marker == nil)
            #expect(!FileManager.default.fileExists(atPath: "\(LabState.stateDirectory)/\(name)"))
        }
        let expected = LabError.foreignNamespace(
            namespace: namespace, lab: name, stateFile: "\(LabState.stateDirectory)/\(name)/state.json",
            marker: "netprobe-lab \(name)", processes: 1, links: ["np-x1", "np-x0"])
        func sameError(_ error: any Error) -> Bool {
            guard case let LabError.foreignNamespace(ns, lab, file, marker, processes, links) = error,
                  case let LabError.foreignNamespace(ns2, lab2, file2, marker2, processes2, links2) = expected else { return false }
            return (ns, lab, file, marker, processes, Set(links)) == (ns2, lab2, file2, marker2, processes2, Set(links2))
        }
        // The veth setup uses both namespaces; either one being foreign stops it.
        let upError = #expect(throws: LabError.self) { _ = try Lab.up(LabOptions(name: name, setup: .veth)) }
        #expect(upError.map(sameError) == true, "\(String(describing: upError))")
        try untouched()
        let downError = #expect(throws: LabError.self) { _ = try Lab.down(name) }
        #expect(downError.map(sameError) == true, "\(String(describing: downError))")
        try untouched()

        // The same through the CLI: exit 1 and what to do.
        let up = try NetprobeBinary.run(["lab", "up", "--setup", "veth", "--name", name])
        #expect(up.status == 1)
        #expect(up.stderr.contains("namespace \(namespace) exists, but netprobe lab did not make it"), "\(up.stderr)")
        #expect(up.stderr.contains("ip netns delete \(namespace)"), "\(up.stderr)")
        let down = try NetprobeBinary.run(["lab", "down", name])
        #expect(down.status == 1)
        #expect(down.stderr.contains("left \(namespace) alone"), "\(down.stderr)")
        try untouched()

        // Once its owner removes it, the name is free again.
        sleeper?.stop()
        try Command.check(["ip", "netns", "delete", namespace])
        let state = try Lab.up(LabOptions(name: name, setup: .veth))
        #expect(try ping(state.redisAddress, from: state.namespace) == "PONG")
        try Lab.down(name)
        try expectNothingLeft(of: name, before: before, recorded: state.processes)
    }

    @Test("a crashed lab whose state folder is gone: its marked namespaces (stale bridge, veth, macvtap) are taken over by up and removed by down")
    func markedNamespaceWithoutState() throws {
        try requireRoot()
        let name = "labtest-nostate"
        let before = try HostSnapshot.take(testing: name)
        defer { _ = try? Lab.down(name) }
        let log = ProgressLog()

        /// Up, then a crash: Redis killed, a stale macvtap added on a veth parent, the state folder removed.
        func crashedLab() throws -> LabState {
            let state = try Lab.up(LabOptions(name: name, setup: .veth))
            for namespace in [state.namespace] + state.extraNamespaces {
                #expect(Netns(name: namespace).marker == "netprobe-lab \(name)", "\(namespace)")
            }
            let netns = Netns(name: state.namespace)
            try netns.addVethPair(LabNetwork.parent, peer: LabNetwork.parentPeer)
            try netns.ip("link", "add", "link", LabNetwork.parent, "name", LabNetwork.macvtap, "type", "macvtap", "mode", "bridge")
            for process in state.processes { kill(process.pid, SIGKILL) }
            try FileManager.default.removeItem(atPath: "\(LabState.stateDirectory)/\(name)")
            #expect(Lab.status(name) == nil)
            return state
        }

        let crashed = try crashedLab()
        let state = try Lab.up(LabOptions(name: name, setup: .veth), progress: log.sink)
        #expect(log.text.contains("its namespace carries the lab's marker but its state is gone"), "\(log.text)")
        #expect(try ping(state.redisAddress, from: state.namespace) == "PONG")
        // Built afresh: no stale macvtap, the links of the setup only.
        let links = try Command.check(["ip", "-n", state.namespace, "-o", "link"]).stdout
        #expect(!links.contains(LabNetwork.macvtap) && !links.contains(LabNetwork.parent), "\(links)")
        #expect(links.contains("virbr0") && links.contains("veth0"), "\(links)")
        try Lab.down(name)
        try expectNothingLeft(of: name, before: before, recorded: crashed.processes + state.processes)

        // down alone, on the same leftovers, removes both namespaces; again: nothing to do.
        let again = try crashedLab()
        let teardown = try Lab.down(name)
        #expect(Set(teardown.namespaces) == ["np-\(name)", "np-\(name)-srv"])
        #expect(try Lab.down(name).nothingFound)
        try expectNothingLeft(of: name, before: before, recorded: again.processes)
    }

    // MARK: stale state

    @Test("a stale state (vanished pid reused by another redis-server, vanished links; a hung Redis; vanished namespaces): up rebuilds, down succeeds, the other process lives")
    func staleState() throws {
        try requireRoot()
        let name = "labtest-stale"
        let before = try HostSnapshot.take(testing: name)
        // Another program's redis-server (root namespace, no TCP: a Unix socket in a temporary folder).
        let socket = "\(NSTemporaryDirectory())/np-labtest-stale-\(getpid()).sock"
        let decoy = try Command.start(["redis-server", "--port", "0", "--unixsocket", socket, "--save", "", "--appendonly", "no"])
        defer {
            decoy.stop()
            unlink(socket)
            _ = try? Lab.down(name)
        }
        #expect(eventually { FileManager.default.fileExists(atPath: socket) }, "the other redis-server did not start")

        let first = try Lab.up(LabOptions(name: name, setup: .veth))
        // The lab makes nothing in the root namespace (no veth end, no bridge): nothing there can go stale.
        #expect(try HostSnapshot.take(testing: name).links == before.links)
        // Crash: Redis killed, its pid "reused" by the other redis-server, the veth pair gone.
        let redis = try #require(first.processes.first { $0.what == "redis-server" })
        kill(redis.pid, SIGKILL)
        #expect(eventually { !ProcessTable.isAlive(redis.pid) })
        try Netns(name: first.namespace).ip("link", "delete", LabNetwork.vethHost)
        var stale = first
        stale.processes = [LabState.Process(pid: decoy.pid, what: "redis-server")]
        try LabStore.save(stale)
        let status = try #require(Lab.status(name))
        #expect(!status.healthy)
        #expect(status.processes.map(\.alive) == [false], "another program's redis-server is not the lab's")

        let second = try Lab.up(LabOptions(name: name, setup: .veth))
        #expect(try ping(second.redisAddress, from: second.namespace) == "PONG")
        #expect(ProcessTable.isAlive(decoy.pid), "up's cleanup ended a redis-server that was not the lab's")

        // A hung (stopped) Redis: down continues it with its SIGTERM, so Redis shuts down by itself
        // (and says so in its log), rather than being SIGKILLed after the grace. The log is read
        // through a descriptor opened before down removes the lab's folder.
        let hung = try #require(second.processes.first { $0.what == "redis-server" })
        let redisLog = try FileDescriptor.open(LabPaths(name: name).redisLog, .readOnly)
        defer { try? redisLog.close() }
        kill(hung.pid, SIGSTOP)
        let removed = try Lab.down(name)
        #expect(removed.processes == [hung.pid])
        let said = String(decoding: try readAll(redisLog), as: UTF8.self)
        #expect(said.contains("Received SIGTERM"), "the stopped Redis never handled SIGTERM:\n\(said.suffix(600))")
        let third = try Lab.up(LabOptions(name: name, setup: .veth))

        // Crash again, harder: Redis killed, both namespaces removed behind the lab's back.
        var vanished = third
        for process in third.processes { kill(process.pid, SIGKILL) }
        #expect(eventually { third.processes.allSatisfy { !ProcessTable.isAlive($0.pid) } })
        for namespace in [third.namespace] + third.extraNamespaces { try Netns(name: namespace).delete() }
        vanished.processes.append(LabState.Process(pid: decoy.pid, what: "redis-server"))
        try LabStore.save(vanished)
        let teardown = try Lab.down(name)
        #expect(teardown.namespaces.isEmpty)
        #expect(teardown.processes.isEmpty, "\(teardown.processes)")
        #expect(teardown.paths.contains("\(LabState.stateDirectory)/\(name)"))
        #expect(try Lab.down(name).nothingFound)
        #expect(ProcessTable.isAlive(decoy.pid), "down ended a redis-server that was not the lab's")
        try expectNothingLeft(of: name, before: before, recorded: first.processes + second.processes + third.processes)
    }
}

/// Processes seen from a progress callback.
final class Recorded: @unchecked Sendable {
    private let lock = NSLock()
    private var processes: [LabState.Process] = []
    func set(_ value: [LabState.Process]) { lock.lock(); processes = value; lock.unlock() }
    var value: [LabState.Process] { lock.lock(); defer { lock.unlock() }; return processes }
}

/// After `down`: the root namespace's `ip netns` and `ip -d link` as `before`, no state folder,
/// none of `recorded` alive, and no QEMU, libvirtd, virtlogd or redis-server tied to the lab's
/// folder (by command line or working directory) anywhere.
func expectNothingLeft(of name: String, before: HostSnapshot, recorded: [LabState.Process] = [],
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(try HostSnapshot.take(testing: name) == before, sourceLocation: sourceLocation)
    #expect(!FileManager.default.fileExists(atPath: "\(LabState.stateDirectory)/\(name)"), sourceLocation: sourceLocation)
    for process in recorded {
        #expect(!ProcessTable.isAlive(process.pid), "\(process.what) \(process.pid) is still running", sourceLocation: sourceLocation)
    }
    let directory = "\(LabState.stateDirectory)/\(name)"
    let programs = ["qemu-system-x86_64", "libvirtd", "virtlogd", "redis-server"]
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    let left = entries.compactMap(Int32.init).filter { pid in
        guard ProcessTable.isAlive(pid) else { return false }
        let commandLine = ProcessTable.commandLine(pid)
        guard programs.contains(where: { commandLine.contains($0) }) else { return false }
        let cwd = ProcessTable.workingDirectory(pid) ?? ""
        return commandLine.contains(directory + "/") || cwd == directory || cwd == directory + " (deleted)"
    }
    #expect(left.isEmpty, "processes of lab \(name) left: \(left.map { "\($0) \(ProcessTable.commandLine($0))" })", sourceLocation: sourceLocation)
}

/// Everything a descriptor can still read.
func readAll(_ fd: FileDescriptor) throws -> [UInt8] {
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) }
        if n == 0 { return out }
        out += chunk[0..<n]
    }
}
