// netprobe-bench: how fast `netprobe report` analyses traces of several shapes, against a bare
// libpcap loop over the same file in the same run, against the tools a user would otherwise run
// (tshark's RESP fields, tcpdump's text decode), and whether its memory stays flat as traces get
// longer (issue 17).
//
//   swift run -c release netprobe-bench                          # every shape, 4 M and 1 M packets
//   swift run -c release netprobe-bench --shapes pcap,pipelined --packets 400000   # a quick subset
//   swift run -c release netprobe-bench --format json > bench.json                 # every row, for comparing
//   swift run -c release netprobe-bench TRACE                    # one trace of yours
//
// The shapes (TraceShapes, written with the writers real traces come from): two-vantage (the
// original synthetic bridge + tap pcapng), pcap (tcpdump -w on loopback), pipelined (-P 16),
// short-connections, client-records (netprobe capture -- netprobe load), macvtap (three vantage
// points). Each stage runs in a child process of its own (Stages.swift), so its CPU time (all its
// threads) and peak RSS come from wait4 alone:
//   - baseline: pcap_next_ex() over every packet (libpcap reading the file; nothing else);
//   - reader:   netprobe's pcapng/pcap reader alone;
//   - analysis: the reader + decoding, TCP reassembly, RESP, pairing per vantage point;
//   - report:   everything `netprobe report` does (the cross-vantage join and attribution, the
//               report) minus printing it; then again on the 1 M-packet file for the memory check.
// Two rates per stage: packets per wall second (what a user waits for) and per CPU second (what it
// costs; steadier on a shared machine). The best of --rounds runs is the one with the shortest
// wall time, shown with its own CPU time and peak RSS. tshark (-T fields -e resp.*) and tcpdump
// (-nn -r) write to /dev/null, timed from spawn to exit, once; on long traces on the first
// --tshark-packets / --tcpdump-packets packets (editcap -r), scaled to the whole file (start-up,
// timed on 10 packets, plus the rest in proportion), which the output says. `report` is compared
// with them by its own spawn-to-exit time. The report's requests per vantage point must
// equal those synthesised (else the run stops, exit status 3). Each shape ends with the issue's
// Done-when checks, met or NOT met; the exit status is 1 when one is not met.
import Foundation
import NetprobeCore
import TraceShapes

if CommandLine.arguments.count == 4 && CommandLine.arguments[1] == "--child", let stage = Stage(rawValue: CommandLine.arguments[2]) {
    try runChild(stage, CommandLine.arguments[3])
}

func fail(_ message: String, status: Int32 = 2) -> Never {
    FileHandle.standardError.write(Data("netprobe-bench: \(message)\n".utf8))
    exit(status)
}
func progress(_ message: String) { FileHandle.standardError.write(Data("\(message)\n".utf8)) }
func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}
func fileBytes(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)??.intValue ?? 0 }

// MARK: - Options

var args = Array(CommandLine.arguments.dropFirst())
var trace: String?
var packets = 4_000_000
var rounds = 3
var shapes = TraceShape.allCases
var tsharkPackets = 100_000
var tcpdumpPackets = 500_000
var tools = true
var json = false
var synthesiseTo: String?
while !args.isEmpty {
    let a = args.removeFirst()
    func value() -> String {
        if args.isEmpty { fail("\(a) needs a value") }
        return args.removeFirst()
    }
    func number() -> Int {
        guard let n = Int(value()), n > 0 else { fail("\(a) needs a positive number") }
        return n
    }
    switch a {
    case "--packets": packets = number()
    case "--rounds": rounds = number()
    case "--tshark-packets": tsharkPackets = number()
    case "--tcpdump-packets": tcpdumpPackets = number()
    case "--no-tools": tools = false
    case "--format":
        switch value() {
        case "json": json = true
        case "text": json = false
        default: fail("--format is text or json")
        }
    case "--shapes":
        shapes = value().split(separator: ",").map { name in
            guard let s = TraceShape(rawValue: String(name)) else {
                fail("no shape \(name); shapes: \(TraceShape.allCases.map(\.rawValue).joined(separator: ","))")
            }
            return s
        }
    case "--synthesise": synthesiseTo = value()
    case "-h", "--help":
        print("""
            usage: netprobe-bench [TRACE] [--shapes S,...] [--packets N] [--rounds R] [--tshark-packets P]
                                  [--tcpdump-packets P] [--no-tools] [--format text|json] [--synthesise FILE]
              --shapes          \(TraceShape.allCases.map(\.rawValue).joined(separator: ",")) (default: all)
              --packets N       the long trace of each shape (default 4000000); the memory check also
                                runs report on N/4
              --rounds R        runs per stage; the best is the shortest (default 3)
              --tshark-packets  time tshark on the first P packets (editcap -r) and scale (default 100000)
              --tcpdump-packets the same for tcpdump (default 500000)
              --no-tools        leave out tshark and tcpdump
              --format json     every row and check as JSON on standard output
              --synthesise F    write the first of --shapes at --packets to F and stop (for profiling:
                                perf record netprobe-bench --child analysis|report F)
              TRACE             measure this trace instead (no request or memory check then)
            """)
        exit(0)
    default:
        if a.hasPrefix("-") { fail("unknown option \(a) (see --help)") }
        trace = a
    }
}
if let path = synthesiseTo {
    let s = try shapes[0].synthesise(path: path, packets: packets)
    print("wrote \(path): \(shapes[0].rawValue), \(s.packets) packets, requests per vantage point \(s.requestsPerVantage)")
    exit(0)
}

let scratch = NSTemporaryDirectory() + "netprobe-bench-\(getpid())"
try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
// Removed at every exit: a top-level `defer` never ran, since the run ends in exit(status), and
// each run left its half-gigabyte of synthesised traces behind.
atexit { try? FileManager.default.removeItem(atPath: scratch) }
let installed = Dictionary(uniqueKeysWithValues: ReferenceTool.allCases.map { ($0, $0.isInstalled) })
let hasEditcap = FileManager.default.isExecutableFile(atPath: "/usr/bin/editcap") // with tshark (wireshark-common)

// MARK: - One shape

/// Checks that `found` (a report or analysis child's counts) is what was synthesised.
@MainActor func validate(_ found: Found, _ s: ShapeSummary, shape: String, stage: String) {
    var problems: [String] = []
    if found.requests != s.requestsPerVantage {
        problems.append("paired requests per vantage point \(found.requests), synthesised \(s.requestsPerVantage)")
    }
    if let (name, n) = found.unpaired.first(where: { $0.value != 0 }) { problems.append("\(n) unpaired at \(name)") }
    if stage == Stage.report.rawValue {
        if found.clientRecords != s.clientRecords {
            problems.append("\(found.clientRecords) requests timed by the client's records, synthesised \(s.clientRecords)")
        }
        // Every request is seen at every vantage point, so every one is joined.
        if let all = s.requestsPerVantage.values.min(), found.joined != all {
            problems.append("\(found.joined) requests joined across the vantage points, synthesised \(all)")
        }
    }
    if !problems.isEmpty {
        fail("shape \(shape), \(stage): \(problems.joined(separator: "; ")): the synthesiser and report disagree", status: 3)
    }
}

@MainActor func measure(shape: TraceShape?, file: String, summary: ShapeSummary?, smallFile: () throws -> (String, ShapeSummary)?) throws -> ShapeResult {
    let name = shape?.rawValue ?? file
    let bytes = fileBytes(file) // before `smallFile` removes it
    progress("\(name): \(summary?.packets ?? 0 > 0 ? "\(summary!.packets) packets, " : "")measuring the stages (\(rounds) runs each)...")
    _ = try runStage(.baseline, file, scratch: scratch) // warm the page cache
    let (base, _) = try bestRun(.baseline, file, rounds: rounds, scratch: scratch)
    let (reader, _) = try bestRun(.reader, file, rounds: rounds, scratch: scratch)
    let (analysis, analysed) = try bestRun(.analysis, file, rounds: rounds, scratch: scratch)
    let (full, reported) = try bestRun(.report, file, rounds: rounds, scratch: scratch)
    if let summary {
        validate(analysed, summary, shape: name, stage: Stage.analysis.rawValue)
        validate(reported, summary, shape: name, stage: Stage.report.rawValue)
    }
    var rows = [Stage.baseline, .reader, .analysis, .report].map { stage in
        Row(stage: stage.rawValue, label: stage.label, [base, reader, analysis, full][Stage.allCases.firstIndex(of: stage)!])
    }
    var tsharkRun: Run?
    if tools {
        for tool in ReferenceTool.allCases {
            guard installed[tool]! else {
                rows.append(Row(stage: tool.rawValue, label: "\(tool.label): not installed",
                                Run(packets: 0, seconds: .nan, outerSeconds: .nan, cpuSeconds: .nan, peakKiB: 0)))
                continue
            }
            progress("\(name): \(tool.rawValue)...")
            let prefix = hasEditcap ? (tool == .tshark ? tsharkPackets : tcpdumpPackets) : .max
            let t = try timeTool(tool, file: file, packets: base.packets, prefix: prefix, scratch: scratch)
            rows.append(Row(stage: tool.rawValue, label: tool.label, t.run, note: t.note))
            if tool == .tshark { tsharkRun = t.run }
        }
    }
    var small: Run?
    if let (path, s) = try smallFile() {
        progress("\(name): report on \(s.packets) packets (memory check)...")
        let (r, found) = try bestRun(.report, path, rounds: 1, scratch: scratch)
        validate(found, s, shape: name, stage: Stage.report.rawValue)
        try? FileManager.default.removeItem(atPath: path)
        small = r
        rows.insert(Row(stage: "report-small", label: String(format: "netprobe report, %.2g M packets", Double(r.packets) / 1e6), r), at: 4)
    }
    let checks = doneWhen(shape: name, singleVantage: shape?.isSingleVantage ?? (summary == nil ? nil : false), base: base,
                          analysis: analysis, report: full, small: small, tshark: tsharkRun,
                          tsharkMissing: !installed[.tshark]!, recordsGrow: shape == .clientRecords)
    return ShapeResult(shape: name, summary: shape?.summary ?? "your trace", file: file, fileBytes: bytes,
                       packets: base.packets, requestsSynthesised: summary?.requestsPerVantage, rows: rows, checks: checks)
}

// MARK: - The run

let before = loadAverage()
let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
if !json {
    print("netprobe-bench \(CommandLine.arguments.dropFirst().joined(separator: " "))")
    print("load average before: \(before); CPUs online: \(cpus); best of \(rounds) runs per stage (the shortest wall time, with its own CPU and RSS)")
}
var results: [ShapeResult] = []
if let trace {
    results.append(try measure(shape: nil, file: trace, summary: nil, smallFile: { nil }))
    if !json { printTable(results[0]) }
} else {
    for shape in shapes {
        let long = "\(scratch)/\(shape.rawValue).\(shape.fileExtension)"
        progress("\(shape.rawValue): synthesising \(packets) packets...")
        let summary = try shape.synthesise(path: long, packets: packets)
        let result = try measure(shape: shape, file: long, summary: summary) {
            let short = "\(scratch)/\(shape.rawValue)-small.\(shape.fileExtension)"
            try? FileManager.default.removeItem(atPath: long) // one big file on disk at a time
            progress("\(shape.rawValue): synthesising \(packets / 4) packets...")
            return (short, try shape.synthesise(path: short, packets: packets / 4))
        }
        results.append(result)
        if !json { printTable(result) }
    }
}
let after = loadAverage()
let unmet = results.flatMap { r in r.checks.filter { $0.met == false }.map { "\(r.shape): \($0.name)" } }
if json {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    let all = BenchResult(command: CommandLine.arguments.joined(separator: " "), cpus: cpus, rounds: rounds,
                          loadAverageBefore: before, loadAverageAfter: after, shapes: results)
    print(String(decoding: try encoder.encode(all), as: UTF8.self))
} else {
    print("\nload average after: \(after)")
    print("Done-when: \(results.map { r in "\(r.shape) \(r.checks.filter { $0.met == true }.count)/\(r.checks.filter { $0.met != nil }.count) met" }.joined(separator: "; "))")
}
exit(unmet.isEmpty ? 0 : 1)
