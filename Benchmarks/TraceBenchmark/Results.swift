// What one shape's measurement produced: its rows, the issue's Done-when checks, and both outputs
// (the table and --format json).
import Foundation

/// One line of the table.
struct Row: Codable {
    var stage: String
    var label: String
    var packets: Int
    var wallSeconds: Double
    var outerWallSeconds: Double
    var cpuSeconds: Double
    var peakRSSKiB: Int
    var packetsPerWallSecond: Double
    var packetsPerCPUSecond: Double
    var note: String?

    init(stage: String, label: String, _ r: Run, note: String? = nil) {
        self.stage = stage
        self.label = label
        packets = r.packets
        wallSeconds = r.seconds
        outerWallSeconds = r.outerSeconds
        cpuSeconds = r.cpuSeconds
        peakRSSKiB = r.peakKiB
        packetsPerWallSecond = r.wallRate
        packetsPerCPUSecond = r.cpuRate
        self.note = note
    }
}

/// One Done-when line: met, not met, or not applicable (nil; null in JSON).
struct Check: Codable {
    var name: String
    var met: Bool?
    var detail: String

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(met, forKey: .met)
        try c.encode(detail, forKey: .detail)
    }
}

/// A shape's results.
struct ShapeResult: Codable {
    var shape: String
    var summary: String
    var file: String
    var fileBytes: Int
    var packets: Int
    var requestsSynthesised: [String: Int]?
    var rows: [Row]
    var checks: [Check]
}

/// The whole run (`--format json`).
struct BenchResult: Codable {
    var command: String
    var cpus: Int
    var rounds: Int
    var loadAverageBefore: String
    var loadAverageAfter: String
    var shapes: [ShapeResult]
}

/// The issue's Done-when checks for one shape, from its rows.
func doneWhen(shape: String, singleVantage: Bool?, base: Run, analysis: Run, report: Run, small: Run?, tshark: Run?,
              tsharkMissing: Bool, recordsGrow: Bool) -> [Check] {
    var checks: [Check] = []
    let wall = report.wallRate / base.wallRate, cpu = report.cpuRate / base.cpuRate
    checks.append(Check(name: "report-wall-vs-libpcap", met: wall >= 0.40,
                        detail: String(format: "report %.1f %% of the libpcap loop's packets per wall second (>= 40 %%)", wall * 100)))
    checks.append(Check(name: "report-cpu-vs-libpcap", met: cpu >= 0.25,
                        detail: String(format: "report %.1f %% of the libpcap loop's packets per CPU second (>= 25 %%)", cpu * 100)))
    if singleVantage == true {
        let w = report.wallRate / analysis.wallRate, c = report.cpuRate / analysis.cpuRate
        checks.append(Check(name: "single-vantage-report-vs-pairing", met: w >= 0.9 && c >= 0.9,
                            detail: String(format: "single vantage: report %.1f %% of pairing alone per wall second, %.1f %% per CPU second (>= 90 %% each)", w * 100, c * 100)))
    }
    if let tshark {
        let x = report.outerRate / tshark.outerRate
        checks.append(Check(name: "report-vs-tshark", met: x >= 150,
                            detail: String(format: "report is %.1fx tshark's RESP field export per wall second, %.1fx per CPU second (>= 150x)", x, report.cpuRate / tshark.cpuRate)))
    } else {
        checks.append(Check(name: "report-vs-tshark", met: nil, detail: tsharkMissing ? "tshark: not installed" : "tshark: not run"))
    }
    let mib = Double(report.peakKiB) / 1024
    if recordsGrow {
        checks.append(Check(name: "peak-rss", met: nil,
                            detail: String(format: "peak RSS %.1f MiB at %d packets (no limit: the load generator's records are a table that grows with the trace)", mib, report.packets)))
    } else {
        checks.append(Check(name: "peak-rss", met: report.packets >= 4_000_000 ? mib <= 64 : nil,
                            detail: String(format: "peak RSS %.1f MiB at %d packets (<= 64 MiB at 4 M packets%@)", mib, report.packets,
                                           report.packets >= 4_000_000 ? "" : "; not checked below 4 M")))
    }
    if let small {
        // Below a million packets the fixed buffers (reader, join window, spill file's first
        // 4 MiB) are still filling: flatness is the issue's claim from 1 M to 4 M only.
        let ratio = Double(report.peakKiB) / Double(small.peakKiB)
        let applies = !recordsGrow && small.packets >= 1_000_000
        checks.append(Check(name: "peak-rss-flat", met: applies ? ratio <= 1.1 : nil,
                            detail: String(format: "peak RSS %.1f MiB at %d packets, %.1f MiB at %d: %.2fx (<= 1.1x from 1 M to 4 M%@)",
                                           Double(small.peakKiB) / 1024, small.packets, mib, report.packets, ratio,
                                           recordsGrow ? "; not required of client-records" : applies ? "" : "; not checked below 1 M")))
    }
    return checks
}

func printTable(_ s: ShapeResult) {
    print("\nshape \(s.shape): \(s.summary)")
    print(String(format: "  %d packets, %.0f MB%@", s.packets, Double(s.fileBytes) / 1e6,
                 s.requestsSynthesised.map { r in "; requests synthesised per vantage point: " + r.keys.sorted().map { "\($0) \(r[$0]!)" }.joined(separator: ", ") + " (report paired them all)" } ?? ""))
    print("  stage                                         packets per wall second    packets per CPU second")
    let base = s.rows[0]
    for r in s.rows {
        if r.packets == 0 { print("  \(r.label)"); continue } // a tool that is not installed
        // Tools are compared with spawn-to-exit wall time; our stages with the work's own.
        print(String(format: "  %@ %9.2f M/s %6.1f %%   %9.2f M/CPU-s %6.1f %%   wall %7.3f s  CPU %7.3f s  peak RSS %6.1f MiB",
                     r.label.padding(toLength: 44, withPad: " ", startingAt: 0), r.packetsPerWallSecond / 1e6,
                     100 * r.packetsPerWallSecond / base.packetsPerWallSecond, r.packetsPerCPUSecond / 1e6,
                     100 * r.packetsPerCPUSecond / base.packetsPerCPUSecond, r.wallSeconds, r.cpuSeconds, Double(r.peakRSSKiB) / 1024))
        if let note = r.note { print("      (\(note))") }
    }
    for c in s.checks {
        print("  \((c.met.map { $0 ? "met    " : "NOT met" } ?? "n/a    "))  \(c.detail)")
    }
}
