import ArgumentParser
import Foundation
import NetprobeCore
import NetprobeHarness

/// Output formats of the commands that print text or JSON (lab status, vms, load).
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// Output formats of `report` and `compare`: also one self-contained HTML page with charts.
enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, html
}

extension Netprobe {
    /// `netprobe report TRACE`: per vantage point, Redis requests by command and their latency.
    struct ReportCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "report",
            abstract: "Report Redis request latency at each vantage point of a trace.",
            discussion: """
                TRACE is a pcap file (tcpdump -w, microsecond or nanosecond) or a pcapng file \
                (dumpcap, Wireshark, netprobe capture); '-' reads standard input. Each capture \
                interface in the file is a vantage point, named by its if_name (classic pcap does \
                not record the name: its single interface is called if0).

                Latency at a vantage point is the time from the packet carrying a request's last \
                byte to the packet carrying its response's first byte. Requests are paired with \
                responses in order on each connection, so pipelining is handled; a request whose \
                response is never seen is counted as unpaired, never matched to another reply.

                Exit status: 0 the whole trace was read; 1 the file could not be read at all, or \
                the report could not be written; 2 the file is damaged or cut off part-way: the \
                report covers everything before the damage; 3 the trace holds no Redis request \
                (the report says which ports carried TCP).
                """)

        @Argument(help: ArgumentHelp("The trace to read.", valueName: "TRACE"))
        var trace: String?

        @Option(name: .customShort("r"), help: ArgumentHelp("The trace to read (as tcpdump -r).", valueName: "TRACE"))
        var readFile: String?

        @Option(help: "Output format: text (a table for people), json (for scripts) or html (one self-contained page with charts).")
        var format: ReportFormat = .text

        @Option(name: [.customShort("w"), .customLong("output")], help: ArgumentHelp(
            "Write the report to FILE instead of standard output (a new file, or one that is neither a pcap/pcapng trace nor the input).",
            valueName: "FILE"))
        var output: String?

        @Option(name: .customLong("vantage"), help: ArgumentHelp(
            "Only this vantage point (interface name); repeat for several.", valueName: "NAME"))
        var vantages: [String] = []

        @Option(name: .customLong("port"), help: ArgumentHelp(
            "TCP port of the Redis server; repeat for several (default: 6379, and the port a netprobe trace records).", valueName: "PORT"))
        var ports: [UInt16] = []

        @Option(name: .customLong("redis-info"), help: ArgumentHelp(
            "Saved Redis INFO output (commandstats, latencystats) for a trace made by another tool.", valueName: "FILE"))
        var redisInfo: String?

        @Option(name: .customLong("load-json"), help: ArgumentHelp(
            "memtier_benchmark's --json-out-file of the same run, shown beside the wire's view.", valueName: "FILE"))
        var loadJSON: String?

        func validate() throws {
            if trace == nil && readFile == nil { throw ValidationError("Name a trace: netprobe report TRACE (or -r TRACE).") }
            if trace != nil && readFile != nil { throw ValidationError("Give the trace once: as an argument or with -r, not both.") }
            if ports.contains(0) { throw ValidationError("--port must be between 1 and 65535.") }
        }

        func run() throws {
            let path = (trace ?? readFile)!
            let inputs = [path, redisInfo, loadJSON].compactMap { $0 }
            try checkOutput(output, inputs: inputs)
            var options = AnalysisOptions()
            options.serverPorts = ports.isEmpty ? [HostPort.redisPort] : Set(ports)
            if !vantages.isEmpty { options.vantages = Set(vantages) }
            var report: Report
            let analysis: TraceAnalysis
            do {
                var info: String?
                if let redisInfo {
                    guard let text = try? String(contentsOfFile: redisInfo, encoding: .utf8) else {
                        printError("netprobe: cannot read --redis-info \(redisInfo)")
                        throw ExitCode(1)
                    }
                    guard !RedisInfo.commandStats(text).isEmpty else {
                        printError("netprobe: \(redisInfo) holds no cmdstat_ lines: expected the output of redis-cli INFO commandstats")
                        throw ExitCode(1)
                    }
                    info = text
                }
                (report, analysis) = try ReportBuilder.build(path: path, options: options, redisInfo: info, portFromTrace: ports.isEmpty)
            } catch let error as TraceError {
                printError("netprobe: \(error)")
                throw ExitCode(1)
            }
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
            case .json: try writeOutput(try JSONOutput.encode(report) + "\n", to: output, inputs: inputs)
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
    }
}

/// Writes one message to standard error, its control characters but line feeds escaped (it may
/// quote names from a trace).
func printError(_ message: String) {
    FileHandle.standardError.write(Data((TerminalText.escapeKeepingLineFeeds(message) + "\n").utf8))
}
