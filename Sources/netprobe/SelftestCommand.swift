import ArgumentParser
import Foundation
import NetprobeCore
import NetprobeHarness
import NetprobeLab

extension Netprobe {
    /// `netprobe selftest`: injects known faults in the lab and checks that the report finds them.
    struct SelftestCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "selftest",
            abstract: "Inject known faults in the lab and check that the verdict names and sizes them.",
            discussion: HelpText.discussion(
                """
                Brings up a lab of its own (netprobe lab up --setup bridge --name selftest, or --name NAME), \
                captures a baseline under the built-in load (netprobe capture -- netprobe load, \
                4 connections), then injects each fault alone, captures and reports again, and \
                checks that the report puts the injected delay in the injected place and sizes it \
                within 15 %.

                tap-queue: a tbf qdisc (rate 1mbit, burst 1600 B) on the tap. The tap segment's \
                mean must match the mean wait that token bucket imposes on the request frames as \
                they arrived (replayed from the bridge's stamps and tc's parameters), and the \
                verdict must name tap.

                starved-guest: QEMU stopped (SIGSTOP) for 50 ms at a fixed period. Guest-stack p99 \
                less the baseline's p50 must match the timed stops, and the slowest 1 % must be \
                put on guest-stack; the backend's thread must read stopped in the slowest 1 %'s \
                waits in the tun queue (scheduler's events).

                redis-stall: a second client runs a 50 ms Lua busy loop (EVAL) at a fixed period. \
                Redis p99 less the baseline's p50 must match how long Redis says each EVAL ran, \
                and the slowest 1 % must be put on redis.

                slow-backend: QEMU's thread that reads the tap (found in the baseline's kernel \
                events) alone gets 1 ms of CPU per 20 ms (a cgroup v1 cpu quota); the vCPU thread \
                is not limited. The vnic-backend mean must match the requests' mean wait in the \
                tun queue as bpftrace measures it over the same tracepoints, at least 3x the \
                baseline's, and the thread must read runnable but off a CPU (starved, not busy). \
                In both, the share of the waits the thread ran must be within 5 points of \
                bpftrace's. Needs bpftrace and the cgroup v1 cpu controller.

                Prints a table of injected against measured, what each number is, and why a check \
                failed. The lab and the faults are removed in every case, Ctrl-C included. Needs \
                root; takes about 50 s with a TCG guest.
                """,
                examples: [
                    "netprobe selftest",
                    "netprobe selftest --faults redis-stall --duration 6s -o selftest",
                    "netprobe selftest --faults slow-backend,starved-guest --name selftest2",
                    "netprobe selftest --guest disk:osv-redis.qcow2 --name selftest-osv",
                ],
                exitStatus: [
                    (0, "every fault was found in the right place and sized within 15 %"),
                    (1, "a check failed (the table says which and why)"),
                    (2, "the selftest could not run (not root, the lab did not come up ...)"),
                    (130, "interrupted (Ctrl-C, SIGTERM)"),
                ]))

        @Option(help: ArgumentHelp("Faults to inject, comma separated: tap-queue, starved-guest, redis-stall, slow-backend.", valueName: "LIST"))
        var faults: String = SelftestFault.allCases.map(\.rawValue).joined(separator: ",")

        @Option(parsing: .unconditional, help: ArgumentHelp("Load (and capture) time per run (1s to 2m).", valueName: "TIME"))
        var duration = DurationArgument(.seconds(4))

        @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp(
            "Write traces, reports and selftest.json here (kept).", valueName: "DIR"))
        var output: String?

        /// The old spelling of -o.
        @Option(name: .customLong("out"), help: ArgumentHelp("Old spelling of -o.", valueName: "DIR", visibility: .hidden))
        var oldOutput: String?

        @Option(help: ArgumentHelp("Name of the lab the selftest brings up and removes (two selftests on one host need two names).", valueName: "NAME"))
        var name: String = Selftest.labName

        @Flag(help: "Keep the traces and reports (in a temporary folder unless -o is given).")
        var keep = false

        @Option(help: ArgumentHelp("The guest, as for lab up: builtin, disk:FILE[,format=raw|qcow2] or kernel:FILE[,initrd=FILE][,cmdline=TEXT] (it gets its address by DHCP).", valueName: "SPEC"))
        var guest = "builtin"

        @Option(parsing: .unconditional, help: ArgumentHelp("Guest memory in MiB, as for lab up.", valueName: "MiB"))
        var memory = 512

        func validate() throws {
            if faultList.isEmpty { throw ValidationError("Name at least one fault.") }
            for f in faultNames where SelftestFault(rawValue: f) == nil {
                throw ValidationError("Unknown fault \(f): choose from \(SelftestFault.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            let duration = try duration.checked("--duration")
            if duration.seconds < 1 || duration.seconds > 120 { throw ValidationError("--duration must be between 1s and 2m, got \(self.duration.text)") }
            _ = try ArgumentCheck.either(output, "-o/--output", old: oldOutput, "--out")
            do { try Lab.validate(name: name) } catch { throw ValidationError("\(error)") }
            do { _ = try GuestSpec(parsing: guest) } catch { throw ValidationError("\(error)") }
            try ArgumentCheck.range(memory, 16...1_048_576, "--memory")
        }

        var faultNames: [String] {
            faults.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        var faultList: [SelftestFault] { faultNames.compactMap(SelftestFault.init(rawValue:)) }

        func run() throws {
            guard geteuid() == 0 else {
                printError("netprobe selftest: needs root (it builds a lab in a network namespace, adds a qdisc, stops and throttles QEMU, and captures)")
                throw ExitCode(2)
            }
            let out = try ArgumentCheck.either(output, "-o/--output", old: oldOutput, "--out")
            let directory = out ?? NSTemporaryDirectory() + "netprobe-selftest-\(getpid())"
            do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
                printError("netprobe selftest: cannot make \(directory): \(error.localizedDescription)")
                throw ExitCode(2)
            }
            let keepFiles = keep || out != nil
            defer { if !keepFiles { try? FileManager.default.removeItem(atPath: directory) } }
            let session = SelftestSession(directory: directory, duration: try duration.checked("--duration"), faults: faultList, labName: name,
                                          guest: LabGuestOptions(spec: try GuestSpec(parsing: guest), memoryMiB: memory))
            var outcome = session.run()
            outcome.seconds = Date().timeIntervalSince(session.started)
            print(SelftestTable.render(outcome))
            if let data = try? JSONOutput.encode(outcome) {
                try? Data(data.utf8).write(to: URL(fileURLWithPath: "\(directory)/selftest.json"))
            }
            if keepFiles { print("Traces, reports and selftest.json are in \(directory)/") }
            if outcome.interrupted { throw ExitCode(130) }
            if outcome.error != nil { throw ExitCode(2) }
            if !outcome.passed { throw ExitCode(1) }
        }
    }
}
