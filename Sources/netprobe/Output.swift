import ArgumentParser
import Foundation
import NetprobeCore
import NetprobeHarness
import NetprobeSystem

/// `--format` of the commands that print text or JSON (capture, stats, vms, lab status, load,
/// version): the same spelling and values as report's.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// `--format` of `report` and `compare`: also one self-contained HTML page with charts.
enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, html
}

/// Writes one message to standard error, its control characters but line feeds escaped (it may
/// quote names from a trace).
func printError(_ message: String) {
    FileHandle.standardError.write(Data((TerminalText.escapeKeepingLineFeeds(message) + "\n").utf8))
}

/// What `-o FILE` of report and compare may replace: a regular file that is neither one of
/// `inputs` nor a pcap or pcapng trace (-o writes the report, not packets).
func reportOutputPolicy(inputs: [String]) -> OutputFile.Policy {
    .replaceUnless(inputs: inputs) { head in
        TraceReader.format(ofFileStart: head).map {
            "holds a \($0.rawValue) trace: -o writes the report (text, JSON or HTML), not packets, and would destroy it; name another file, or remove this one first"
        }
    }
}

/// Prints `text` to standard output, or writes it to `path` (`-o FILE`) by `policy`. A write that
/// fails (a full disk, /dev/full, a closed pipe) is an error: exit 1.
func writeOutput(_ text: String, to path: String?, policy: OutputFile.Policy, what: String = "the report") throws {
    do {
        if let path {
            try OutputFile.create(path: path, policy: policy).write(text.utf8)
        } else {
            try OutputFile.writeStandardOutput(text)
        }
    } catch {
        printError("netprobe: cannot write \(what) to \(error)")
        throw ExitCode(1)
    }
}

/// `writeOutput` for report and compare, whose inputs must survive.
func writeOutput(_ text: String, to path: String?, inputs: [String]) throws {
    try writeOutput(text, to: path, policy: reportOutputPolicy(inputs: inputs))
}

/// Refuses a `-o FILE` that `writeOutput` would refuse, before any work is done.
func checkOutput(_ path: String?, inputs: [String], what: String = "the report") throws {
    guard let path else { return }
    do { try OutputFile.check(path: path, policy: reportOutputPolicy(inputs: inputs)) } catch {
        printError("netprobe: will not write \(what) to \(error)")
        throw ExitCode(1)
    }
}

/// A value as netprobe's JSON (sorted keys, pretty-printed) with its final line feed.
func jsonText(_ value: some Encodable) throws -> String {
    try JSONOutput.encode(value) + "\n"
}
