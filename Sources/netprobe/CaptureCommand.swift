import ArgumentParser
import Foundation
import NetprobeCapture
import NetprobeCore
import NetprobeHarness

extension Netprobe {
    /// `netprobe capture`: several vantage points, netlink statistics and Redis INFO into one pcapng.
    struct CaptureCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "capture",
            abstract: "Capture Redis traffic at several vantage points at once into one pcapng.",
            discussion: HelpText.discussion(
                """
                Name the interfaces with -i (repeat it), or let libvirt tell: --vm NAME captures \
                on the VM's tap (or macvtap) and on its bridge (or macvtap parent). Every packet \
                is stamped in nanoseconds by the kernel; a kernel BPF filter keeps only the Redis \
                port. The trace also carries netlink counters of every interface (10 per second), \
                the root qdisc's backlog and drops, Redis INFO commandstats/latencystats before and \
                after, and the VM's XML: `netprobe report` needs nothing else.

                The capture stops after --duration, when the load command after `--` exits, or on \
                Ctrl-C / SIGTERM / SIGHUP; in every case the file is complete. Drops are reported \
                per interface (and stored in the file, where tshark and capinfos see them too).

                A Redis that needs a password for INFO: --redis-password-file FILE, or the \
                REDISCLI_AUTH environment variable (as redis-cli); the password is used only for \
                AUTH. The load command is stored in the trace with its credentials redacted \
                (-a, --pass, --user, AUTH arguments, redis://user:pass@ URIs ...); the packets \
                hold what went over the wire, the load's own AUTH included, as in any capture.

                The kernel hands packets over in blocks, at most 100 ms after they arrive (the \
                stamps are taken on arrival, so latencies are unaffected). --immediate-mode (as \
                in tcpdump) hands over every packet at once instead; that wakes netprobe once per \
                packet, and the wake-ups are paid on the CPUs of Redis and its clients. Measured \
                with netprobe-capture-bench on 2 CPUs (redis-benchmark -c 10, runs with and \
                without capture alternating), Redis's throughput with capture was, of without: \
                loopback Redis (64k req/s) 0.58 immediate, 0.94 blocks (tcpdump: 0.85); Redis in \
                the TCG guest behind bridge + tap (14k req/s) 0.83 immediate, 0.95 blocks; 0 \
                kernel drops in every run. Hence blocks by default; use --immediate-mode only to \
                watch packets as they come.

                Where a tap or macvtap is captured, kernel tracepoints are recorded too (--kernel-events \
                essential): they give report the request's wait in the tun queue until the virtual \
                NIC's backend reads it (vnic-backend) and the reply's hop out of the tap. \
                --kernel-events scheduler adds the scheduler's events of the backend's threads, so \
                that report can say whether that wait was a busy, a starved (no CPU) or a stopped \
                backend; measured on the bridge lab, they cost the traffic about 9 % of its median \
                request time, the default events about 2 % (scripts/kevents-latency).

                -c/--connect names the libvirt URI, as in virsh; there is no packet count (tcpdump's \
                -c): stop with --duration or a load command. --format json prints the summary as \
                one JSON object on standard output; the load command's own output then goes to \
                standard error, so that standard output holds only the JSON.
                """,
                examples: [
                    "netprobe capture -i lo --duration 10s -w run.pcapng",
                    "netprobe capture --vm osv-redis --duration 1m30s -w run.pcapng",
                    "netprobe capture --vm osv-redis -c qemu:///system -w run.pcapng",
                    "netprobe capture -i virbr0 -i vnet0 -- redis-benchmark -h 10.77.0.2 -q",
                    "netprobe capture --vm osv-redis --kernel-events scheduler -w run.pcapng",
                    "netprobe capture -i lo -f 'tcp port 6380' --redis 127.0.0.1:6380",
                    "netprobe capture -i lo --format json -- netprobe load -h 127.0.0.1",
                ],
                exitStatus: [
                    (0, "the capture ran and the file is complete, also when the load command failed or the kernel dropped packets (the summary says so)"),
                    (1, "the capture could not start (an interface, the filter, libvirt, the output file, permissions) or failed part-way (the file is then complete up to that point); the message says why"),
                ]))

        @Option(name: .customShort("i"), help: ArgumentHelp("Capture on this interface; repeat for several vantage points.", valueName: "IFACE"))
        var interfaces: [String] = []

        @Option(help: ArgumentHelp("Capture on the interfaces of this libvirt domain.", valueName: "NAME"))
        var vm: String?

        @Option(name: [.customShort("c"), .customLong("connect")], help: ArgumentHelp(
            "libvirt URI for --vm (as virsh -c; default qemu:///system, or the lab's for a lab VM).", valueName: "URI"))
        var connectOption: String?

        @Option(name: .customShort("f"), help: ArgumentHelp("BPF capture filter (default: tcp port 6379, or the --redis port).", valueName: "FILTER"))
        var filter: String?

        @Option(name: .customShort("s"), parsing: .unconditional, help: ArgumentHelp("Snapshot length in bytes; 0 = 262144 (whole packets).", valueName: "SNAPLEN"))
        var snapLength: Int32 = 2048

        @Option(name: .customShort("B"), parsing: .unconditional, help: ArgumentHelp("Kernel buffer per interface in KiB (as tcpdump -B).", valueName: "KIB"))
        var bufferKiB: Int32 = 65_536

        @Option(parsing: .unconditional, help: ArgumentHelp("Stop after this long (500ms, 30s, 1m30s).", valueName: "TIME"))
        var duration: DurationArgument?

        @Option(name: .customShort("w"), help: ArgumentHelp("Write the trace here.", valueName: "FILE"))
        var output: String = "trace.pcapng"

        @Option(help: ArgumentHelp("The network namespace of the interfaces (found automatically for a lab VM).", valueName: "NAME"))
        var netns: String?

        @Option(help: ArgumentHelp(
            "Redis to ask for INFO before and after; else the load command's target, the lab's Redis for a lab's own VM, or the --vm domain's address from its DHCP lease or neighbour entry (the summary says which).",
            valueName: "HOST:PORT"))
        var redis: String?

        @Option(help: ArgumentHelp(
            "A file whose first line is the password for Redis's INFO (else $REDISCLI_AUTH); never stored.", valueName: "FILE"))
        var redisPasswordFile: String?

        @Option(help: ArgumentHelp("The role of an interface on the path: bridge, tap, macvtap, parent, client, host, veth.", valueName: "IFACE=ROLE"))
        var role: [String] = []

        @Flag(inversion: .prefixedNo, help: ArgumentHelp(
            "Hand each packet over as it arrives (tcpdump's --immediate-mode) instead of in blocks (default; see above)."))
        var immediateMode = false

        @Option(help: "The summary at the end: text (on standard error) or json (on standard output).")
        var format: OutputFormat = .text

        @Flag(name: [.customLong("quiet"), .customLong("no-progress")], help: "No progress line on standard error.")
        var quiet = false

        @Option(help: ArgumentHelp(
            "Kernel tracepoints to record beside the packets where a tap or macvtap is captured: essential (default: what the report's vnic-backend segment and reply hop need), scheduler (essential and the scheduler's events of the backend's threads, to tell a busy backend from a starved or stopped one; they slow the traffic more), all, or none.",
            valueName: "SET"))
        var kernelEvents: KernelEventSelection = .essential

        @Argument(parsing: .postTerminator, help: ArgumentHelp("A load command to run during the capture (after --).", valueName: "LOAD COMMAND"))
        var load: [String] = []

        func validate() throws {
            if vm == nil && interfaces.isEmpty {
                throw ValidationError("Say where to capture: --vm NAME, or -i IFACE (repeat -i for several vantage points).")
            }
            if vm != nil && !interfaces.isEmpty { throw ValidationError("Use --vm or -i, not both.") }
            if let connectOption, vm == nil {
                let count = Int(connectOption) != nil ? " (tcpdump's -c counts packets; netprobe capture stops after --duration or when the load command exits)" : ""
                throw ValidationError("-c/--connect names the libvirt URI for --vm (as virsh -c), got '\(connectOption)' without --vm\(count)")
            }
            if snapLength < 0 { throw ValidationError("-s must be 0 (whole packets) or a positive number of bytes, got \(snapLength)") }
            try ArgumentCheck.positive(bufferKiB, "-B")
            _ = try duration?.checked("--duration")
            for r in role where !r.contains("=") { throw ValidationError("--role takes IFACE=ROLE, e.g. --role vnet0=tap") }
        }

        func run() throws {
            var configuration: CaptureConfiguration
            do {
                configuration = try plan()
            } catch let e as CaptureError {
                printError("netprobe capture: \(e)")
                throw ExitCode(1)
            }
            let redirect = format == .json ? StandardOutputForJSON() : nil
            let summary: CaptureSummary
            do {
                summary = try CaptureSession(configuration: configuration).run()
                redirect?.restore()
            } catch {
                redirect?.restore()
                printError("netprobe capture: \(error)")
                // The capture ended before the load generator's records could go into the trace:
                // they are data too, so they stay where the load wrote them.
                if let records = configuration.loadRecordsPath.flatMap(ClientRecordBlocks.kept) {
                    printError("netprobe capture: the load generator's own records are kept in \(records) (netprobe load --timestamps-out format)")
                }
                throw ExitCode(1)
            }
            let output = CaptureSummaryOutput(summary)
            switch format {
            case .text: FileHandle.standardError.write(Data(output.text.utf8))
            case .json: try writeOutput(try jsonText(output), to: nil, policy: .replaceRegularFile, what: "the summary")
            }
            for w in output.warnings { printError("netprobe capture: WARNING: \(w)") }
        }

        /// The options as the harness's typed request.
        var request: CaptureRequest {
            var r = CaptureRequest()
            r.interfaces = interfaces
            r.vm = vm
            r.libvirtURI = connectOption
            r.filter = filter
            r.snapLength = snapLength
            r.bufferKiB = bufferKiB
            r.duration = try? duration?.checked("--duration") // checked in validate()
            r.output = output
            r.namespace = netns
            r.redis = redis
            r.redisPasswordFile = redisPasswordFile
            r.roles = role.compactMap(CaptureRequest.RoleAssignment.init(parsing:))
            r.immediateMode = immediateMode
            r.quiet = quiet
            r.kernelEvents = kernelEvents
            r.load = load
            return r
        }

        /// Resolves vantage points, namespaces and the Redis address into a configuration.
        func plan() throws -> CaptureConfiguration {
            try CapturePlanner.plan(request, notice: { printError("netprobe capture: \($0)") })
        }
    }
}

extension KernelEventSelection: ExpressibleByArgument {}
