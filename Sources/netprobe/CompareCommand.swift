import ArgumentParser
import Foundation
import NetprobeCore
import NetprobeHarness
import NetprobeSystem

extension Netprobe {
    /// `netprobe compare TRACE ...`: network setups side by side, against the host baseline.
    struct CompareCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "compare",
            abstract: "Compare network setups side by side: throughput, latency, where the time goes, the verdict.",
            discussion: HelpText.discussion(
                """
                Each TRACE is one setup: a trace file (pcap or pcapng, as for netprobe report) or a \
                report saved with netprobe report --format json (recognised by its leading '{'). A \
                setup is named after the setup netprobe recorded in the trace, else after the file \
                (bridge.pcapng -> bridge); --name overrides that, once per TRACE, in order.

                Throughput and latency are those netprobe report gives at the setup's outermost \
                vantage point (the first on the attribution path, nearest the client). Ratios are \
                taken against the baseline setup, host unless --baseline names another; without a \
                setup of that name the ratios are left out, with a note.
                """,
                examples: [
                    "netprobe compare bridge.pcapng macvtap.pcapng host.pcapng",
                    "netprobe compare a.pcap b.pcap --name bridge --name host",
                    "netprobe compare experiment/*.pcapng --format html -o compare.html",
                    "netprobe compare experiment/*.json --baseline veth --format json",
                ],
                exitStatus: [
                    (0, "every input was read"),
                    (1, "an input could not be read (the message names it), --baseline names no setup, or the output could not be written"),
                    (2, "a trace is damaged part-way: its figures cover what came before"),
                ]))

        @Argument(help: ArgumentHelp("Traces or saved JSON reports, one per setup.", valueName: "TRACE"))
        var inputs: [String]

        @Option(name: .customLong("name"), help: ArgumentHelp(
            "The setup's name for the TRACE in the same position; give it once per TRACE.", valueName: "NAME"))
        var names: [String] = []

        @Option(help: ArgumentHelp("The setup the ratios are taken against (default: host).", valueName: "NAME"))
        var baseline: String?

        @Option(help: "Output format: text (tables for people), json (for scripts) or html (one self-contained page with charts).")
        var format: ReportFormat = .text

        @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp(
            "Write the output to FILE instead of standard output (a new file, or one that is neither a pcap/pcapng trace nor an input).",
            valueName: "FILE"))
        var output: String?

        /// The old spelling of -o (tcpdump's -w writes packets).
        @Option(name: .customShort("w"), help: ArgumentHelp("Old spelling of -o.", valueName: "FILE", visibility: .hidden))
        var oldOutput: String?

        @Option(name: .customLong("port"), parsing: .unconditionalSingleValue, help: ArgumentHelp(
            "TCP port of the Redis server in the traces; repeat for several. Default: the port a netprobe trace records, else 6379 when it carries Redis, else the ports whose traffic looks like Redis (the report says which and why); --port turns that detection off.", valueName: "PORT"))
        var ports: [Int] = []

        func validate() throws {
            if !names.isEmpty && names.count != inputs.count {
                throw ValidationError("Give --name once per TRACE (\(inputs.count) traces, \(names.count) names).")
            }
            if let repeated = names.first(where: { n in names.filter { $0 == n }.count > 1 }) {
                throw ValidationError("Two setups are called \(repeated): give each --name once.")
            }
            if names.contains(where: \.isEmpty) || baseline == "" { throw ValidationError("A setup name cannot be empty.") }
            _ = try ArgumentCheck.ports(ports)
            _ = try ArgumentCheck.either(output, "-o/--output", old: oldOutput, "-w")
        }

        func run() throws {
            let output = try ArgumentCheck.either(output, "-o/--output", old: oldOutput, "-w")
            var options = AnalysisOptions()
            let ports = try ArgumentCheck.ports(ports)
            options.serverPorts = ports.isEmpty ? [HostPort.redisPort] : ports
            try checkOutput(output, inputs: inputs)
            var loaded: [Comparison.Input] = []
            for (k, path) in inputs.enumerated() {
                do {
                    let report = try ReportInput.load(path: path, options: options, portFromTrace: ports.isEmpty)
                    loaded.append(Comparison.Input(report: report, file: path, name: names.isEmpty ? nil : names[k]))
                } catch {
                    printError("netprobe: \(error)")
                    throw ExitCode(1)
                }
            }
            let comparison = Comparison(loaded, baseline: baseline ?? "host")
            if let baseline, comparison.baseline == nil {
                printError("netprobe: --baseline \(baseline): no setup has that name; the setups are \(comparison.setups.map(\.name).joined(separator: ", "))")
                throw ExitCode(1)
            }
            let rendered: String
            switch format {
            case .text: rendered = ComparisonText.render(comparison)
            case .json: rendered = try jsonText(comparison)
            case .html: rendered = HTMLReport.render(comparison, reports: loaded.map(\.report))
            }
            try writeOutput(rendered, to: output, inputs: inputs)
            let damaged = comparison.setups.filter { $0.traceError != nil }
            for s in damaged {
                printError("netprobe: \(s.traceError!)\nnetprobe: the figures of \(s.name) cover what came before that point")
            }
            if !damaged.isEmpty { throw ExitCode(2) }
        }
    }
}

/// Reads one input of `compare`: a trace (analysed as `netprobe report` does) or a report saved
/// as JSON by `netprobe report --format json`.
enum ReportInput {
    struct LoadError: Error, CustomStringConvertible {
        var description: String
    }

    static func load(path: String, options: AnalysisOptions, portFromTrace: Bool = true) throws -> Report {
        guard isJSON(path: path) else { return try ReportBuilder.build(path: path, options: options, portFromTrace: portFromTrace).0 }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LoadError(description: "\(path): cannot read the file")
        }
        do {
            return try JSONDecoder().decode(Report.self, from: data)
        } catch let error as DecodingError {
            throw LoadError(description: "\(path): not a report of netprobe report --format json: \(explain(error))")
        }
    }

    /// Whether the file's first non-blank byte is `{` (a pcap or pcapng file never starts so).
    static func isJSON(path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 4096) else { return false }
        return head.first { ![0x20, 0x09, 0x0a, 0x0d].contains($0) } == UInt8(ascii: "{")
    }

    /// One line on what is wrong with the JSON, and where.
    static func explain(_ error: DecodingError) -> String {
        func at(_ path: [any CodingKey]) -> String {
            path.isEmpty ? "at the top level" : "at " + path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case let .keyNotFound(key, context): return "no \"\(key.stringValue)\" \(at(context.codingPath))"
        case let .typeMismatch(_, context), let .valueNotFound(_, context):
            return "\(context.debugDescription) \(at(context.codingPath))"
        case let .dataCorrupted(context):
            return context.codingPath.isEmpty ? "not valid JSON" : "\(context.debugDescription) \(at(context.codingPath))"
        @unknown default: return "\(error)"
        }
    }
}
