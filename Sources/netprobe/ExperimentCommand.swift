import ArgumentParser
import Foundation
import NetprobeCapture
import NetprobeCore
import NetprobeLab

/// Which load generator the experiment drives.
enum LoadTool: String, ExpressibleByArgument, CaseIterable {
    case builtin, redisBenchmark = "redis-benchmark", memtier
}

extension Netprobe {
    /// `netprobe experiment`: the seed experiment in one command.
    struct ExperimentCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "experiment",
            abstract: "Run the seed experiment: Redis behind each network setup, captured, attributed and compared.",
            discussion: """
                For each setup: bring the lab up (netprobe lab up --setup S), warm Redis up, capture \
                at every vantage point under load (netprobe capture -- LOAD), report, bring the lab \
                down. A setup this host cannot provide (vhost-net without /dev/vhost-net) is listed \
                as skipped, with the reason. Then all setups are compared against the host baseline.

                Writes into --out: <setup>.pcapng (the trace), <setup>.json (its report), \
                experiment.json (every setup's report and the skipped ones), compare.json (the setups \
                side by side with ratios against the host baseline) and \
                experiment.html (charts: requests per second and latency per setup, where the time \
                goes, latency CDFs, netlink counters, and the verdict on "the bottleneck is the \
                network").
                """)

        @Option(help: ArgumentHelp("Setups to run, comma separated.", valueName: "LIST"))
        var setups: String = "host,bridge,macvtap,vhost-net,veth"

        @Option(help: "Load generator: builtin (netprobe load), redis-benchmark or memtier (memtier_benchmark, when installed).")
        var load: LoadTool = .builtin

        @Option(help: ArgumentHelp("Client connections.", valueName: "N"))
        var connections: Int = 10

        @Option(help: ArgumentHelp("Requests in flight per connection.", valueName: "P"))
        var pipeline: Int = 1

        @Option(help: ArgumentHelp("Load (and capture) time per setup.", valueName: "TIME"))
        var duration: TimeSpan = TimeSpan(nanoseconds: 10_000_000_000)

        @Option(help: ArgumentHelp("Warm-up load before each capture.", valueName: "TIME"))
        var warmup: TimeSpan = TimeSpan(nanoseconds: 2_000_000_000)

        @Option(help: ArgumentHelp("Where to write traces, reports and the HTML.", valueName: "DIR"))
        var out: String = "experiment"

        func validate() throws {
            let known = Set(LabSetup.allCases.map(\.rawValue))
            for s in setupList where !known.contains(s) {
                throw ValidationError("Unknown setup \(s): choose from \(LabSetup.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            if setupList.isEmpty { throw ValidationError("Name at least one setup.") }
            if connections < 1 || pipeline < 1 { throw ValidationError("--connections and --pipeline must be at least 1.") }
        }

        var setupList: [String] {
            setups.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }

        /// One setup's outcome.
        struct SetupResult: Codable {
            var setup: String
            var status: String
            var reason: String?
            var trace: String?
            var seconds: Double
            var report: Report?
        }

        struct ExperimentResult: Codable {
            var netprobe: String
            var startedAt: String
            var load: String
            var connections: Int
            var pipeline: Int
            var durationSeconds: Double
            var setups: [SetupResult]
        }

        func run() throws {
            guard geteuid() == 0 else {
                printError("netprobe experiment: needs root (it builds network namespaces, taps and bridges, and captures)")
                throw ExitCode(1)
            }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
            let list = setupList
            var results: [SetupResult] = []
            let started = Date()
            CNetprobeSignals.install()
            for (k, setup) in list.enumerated() {
                let t0 = Date()
                let prefix = "[\(k + 1)/\(list.count)] \(setup)"
                func say(_ s: String) {
                    FileHandle.standardError.write(Data("\(prefix): \(s) (\(TextReport.fmt(Date().timeIntervalSince(t0), 1)) s)\n".utf8))
                }
                if CNetprobeSignals.stopRequested {
                    results.append(SetupResult(setup: setup, status: "skipped", reason: "interrupted", seconds: 0))
                    continue
                }
                let result = runSetup(setup, me: me, say: say)
                results.append(SetupResult(setup: setup, status: result.status, reason: result.reason, trace: result.trace,
                                           seconds: Date().timeIntervalSince(t0), report: result.report))
                say(result.status + (result.reason.map { ": \($0)" } ?? ""))
            }
            let formatter = ISO8601DateFormatter()
            let experiment = ExperimentResult(
                netprobe: NetprobeVersion.string, startedAt: formatter.string(from: started), load: load.rawValue,
                connections: connections, pipeline: pipeline, durationSeconds: duration.seconds, setups: results)
            let json = try JSONOutput.encode(experiment)
            try Data(json.utf8).write(to: URL(fileURLWithPath: "\(out)/experiment.json"))
            let done = results.filter { $0.report != nil }
            try ExperimentOutput.write(reports: done.compactMap(\.report), names: done.map(\.setup),
                                       traces: done.map { $0.trace ?? $0.setup },
                                       skipped: results.filter { $0.report == nil }.map { ($0.setup, $0.reason ?? $0.status) },
                                       directory: out)
            print(ExperimentSummary.render(experiment))
            print("Wrote \(out)/experiment.json, \(out)/experiment.html and one trace + report per setup.")
            if done.isEmpty { throw ExitCode(1) }
        }

        /// lab up -> warm-up -> capture under load -> report -> lab down, for one setup.
        func runSetup(_ setup: String, me: String, say: (String) -> Void)
            -> (status: String, reason: String?, trace: String?, report: Report?) {
            guard let labSetup = LabSetup(rawValue: setup) else { return ("skipped", "unknown setup", nil, nil) }
            if load == .memtier && !Self.onPath("memtier_benchmark") {
                return ("skipped", "memtier_benchmark is not installed on this host", nil, nil)
            }
            let name = "exp-\(setup)"
            say("lab up")
            let state: LabState
            do {
                state = try Lab.up(LabOptions(name: name, setup: labSetup), progress: { _ in })
            } catch {
                // A setup this host cannot provide is skipped with the lab's own explanation.
                _ = try? Lab.down(name)
                return ("skipped", "\(error)", nil, nil)
            }
            defer {
                say("lab down")
                _ = try? Lab.down(name)
            }
            say("Redis at \(state.redisAddress)\(state.hypervisor.map { ", guest under \($0)" } ?? ""); warming up")
            let warm = loadCommand(me: me, target: state.redisAddress, seconds: warmup.seconds)
            _ = try? ChildProcess(["ip", "netns", "exec", state.namespace] + warm, stdout: devNull, stderr: devNull).wait(timeout: warmup.seconds + 30)
            let trace = "\(out)/\(setup).pcapng"
            say("capturing on \(state.vantages.map { "\($0.interface) (\($0.role))" }.joined(separator: ", ")) for \(duration)")
            var argv = [me, "capture", "--netns", state.namespace, "-w", trace, "--redis", state.redisAddress,
                        "--duration", "\(Int(duration.seconds) + 120)s", "--quiet"]
            for v in state.vantages where v.namespace == state.namespace {
                argv += ["-i", v.interface, "--role", "\(v.interface)=\(v.role)"]
            }
            argv += ["--"] + loadCommand(me: me, target: state.redisAddress, seconds: duration.seconds)
            let log = "\(out)/\(setup).capture.log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let fd = open(log, O_WRONLY | O_TRUNC)
            defer { close(fd) }
            let status: Int32
            do {
                status = try ChildProcess(argv, stdout: fd, stderr: fd).wait(timeout: duration.seconds + 300)
            } catch {
                return ("failed", "capture could not start: \(error)", nil, nil)
            }
            guard status == 0 else {
                let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: " | ") ?? ""
                return ("failed", "capture exited with status \(status): \(tail)", trace, nil)
            }
            say("reporting")
            do {
                let (report, _) = try ReportBuilder.build(path: trace)
                try Data(try JSONOutput.encode(report).utf8).write(to: URL(fileURLWithPath: "\(out)/\(setup).json"))
                return ("done", nil, trace, report)
            } catch {
                return ("failed", "report: \(error)", trace, nil)
            }
        }

        /// The load command for the chosen tool, running for about `seconds`.
        func loadCommand(me: String, target: String, seconds: Double) -> [String] {
            let parts = target.split(separator: ":")
            let host = parts.dropLast().joined(separator: ":"), port = String(parts.last ?? "6379")
            switch load {
            case .builtin:
                return [me, "load", "--target", target, "--connections", "\(connections)", "--pipeline", "\(pipeline)",
                        "--duration", "\(Int(max(1, seconds * 1000)))ms", "--ratio", "1:1", "--quiet"]
            case .redisBenchmark:
                // redis-benchmark runs a request count, not a time: size it for about `seconds`.
                let n = max(1000, Int(seconds * 4000))
                return ["redis-benchmark", "-h", host, "-p", port, "-c", "\(connections)", "-P", "\(pipeline)",
                        "-n", "\(n)", "-t", "set,get", "-q"]
            case .memtier:
                return ["memtier_benchmark", "-s", host, "-p", port, "-c", "\(connections)", "-t", "1",
                        "--pipeline=\(pipeline)", "--test-time=\(Int(max(1, seconds)))", "--hide-histogram"]
            }
        }

        static func onPath(_ tool: String) -> Bool {
            (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
                .contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
        }

        var devNull: Int32 { open("/dev/null", O_WRONLY) }

    }
}
