import ArgumentParser
import Foundation
import NetprobeCore
import NetprobeLab

extension LabSetup: ExpressibleByArgument {}
extension AccelPreference: ExpressibleByArgument {}

extension Netprobe {
    /// `netprobe lab up|status|down`: the built-in testbed.
    struct LabCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lab",
            abstract: "Bring up, show and remove a Redis testbed in a network namespace of its own.",
            discussion: HelpText.discussion(
                """
                The lab runs Redis where netprobe can watch it: in a QEMU guest behind a bridge and \
                tap, a macvtap or a vhost-net tap, in a second namespace behind a veth pair, or on \
                loopback. Everything lives in the namespace np-NAME; the root namespace is never \
                changed. State and logs: \(LabState.stateDirectory)/NAME/. Needs root.

                The guest is netprobe's own Linux microVM running Redis unless lab up --guest \
                names an image of yours (a disk image such as OSv's, or a kernel such as \
                Rumprun's), which gets the lab's address from a DHCP server in the lab's \
                namespace; with --libvirt it is the libvirt domain NAME. A domain you define \
                yourself on the lab's libvirtd and bridge is yours: lab status lists it, and lab \
                down leaves the lab up while it is there.
                """,
                examples: [
                    "netprobe lab up",
                    "netprobe lab up --setup macvtap --name mv",
                    "netprobe lab up --libvirt --name lv",
                    "netprobe lab up --guest disk:osv-redis.qcow2 --name osv",
                    "netprobe lab status --format json",
                    "netprobe lab down --all",
                ],
                exitStatus: [
                    (0, "done (see each subcommand's --help)"),
                    (1, "the subcommand failed: the message says why"),
                ]),
            subcommands: [Up.self, Status.self, Down.self])
    }
}

extension Netprobe.LabCommand {
    /// `lab status`: what a lab is made of, and whether it still works.
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Show a lab (or all labs): Redis address, vantage interfaces, hypervisor, health.",
            discussion: HelpText.discussion(
                "JSON output is the lab's state file (an object for NAME, an array without).",
                examples: [
                    "netprobe lab status",
                    "netprobe lab status netprobe --format json",
                ],
                exitStatus: [
                    (0, "the lab (or every lab) was shown, healthy or not: the text says NOT HEALTHY and how to fix it"),
                    (1, "there is no lab of that NAME"),
                ]))

        @Argument(help: ArgumentHelp("The lab to show (default: all).", valueName: "NAME"))
        var name: String?

        @Option(help: "Output format: text (for people) or json (the state file).")
        var format: OutputFormat = .text

        func run() throws {
            if let name {
                guard let status = Lab.status(name) else {
                    printError("netprobe lab status: no lab named \(name) (labs: \(LabStore.names().joined(separator: ", ").ifEmpty("none")))")
                    throw ExitCode(1)
                }
                switch format {
                case .json: print(String(decoding: try LabStore.encode(status.state), as: UTF8.self))
                case .text: print(LabOutput.describe(status), terminator: "")
                }
                return
            }
            let statuses = Lab.statuses()
            switch format {
            case .json: print(String(decoding: try LabStore.encode(statuses.map(\.state)), as: UTF8.self))
            case .text:
                if statuses.isEmpty { print("no lab is up (netprobe lab up)") }
                print(statuses.map(LabOutput.describe).joined(separator: "\n"), terminator: "")
            }
        }
    }

    /// `lab down`: removes everything a lab made.
    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "down",
            abstract: "Remove a lab: its processes, namespaces, links and files.",
            discussion: HelpText.discussion(
                """
                Removing a lab that is not there is not an error. Only what the lab made is \
                removed: a namespace under its names that the lab did not make is left alone, and \
                a lab whose libvirtd also holds domains the lab did not make (defined by hand) is \
                left whole, since removing it would end and undefine them; the message names them \
                and how to remove them first. With --all, the other labs are removed all the same.
                """,
                examples: [
                    "netprobe lab down",
                    "netprobe lab down mv",
                    "netprobe lab down --all",
                ],
                exitStatus: [
                    (0, "the lab is gone (or was not there)"),
                    (1, "something could not be removed (a namespace netprobe cannot prove is the lab's, or a lab whose libvirtd holds domains it did not make, is left alone): the message says what and how"),
                ]))

        @Argument(help: ArgumentHelp("The lab to remove (default: \(Lab.defaultName)).", valueName: "NAME"))
        var name: String?

        @Flag(help: "Remove every lab.")
        var all = false

        func validate() throws {
            if all && name != nil { throw ValidationError("Give a NAME or --all, not both.") }
        }

        func run() throws {
            do {
                let teardowns = all ? try Lab.downAll(progress: LabOutput.progress)
                                    : [try Lab.down(name ?? Lab.defaultName, progress: LabOutput.progress)]
                if teardowns.isEmpty { print("no lab to remove") }
                for t in teardowns {
                    if t.nothingFound {
                        print("lab \(t.name): nothing to remove")
                    } else {
                        print("lab \(t.name) removed: \(t.processes.count) processes, namespaces \(t.namespaces.joined(separator: " ").ifEmpty("none")), \(t.paths.count) paths")
                    }
                }
            } catch {
                printError("netprobe lab down: \(error)")
                throw ExitCode(1)
            }
        }
    }
}
