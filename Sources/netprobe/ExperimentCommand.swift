import ArgumentParser
import Foundation
import NetprobeCore
import NetprobeHarness
import NetprobeLab

extension LoadTool: ExpressibleByArgument {}

extension Netprobe {
    /// `netprobe experiment`: the seed experiment in one command.
    struct ExperimentCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "experiment",
            abstract: "Run the seed experiment: Redis behind each network setup, captured, attributed and compared.",
            discussion: HelpText.discussion(
                """
                For each setup: bring the lab up (netprobe lab up --setup S), warm Redis up, capture \
                at every vantage point under load (netprobe capture -- LOAD), report, bring the lab \
                down. A setup this host cannot provide (vhost-net without /dev/vhost-net) is listed \
                as skipped, with the reason. Then all setups are compared against the host baseline.

                To compare guests (the write-up's OSv and Rumprun beside Linux), name each with \
                --guest NAME=SPEC (SPEC as lab up --guest takes it: builtin, disk:FILE, \
                kernel:FILE[,initrd=FILE][,cmdline=TEXT]). Every setup with a guest (bridge, \
                macvtap, vhost-net) then runs once per guest, as NAME-SETUP; host and veth run \
                once. --memory and --vcpus apply to every guest.

                Writes into -o DIR: <setup>.pcapng (the trace), <setup>.json (its report), \
                experiment.json (every setup's report and the skipped ones), compare.json (the setups \
                side by side with ratios against the host baseline) and \
                experiment.html (charts: requests per second and latency per setup, where the time \
                goes, latency CDFs, netlink counters, and the verdict on "the bottleneck is the \
                network"). Needs root.
                """,
                examples: [
                    "netprobe experiment",
                    "netprobe experiment --setups host,bridge --duration 30s -o run-2",
                    "netprobe experiment --load redis-benchmark -c 50 -P 4",
                    "netprobe experiment --guest linux=builtin --guest osv=disk:osv.qcow2",
                ],
                exitStatus: [
                    (0, "at least one setup was captured and reported (the table says which were skipped or failed, and why)"),
                    (1, "no setup could be, netprobe is not root, or the output directory could not be written"),
                ]))

        @Option(help: ArgumentHelp("Setups to run, comma separated.", valueName: "LIST"))
        var setups: String = "host,bridge,macvtap,vhost-net,veth"

        @Option(help: "Load generator: builtin (netprobe load), redis-benchmark or memtier (memtier_benchmark, when installed).")
        var load: LoadTool = .builtin

        @Option(name: [.customShort("c"), .long], parsing: .unconditional, help: ArgumentHelp(
            "Client connections (as netprobe load -c).", valueName: "N"))
        var connections: Int = 10

        @Option(name: [.customShort("P"), .long], parsing: .unconditional, help: ArgumentHelp(
            "Requests in flight per connection.", valueName: "P"))
        var pipeline: Int = 1

        @Option(parsing: .unconditional, help: ArgumentHelp("Load (and capture) time per setup.", valueName: "TIME"))
        var duration = DurationArgument(.seconds(10))

        @Option(parsing: .unconditional, help: ArgumentHelp("Warm-up load before each capture.", valueName: "TIME"))
        var warmup = DurationArgument(.seconds(2))

        @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp(
            "Where to write traces, reports and the HTML (default: experiment).", valueName: "DIR"))
        var output: String?

        @Option(name: .customLong("guest"), parsing: .unconditionalSingleValue, help: ArgumentHelp(
            "A guest to run every guest setup with, as NAME=SPEC (SPEC as lab up --guest; repeatable).", valueName: "NAME=SPEC"))
        var guests: [String] = []

        @Option(parsing: .unconditional, help: ArgumentHelp("Memory of each --guest in MiB (as lab up --memory).", valueName: "MiB"))
        var memory = LabGuestOptions.defaultMemoryMiB

        @Option(parsing: .unconditional, help: ArgumentHelp("Virtual CPUs of each --guest (as lab up --vcpus).", valueName: "N"))
        var vcpus = LabGuestOptions.defaultVCPUs

        @Option(help: ArgumentHelp(
            "Kernel events each capture records, as capture --kernel-events: essential (default), scheduler (also what the backend's thread did, at a higher cost to the traffic), all, or none.",
            valueName: "SET"))
        var kernelEvents: KernelEventSelection = .essential

        /// The guests, parsed: NAME=SPEC each, names unique.
        func guestList() throws -> [Experiment.Guest] {
            var out: [Experiment.Guest] = []
            for text in guests {
                guard let eq = text.firstIndex(of: "=") else {
                    throw ValidationError("--guest \(text): give NAME=SPEC, e.g. --guest osv=disk:osv-redis.qcow2")
                }
                let name = String(text[..<eq])
                if let problem = Experiment.Guest.problem(withName: name) { throw ValidationError("--guest \(text): \(problem)") }
                if out.contains(where: { $0.name == name }) { throw ValidationError("--guest \(text): the name \(name) is given twice") }
                let spec: GuestSpec
                do { spec = try GuestSpec(parsing: String(text[text.index(after: eq)...])) } catch { throw ValidationError("--guest: \(error)") }
                out.append(Experiment.Guest(name: name, options: LabGuestOptions(spec: spec, memoryMiB: memory, vcpus: vcpus)))
            }
            return out
        }

        /// The old spelling of -o.
        @Option(name: .customLong("out"), help: ArgumentHelp("Old spelling of -o.", valueName: "DIR", visibility: .hidden))
        var oldOutput: String?

        func validate() throws {
            for s in setupNames where LabSetup(rawValue: s) == nil {
                throw ValidationError("Unknown setup \(s): choose from \(LabSetup.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            if setupNames.isEmpty { throw ValidationError("Name at least one setup.") }
            try ArgumentCheck.range(connections, 1...10_000, "-c/--connections")
            try ArgumentCheck.range(pipeline, 1...10_000, "-P/--pipeline")
            _ = try duration.checked("--duration")
            _ = try warmup.checked("--warmup")
            _ = try ArgumentCheck.either(output, "-o/--output", old: oldOutput, "--out")
            try ArgumentCheck.range(memory, LabGuestOptions.memoryRange, "--memory")
            try ArgumentCheck.range(vcpus, LabGuestOptions.vcpuRange, "--vcpus")
            let named = try guestList()
            if !named.isEmpty, !setupList.contains(where: \.hasGuest) {
                throw ValidationError("--guest: none of the setups \(setups) has a guest (bridge, macvtap and vhost-net do)")
            }
        }

        var setupNames: [String] {
            setups.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }

        /// The setups, in the order given.
        var setupList: [LabSetup] { setupNames.compactMap(LabSetup.init(rawValue:)) }

        func run() throws {
            guard geteuid() == 0 else {
                printError("netprobe experiment: needs root (it builds network namespaces, taps and bridges, and captures)")
                throw ExitCode(1)
            }
            let out = try ArgumentCheck.either(output, "-o/--output", old: oldOutput, "--out") ?? "experiment"
            var experiment = Experiment(setups: setupList, load: LoadSpec(tool: load, connections: connections, pipeline: pipeline),
                                        duration: try duration.checked("--duration"), warmup: try warmup.checked("--warmup"),
                                        directory: out)
            experiment.guests = try guestList()
            experiment.kernelEvents = kernelEvents
            let result = try experiment.run(say: { printError($0) })
            print(ExperimentSummary.render(result))
            print("Wrote \(out)/experiment.json, \(out)/experiment.html and one trace + report per setup.")
            if !result.setups.contains(where: { $0.report != nil }) { throw ExitCode(1) }
        }
    }
}
