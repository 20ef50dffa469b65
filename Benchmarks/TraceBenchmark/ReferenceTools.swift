// What a user would otherwise run on the same file: tshark's RESP fields and tcpdump's text decode,
// output to /dev/null, timed from spawn to exit like any command.
import Foundation

enum ReferenceTool: String, CaseIterable {
    case tshark
    case tcpdump

    var label: String {
        switch self {
        case .tshark: "tshark -T fields -e resp.*"
        case .tcpdump: "tcpdump -nn -r (text decode)"
        }
    }

    /// The command line on `file`. tshark 4.0's RESP dissector (`tshark -G fields | grep resp`) is
    /// on port 6379 by default; `-d` says so in case a profile moved it.
    func arguments(_ file: String) -> [String] {
        switch self {
        case .tshark:
            ["tshark", "-n", "-r", file, "-d", "tcp.port==6379,resp", "-T", "fields",
             "-e", "resp.array.length", "-e", "resp.bulk_string.value", "-e", "resp.string", "-e", "resp.error", "-e", "resp.integer"]
        case .tcpdump: ["tcpdump", "-nn", "-r", file]
        }
    }

    var isInstalled: Bool {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/\(rawValue)")
        }
    }
}

/// A tool's run on a shape's file; `note` says how it was measured (a scaled prefix).
struct ToolRun {
    var run: Run
    var note: String?
}

/// Times `tool` on `file` (`packets` packets). With `prefix` below `packets`, the tool reads the
/// first `prefix` packets (editcap -r) and its time is scaled to the whole file: start-up (timed
/// on the first 10 packets) + the rest in proportion to the packets.
func timeTool(_ tool: ReferenceTool, file: String, packets: Int, prefix: Int, scratch: String) throws -> ToolRun {
    func once(_ path: String, _ n: Int) throws -> Run {
        // GNU time, when there, for the tool's own peak RSS (see spawnMeasured); its own cost is
        // a fork and a wait.
        let peakFile = "\(scratch)/\(tool.rawValue).maxrss"
        let wrapper = FileManager.default.isExecutableFile(atPath: "/usr/bin/time") ? ["/usr/bin/time", "-f", "%M", "-o", peakFile] : []
        let r = try spawnMeasured(wrapper + tool.arguments(path), stdoutPath: "/dev/null")
        guard r.status == 0 else { throw BenchError("\(tool.rawValue) on \(path) failed (status \(r.status)): \(r.stderr.suffix(500))") }
        let peak = wrapper.isEmpty ? r.peakKiB
            : Int(((try? String(contentsOfFile: peakFile, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) ?? r.peakKiB
        return Run(packets: n, seconds: r.seconds, outerSeconds: r.seconds, cpuSeconds: r.cpuSeconds, peakKiB: peak)
    }
    guard prefix < packets else { return ToolRun(run: try once(file, packets), note: nil) }
    func cut(_ n: Int) throws -> String {
        let out = "\(scratch)/prefix-\(n).\(URL(fileURLWithPath: file).pathExtension)"
        let r = try spawnMeasured(["editcap", "-r", file, out, "1-\(n)"], stdoutPath: "/dev/null")
        guard r.status == 0 else { throw BenchError("editcap -r \(file) \(out) 1-\(n) failed: \(r.stderr)") }
        return out
    }
    let startupFile = try cut(10), prefixFile = try cut(prefix)
    defer { for f in [startupFile, prefixFile] { try? FileManager.default.removeItem(atPath: f) } }
    let startup = try once(startupFile, 10)
    let part = try once(prefixFile, prefix)
    let scale = Double(packets) / Double(prefix)
    let wall = startup.seconds + max(0, part.seconds - startup.seconds) * scale
    let cpu = startup.cpuSeconds + max(0, part.cpuSeconds - startup.cpuSeconds) * scale
    return ToolRun(run: Run(packets: packets, seconds: wall, outerSeconds: wall, cpuSeconds: cpu, peakKiB: part.peakKiB),
                   note: String(format: "timed on the first %d packets (%.2f s wall, %.2f s CPU; start-up %.2f s) and scaled to %d; peak RSS at %d",
                                prefix, part.seconds, part.cpuSeconds, startup.seconds, packets, prefix))
}
