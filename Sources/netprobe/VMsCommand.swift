import ArgumentParser
import Foundation
import NetprobeCapture
import NetprobeCore
import NetprobeHarness

extension Netprobe {
    /// `netprobe vms`: libvirt domains and their network wiring.
    struct VMsCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "vms",
            abstract: "List libvirt domains and how their network interfaces are wired.",
            discussion: HelpText.discussion(
                """
                Reads each domain's XML through a read-only libvirt connection: interface type \
                (bridge, network, direct = macvtap, ethernet), the host device (vnetN, macvtapN; \
                only while the domain runs), its bridge or macvtap parent and mode, the NIC model, \
                the backend (vhost = in-kernel vhost-net, qemu = userspace) and the MAC. These are \
                the vantage points `netprobe capture --vm NAME` uses.
                """,
                examples: [
                    "netprobe vms",
                    "netprobe vms -c qemu:///session",
                    "netprobe vms --connect test:///default --format json",
                ],
                exitStatus: [
                    (0, "the domains were listed (none is not an error)"),
                    (1, "libvirt could not be reached at the URI (the message gives libvirt's reason)"),
                ]))

        @Option(name: [.customShort("c"), .customLong("connect")], help: ArgumentHelp("libvirt URI (as virsh -c/--connect).", valueName: "URI"))
        var connect: String = "qemu:///system"

        @Option(help: "Output format: text (a table for people) or json (for scripts).")
        var format: OutputFormat = .text

        func run() throws {
            let domains: [DomainInfo]
            do {
                domains = try LibvirtConnection(uri: connect).domains()
            } catch {
                printError("netprobe vms: \(error)")
                throw ExitCode(1)
            }
            if format == .json {
                struct Entry: Encodable { var name: String; var active: Bool; var interfaces: [DomainInterface] }
                try writeOutput(try jsonText(domains.map { Entry(name: $0.name, active: $0.active, interfaces: $0.interfaces) }),
                                to: nil, policy: .replaceRegularFile, what: "the list")
                return
            }
            if domains.isEmpty {
                print("no domains at \(connect)")
                return
            }
            var t = Table(["DOMAIN", "STATE", "TYPE", "HOST DEVICE", "SOURCE", "MODEL", "BACKEND", "MAC", "SETUP"])
            for d in domains {
                if d.interfaces.isEmpty { t.add([d.name, d.active ? "running" : "shut off", "-", "-", "-", "-", "-", "-", "-"]) }
                for i in d.interfaces {
                    let source = i.sourceBridge.map { "bridge \($0)" } ?? i.sourceNetwork.map { "network \($0)" }
                        ?? i.sourceDevice.map { "\($0) mode \(i.sourceMode ?? "vepa")" } ?? "-"
                    t.add([d.name, d.active ? "running" : "shut off", i.type, i.targetDevice ?? "-", source, i.model ?? "-",
                           i.driver ?? "default", i.mac ?? "-", i.setupKind])
                }
            }
            print(t.render(indent: 0), terminator: "")
        }
    }
}
