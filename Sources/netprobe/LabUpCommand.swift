import ArgumentParser
import Foundation
import NetprobeCore
import NetprobeLab

extension Netprobe.LabCommand {
    /// `lab up`: builds the lab and returns when Redis answers PING.
    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "up",
            abstract: "Build a lab and wait until its Redis answers PING.",
            discussion: HelpText.discussion(
                """
                Setups: bridge (guest on tap vnet0 enslaved to bridge virbr0), macvtap (guest on \
                macvtap0 in bridge mode over a veth parent; the client uses macvlan np-cli), \
                vhost-net (like bridge with vhost=on; needs /dev/vhost-net), veth (the host's \
                redis-server in namespace np-NAME-srv behind a veth pair on the bridge), host \
                (redis-server on 127.0.0.1 in the namespace: the bare-metal baseline).

                The guest is a Linux microVM whose init execs redis-server, built from Debian \
                packages and cached in /var/cache/netprobe/guest/. QEMU uses KVM when a probe guest \
                really boots under it, else TCG (the verdict is cached in /run/netprobe/ until the \
                host reboots). Running up again for a healthy lab does nothing; leftovers of a \
                crashed lab of the same name are removed first.

                Your own guest (--guest): disk:FILE[,format=raw|qcow2] boots a disk image from \
                virtio-blk through the BIOS (OSv's images; the file is never written: QEMU's \
                snapshot=on, libvirt's <transient/>); kernel:FILE[,initrd=FILE][,cmdline=TEXT] \
                boots a Linux bzImage or a multiboot ELF kernel directly (Rumprun's baked images; \
                cmdline= comes last and may hold commas, such as Rumprun's JSON). The guest gets \
                \(Lab.guestAddress) by DHCP: busybox udhcpd runs in the lab's namespace \
                on the bridge (macvtap: on the client macvlan np-cli) with one lease, for the \
                guest's MAC \(Lab.guestMAC). A guest with a static address: \
                --guest-address A.B.C.D (no DHCP; an address outside 10.77.0.0/24 gets a host \
                side in its /24). Redis must listen on port 6379 there. Its serial console is \
                written to \(LabState.stateDirectory)/NAME/console.log: up stops early when it shows \
                the guest halting (no bootable disk, a panic, an abort) and, when Redis never \
                answers, prints its last lines and what to check.
                """,
                examples: [
                    "netprobe lab up",
                    "netprobe lab up --setup host --name base",
                    "netprobe lab up --setup bridge --libvirt --timeout 5m",
                    "netprobe lab up --guest disk:osv-redis.qcow2 --memory 1024 --name osv",
                    "netprobe lab up --guest disk:osv.qcow2 --setup macvtap --name osv-mv",
                    "netprobe lab up --guest \"kernel:redis.bin,cmdline=$(cat rumprun.json)\"",
                    "netprobe lab up --guest kernel:bzImage,cmdline=console=ttyS0 --name k",
                    "netprobe lab up --guest disk:vm.img --guest-address 192.168.122.50",
                    "netprobe lab up --guest disk:vm.img --vcpus 2 --qemu-commandline '-cpu max'",
                    "netprobe lab up --guest disk:osv-redis.qcow2 --libvirt --name osv-lv",
                ],
                exitStatus: [
                    (0, "the lab is up and its Redis answers PING (or was already)"),
                    (1, "it could not be built (not root, a tool missing, the guest or Redis not answering ...): what was made is removed, and the message says why"),
                ]))

        @Option(help: "Topology: bridge, macvtap, vhost-net, veth or host.")
        var setup: LabSetup = .bridge

        @Option(help: "Lab name: namespace np-NAME, state in /run/netprobe/lab/NAME/, libvirt domain NAME.")
        var name: String = Lab.defaultName

        @Flag(help: "Start libvirtd and virtlogd inside the namespace and run the guest as libvirt domain NAME (setups bridge, vhost-net).")
        var libvirt = false

        @Option(help: "Hypervisor: auto (probe), kvm or tcg.")
        var accel: AccelPreference = .auto

        @Option(parsing: .unconditional, help: ArgumentHelp("How long to wait for Redis to answer (90, 90s, 1m30s).", valueName: "TIME"))
        var timeout = DurationArgument(.seconds(120))

        @Option(help: ArgumentHelp("The guest: builtin, disk:FILE[,format=raw|qcow2] or kernel:FILE[,initrd=FILE][,cmdline=TEXT].", valueName: "SPEC"))
        var guest = "builtin"

        @Option(parsing: .unconditional, help: ArgumentHelp("Guest memory in MiB (QEMU -m, virt-install --memory).", valueName: "MiB"))
        var memory = LabGuestOptions.defaultMemoryMiB

        @Option(parsing: .unconditional, help: ArgumentHelp("Virtual CPUs (QEMU -smp, virt-install --vcpus).", valueName: "N"))
        var vcpus = LabGuestOptions.defaultVCPUs

        @Option(name: .customLong("qemu-commandline"), parsing: .unconditionalSingleValue, help: ArgumentHelp("Extra QEMU arguments, split like a shell would (repeatable; with --libvirt: <qemu:commandline>).", valueName: "TEXT"))
        var qemuCommandline: [String] = []

        @Option(name: .customLong("guest-address"), help: ArgumentHelp("The guest configures this IPv4 address itself: no DHCP server (default: \(Lab.guestAddress) by DHCP for your guest).", valueName: "A.B.C.D"))
        var guestAddress: String?

        /// The guest options, parsed.
        func guestOptions() throws -> LabGuestOptions {
            var arguments: [String] = []
            for text in qemuCommandline { arguments += try QEMUArguments.split(text) }
            return LabGuestOptions(spec: try GuestSpec(parsing: guest), memoryMiB: memory, vcpus: vcpus, qemuArguments: arguments,
                                   staticAddress: guestAddress)
        }

        /// The options as `Lab.up` takes them.
        func options() throws -> LabOptions {
            LabOptions(name: name, setup: setup, libvirt: libvirt, accel: accel,
                       bootTimeout: try timeout.checked("--timeout").seconds, guest: try guestOptions())
        }

        func validate() throws {
            do { try Lab.validate(name: name) } catch { throw ValidationError("\(error)") }
            // Numbers in the wording every numeric option shares; the rest by the library's rule.
            try ArgumentCheck.range(memory, LabGuestOptions.memoryRange, "--memory")
            try ArgumentCheck.range(vcpus, LabGuestOptions.vcpuRange, "--vcpus")
            let options: LabOptions
            do { options = try self.options() } catch { throw ValidationError("\(error)") }
            // The library's own rule, so that the command line refuses them as a usage error.
            if let problem = options.problem { throw ValidationError("\(problem)") }
        }

        func run() throws {
            let started = Date()
            let options = try options()
            let state: LabState
            do {
                state = try Lab.up(options, progress: LabOutput.progress)
            } catch {
                printError("netprobe lab up: \(error)")
                throw ExitCode(1)
            }
            print("lab \(state.name) is up (setup \(state.setup.rawValue), \(TextReport.fmt(Date().timeIntervalSince(started), 1)) s)")
            print(LabOutput.describe(state), terminator: "")
        }
    }
}
