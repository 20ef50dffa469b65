import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import NetprobeCapture
import NetprobeCore
@testable import NetprobeHarness
import NetprobeSystem

/// Issue 15, item 5: a real OSv and a real Rumprun domain were defined by hand on the lab's
/// libvirtd, on the lab's bridge, and captured with `capture --vm`. Here the hand-defined domain
/// is the lab's own Linux guest image booted as a second domain (its init takes its address from
/// `np.ip=` on the kernel command line), defined with virsh as a user would: its own name, MAC
/// and address, no netprobe mark. Real libvirtd (in the lab's namespace), two real QEMU guests.
@Suite("a domain defined by hand on the lab's libvirtd and bridge (root, libvirtd, two QEMU guests)", .serialized, .enabled(if: isRoot, rootNote))
struct HandDefinedDomainTests {
    static let lab = "byog"
    /// Named as in the issue: a domain the user made, not the lab.
    static let domain = "osv-redis"
    static let address = "10.77.0.3"
    static let mac = "52:54:00:77:00:03"

    struct Setup {
        var state: LabState
        var uri: String
        var console: String
    }

    /// `lab up --libvirt`, then the hand-made domain (define + start with virsh), waiting until
    /// its Redis answers.
    static func setUp() throws -> Setup {
        let bin = CaptureCLITests.binary
        tearDown(uri: nil)
        let up = try ChildProcess.run([bin, "lab", "up", "--libvirt", "--name", lab], timeout: 600)
        guard up.status.succeeded else { throw CaptureError("lab up failed: \(up.stderr)") }
        let (_, json) = try sh([bin, "lab", "status", lab, "--format", "json"])
        let state = try JSONDecoder().decode(LabState.self, from: Data(json.utf8))
        let uri = try #require(state.libvirtURI)
        // The lab's guest kernel and initramfs, from its domain's XML.
        let labXML = try XMLDocument(xmlString: try LibvirtConnection(uri: uri).domain(named: lab).xml, options: [])
        let kernel = try #require(try labXML.nodes(forXPath: "/domain/os/kernel").first?.stringValue)
        let initrd = try #require(try labXML.nodes(forXPath: "/domain/os/initrd").first?.stringValue)
        let console = tempPath(".console.log")
        let xml = """
            <domain type='qemu'>
              <name>\(domain)</name>
              <memory unit='MiB'>512</memory>
              <vcpu>1</vcpu>
              <os>
                <type arch='x86_64' machine='pc'>hvm</type>
                <kernel>\(kernel)</kernel>
                <initrd>\(initrd)</initrd>
                <cmdline>console=ttyS0 panic=-1 np.ip=\(address)/24</cmdline>
              </os>
              <on_poweroff>destroy</on_poweroff>
              <devices>
                <interface type='bridge'>
                  <source bridge='virbr0'/>
                  <mac address='\(mac)'/>
                  <model type='virtio'/>
                </interface>
                <serial type='file'><source path='\(console)'/><target port='0'/></serial>
                <memballoon model='none'/>
              </devices>
            </domain>
            """
        let file = tempPath(".xml")
        try xml.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        try sh(["virsh", "-c", uri, "define", file])
        try sh(["virsh", "-c", uri, "start", domain])
        // Readiness, not a measurement: a TCG guest on a loaded 2-CPU machine.
        for _ in 0..<1200 {
            if (try? NetworkNamespace.withNamespace(state.namespace, { try RedisClient(address: "\(address):6379").command(["PING"]) })) == "PONG" {
                return Setup(state: state, uri: uri, console: console)
            }
            usleep(100_000)
        }
        throw CaptureError("the hand-defined domain's Redis at \(address) did not answer PING within 120 s: \(LogTail.of(console))")
    }

    /// Removes the hand-made domain (as its owner would), then the lab.
    static func tearDown(uri: String?) {
        if let uri {
            _ = try? sh(["virsh", "-c", uri, "destroy", domain], allowFailure: true)
            _ = try? sh(["virsh", "-c", uri, "undefine", domain], allowFailure: true)
        }
        _ = try? sh([CaptureCLITests.binary, "lab", "down", lab], allowFailure: true)
    }

    /// A second lab (plain bridge + tap, no libvirt) whose namespace np-a-decoy is listed before
    /// np-byog: it has a virbr0 too, as every bridge lab has.
    static let decoy = "a-decoy"

    @Test("capture --vm of the hand-defined domain asks its own Redis (the load's target, else its neighbour entry), not the lab's; the hypervisor is the domain's; its bridge is found in its own namespace beside another lab's virbr0")
    func captureAsksTheDomainsRedis() throws {
        let bin = CaptureCLITests.binary
        _ = try? sh([bin, "lab", "down", Self.decoy], allowFailure: true)
        let decoy = try ChildProcess.run([bin, "lab", "up", "--setup", "bridge", "--name", Self.decoy], timeout: 600)
        defer { _ = try? sh([bin, "lab", "down", Self.decoy], allowFailure: true) }
        try #require(decoy.status.succeeded, "\(decoy.stderr)")
        let setup = try Self.setUp()
        defer {
            Self.tearDown(uri: setup.uri)
            try? FileManager.default.removeItem(atPath: setup.console)
        }
        // The lab's state with a hypervisor this domain does not have, to see whether it is copied.
        var doctored = setup.state
        doctored.hypervisor = "kvm"

        var request = CaptureRequest()
        request.vm = Self.domain
        request.load = ["netprobe", "load", "--target", "\(Self.address):6379", "--requests", "2000", "--ratio", "1:1"]
        let planned = try CapturePlanner.plan(request, labs: [doctored], netprobe: CaptureCLITests.binary)
        #expect(planned.redisAddress == "\(Self.address):6379")
        #expect(planned.redisAddressSource == .loadTarget)
        #expect(planned.hypervisor == "tcg", "the domain is type qemu (TCG); the lab's hypervisor must not be copied")
        #expect(planned.redisNamespace == setup.state.namespace && planned.loadNamespace == setup.state.namespace)
        #expect(Set(planned.vantages.map(\.interface)).contains("virbr0"))
        #expect(planned.vantages.allSatisfy { $0.namespace == setup.state.namespace }, "\(planned.vantages)")

        // Without a load command: the domain's MAC in the namespace's neighbour table (the PING
        // above made the entry).
        request.load = []
        request.duration = TimeSpan(parsing: "1s")
        let byNeighbour = try CapturePlanner.plan(request, labs: [doctored])
        #expect(byNeighbour.redisAddress == "\(Self.address):6379")
        #expect(byNeighbour.redisAddressSource == .domainNeighbour)

        // The lab's own domain still takes the lab's Redis and hypervisor.
        request.vm = Self.lab
        let own = try CapturePlanner.plan(request, labs: [doctored])
        #expect(own.redisAddress == setup.state.redisAddress && own.redisAddressSource == .lab)
        #expect(own.hypervisor == "kvm")

        // End to end: INFO comes from the server the load went to.
        let out = tempPath(".pcapng")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try ChildProcess.run([CaptureCLITests.binary, "capture", "--vm", Self.domain, "--duration", "120s", "-w", out, "--quiet", "--",
                                      "netprobe", "load", "--target", "\(Self.address):6379", "--connections", "2",
                                      "--requests", "2000", "--ratio", "1:1"], timeout: 600)
        #expect(r.status.succeeded, "\(r.stderr)")
        #expect(r.stderr.contains("Redis INFO: before and after from \(Self.address):6379 (address from the load command's target)"), "\(r.stderr)")
        let (report, analysis) = try ReportBuilder.build(path: out)
        #expect(analysis.error == nil)
        let context = try #require(report.capture)
        #expect(context.vm == Self.domain)
        #expect(context.redisAddress == "\(Self.address):6379")
        #expect(context.redisAddressSource == .loadTarget)
        #expect(context.hypervisor == "tcg")
        #expect(context.redisCommands.first { $0.command == "GET" }?.calls == 1000, "INFO from the server that took the load: \(context.redisCommands)")
        #expect(report.segments.contains { $0.name == "redis" && $0.resolved })
    }

    @Test("lab status lists the hand-defined domain; lab down leaves the lab whole while it is there, and removes all once its owner has removed it")
    func downLeavesWhatTheLabDidNotMake() throws {
        let setup = try Self.setUp()
        defer {
            Self.tearDown(uri: setup.uri)
            try? FileManager.default.removeItem(atPath: setup.console)
        }
        let bin = CaptureCLITests.binary
        let status = try ChildProcess.run([bin, "lab", "status", Self.lab], timeout: 120)
        #expect(status.stdout.contains("other VMs   \(Self.domain) (running): a libvirt domain the lab did not make"), "\(status.stdout)")

        let down = try ChildProcess.run([bin, "lab", "down", Self.lab], timeout: 300)
        #expect(down.status.code == 1, "\(down.stdout)\(down.stderr)")
        #expect(down.stderr.contains("lab \(Self.lab) was left as it is") && down.stderr.contains("domain \(Self.domain) (running)"), "\(down.stderr)")
        #expect(down.stderr.contains("virsh -c '\(setup.uri)' undefine \(Self.domain)"), "\(down.stderr)")
        // Nothing was touched: both domains run, both Redis answer, the lab's state and daemons are there.
        let (_, running) = try sh(["virsh", "-c", setup.uri, "list", "--name"])
        #expect(Set(running.split(separator: "\n").map(String.init)) == [Self.lab, Self.domain])
        for address in ["\(Self.address):6379", setup.state.redisAddress] {
            let pong = try? NetworkNamespace.withNamespace(setup.state.namespace) { try RedisClient(address: address).command(["PING"]) }
            #expect(pong == "PONG", "\(address)")
        }
        #expect(FileManager.default.fileExists(atPath: "\(LabState.stateDirectory)/\(Self.lab)/state.json"))
        #expect(setup.state.processes.allSatisfy { LogTail.isRunning($0.pid) }, "\(setup.state.processes)")

        // Once its owner removes it, down removes the whole lab.
        try sh(["virsh", "-c", setup.uri, "destroy", Self.domain])
        try sh(["virsh", "-c", setup.uri, "undefine", Self.domain])
        let again = try ChildProcess.run([bin, "lab", "down", Self.lab], timeout: 300)
        #expect(again.status.succeeded, "\(again.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(LabState.stateDirectory)/\(Self.lab)"))
        let (_, namespaces) = try sh(["ip", "netns", "list"])
        #expect(!namespaces.contains(setup.state.namespace))
        #expect(!setup.state.processes.contains { LogTail.isRunning($0.pid) }, "\(setup.state.processes)")
    }
}

/// The end of a console log, for failure messages; whether a process runs.
enum LogTail {
    /// Running: it exists and is not a zombie waiting for its reaper (the test runner may be one).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
    }

    static func of(_ path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(no console log at \(path))"
        return String(text.suffix(800))
    }
}
