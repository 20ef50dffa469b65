import ArgumentParser
import Foundation
import NetprobeCore
import NetprobeHarness

extension Netprobe {
    /// `netprobe report TRACE`: per vantage point, Redis requests by command and their latency.
    struct ReportCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "report",
            abstract: "Report Redis request latency at each vantage point of a trace.",
            discussion: HelpText.discussion(
                """
                TRACE is a pcap file (tcpdump -w, microsecond or nanosecond) or a pcapng file \
                (dumpcap, Wireshark, netprobe capture); '-' reads standard input. Each capture \
                interface in the file is a vantage point, named by its if_name (classic pcap does \
                not record the name: its single interface is called if0).

                Latency at a vantage point is the time from the packet carrying a request's last \
                byte to the packet carrying its response's first byte. Requests are paired with \
                responses in order on each connection, so pipelining is handled; a request whose \
                response is never seen is counted as unpaired, never matched to another reply.

                On a terminal, a line on standard error shows how much of the trace has been read \
                (--quiet: none); pipes and files never get it.
                """,
                examples: [
                    "netprobe report trace.pcapng",
                    "netprobe report -r trace.pcap --format json -o report.json",
                    "netprobe report trace.pcapng --format html -o report.html",
                    "netprobe report trace.pcapng --vantage vnet0 --port 6380",
                    "netprobe report dumpcap.pcapng --redis-info info.txt",
                ],
                exitStatus: [
                    (0, "the whole trace was read"),
                    (1, "the trace could not be read at all (not a pcap or pcapng file, or cut inside its first header), an option's file could not be used (--redis-info, --load-json), --vantage names no interface of the trace, or the report could not be written"),
                    (2, "the trace is damaged or cut off part-way: the report covers everything before the damage, and standard error says where it is"),
                    (3, "the trace holds no Redis request: the report says which TCP ports it saw (--port names the Redis port)"),
                ]))

        @Argument(help: ArgumentHelp("The trace to read.", valueName: "TRACE"))
        var trace: String?

        @Option(name: .customShort("r"), help: ArgumentHelp("The trace to read (as tcpdump -r).", valueName: "TRACE"))
        var readFile: String?

        @Option(help: "Output format: text (a table for people), json (for scripts) or html (one self-contained page with charts).")
        var format: ReportFormat = .text

        @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp(
            "Write the report to FILE instead of standard output (a new file, or one that is neither a pcap/pcapng trace nor the input).",
            valueName: "FILE"))
        var output: String?

        /// The old spelling of -o (tcpdump's -w writes packets, so -w for the report misled).
        @Option(name: .customShort("w"), help: ArgumentHelp("Old spelling of -o.", valueName: "FILE", visibility: .hidden))
        var oldOutput: String?

        @Option(name: .customLong("vantage"), help: ArgumentHelp(
            "Only this vantage point (interface name); repeat for several.", valueName: "NAME"))
        var vantages: [String] = []

        @Option(name: .customLong("port"), parsing: .unconditionalSingleValue, help: ArgumentHelp(
            "TCP port of the Redis server; repeat for several. Default: the port a netprobe trace records, else 6379 when it carries Redis, else the ports whose traffic looks like Redis (the report says which and why); --port turns that detection off.", valueName: "PORT"))
        var ports: [Int] = []

        @Option(name: .customLong("redis-info"), help: ArgumentHelp(
            "Saved Redis INFO output (commandstats, latencystats) for a trace made by another tool.", valueName: "FILE"))
        var redisInfo: String?

        @Option(name: .customLong("load-json"), help: ArgumentHelp(
            "memtier_benchmark's --json-out-file of the same run, shown beside the wire's view.", valueName: "FILE"))
        var loadJSON: String?

        @Flag(name: [.customLong("quiet"), .customLong("no-progress")], help: "No progress line on standard error, even on a terminal.")
        var quiet = false

        func validate() throws {
            if trace == nil && readFile == nil { throw ValidationError("Name a trace: netprobe report TRACE (or -r TRACE).") }
            if trace != nil && readFile != nil { throw ValidationError("Give the trace once: as an argument or with -r, not both.") }
            _ = try ArgumentCheck.ports(ports)
            _ = try ArgumentCheck.either(output, "-o/--output", old: oldOutput, "-w")
        }

        func run() throws {
            let path = (trace ?? readFile)!
            let output = try ArgumentCheck.either(output, "-o/--output", old: oldOutput, "-w")
            let inputs = [path, redisInfo, loadJSON].compactMap { $0 }
            try checkOutput(output, inputs: inputs)
            var options = AnalysisOptions()
            let ports = try ArgumentCheck.ports(ports)
            options.serverPorts = ports.isEmpty ? [HostPort.redisPort] : ports
            if !vantages.isEmpty { options.vantages = Set(vantages) }
            let built = try analyse(path, options: options, info: try readRedisInfo(), portFromTrace: ports.isEmpty)
            var report = built.0
            let analysis = built.1
            if let loadJSON {
                do { report.loadClient = try MemtierImport.read(path: loadJSON) } catch {
                    printError("netprobe: \(error)")
                    throw ExitCode(1)
                }
            }
            let known = Set(analysis.interfaces.map(\.name))
            let unknown = vantages.filter { !known.contains($0) }
            if !unknown.isEmpty {
                printError("netprobe: \(path) has no vantage point named \(unknown.joined(separator: ", ")); it has: \(analysis.interfaces.map(\.name).joined(separator: ", "))")
                throw ExitCode(1)
            }
            switch format {
            case .text: try writeOutput(TextReport.render(report), to: output, inputs: inputs)
            case .json: try writeOutput(try jsonText(report), to: output, inputs: inputs)
            case .html: try writeOutput(HTMLReport.render(report), to: output, inputs: inputs)
            }
            if let error = analysis.error {
                printError("netprobe: \(error)\nnetprobe: the report covers the \(analysis.packets) packets before that point")
                throw ExitCode(2)
            }
            if report.vantages.allSatisfy({ $0.requests.total == 0 }) {
                printError("netprobe: \(path): no Redis requests (see the notes for the TCP ports seen; --port names the Redis port)")
                throw ExitCode(3)
            }
        }

        /// Reads and analyses the trace, with the progress line on a terminal.
        func analyse(_ path: String, options: AnalysisOptions, info: String?, portFromTrace: Bool) throws -> (Report, TraceAnalysis) {
            let progress = ReadProgress.start(path: path, quiet: quiet)
            defer { progress?.stop() }
            do {
                return try ReportBuilder.build(path: path, options: options, redisInfo: info, portFromTrace: portFromTrace)
            } catch let error as TraceError {
                progress?.stop()
                printError("netprobe: \(error)")
                throw ExitCode(1)
            }
        }

        /// The text of --redis-info, checked to hold INFO commandstats.
        func readRedisInfo() throws -> String? {
            guard let redisInfo else { return nil }
            guard let text = try? String(contentsOfFile: redisInfo, encoding: .utf8) else {
                printError("netprobe: cannot read --redis-info \(redisInfo)")
                throw ExitCode(1)
            }
            guard !RedisInfo.commandStats(text).isEmpty else {
                printError("netprobe: \(redisInfo) holds no cmdstat_ lines: expected the output of redis-cli INFO commandstats")
                throw ExitCode(1)
            }
            return text
        }
    }
}
