// netprobe-bench: how fast `netprobe report` analyses a trace, against a bare libpcap loop over the
// same file in the same run, and whether its memory stays flat as traces get longer.
//
//   swift run -c release netprobe-bench                 # synthetic traces of 1 M and 4 M packets
//   swift run -c release netprobe-bench TRACE           # one trace of yours
//   swift run -c release netprobe-bench --packets 8000000
//
// The synthetic trace is what `netprobe capture` writes for a bridge + tap setup: pcapng, two
// vantage points (virbr0 = bridge, vnet0 = tap; the tap copy 1.5 us later), redis-benchmark-like
// traffic (50 connections, GET and SET, one request and one reply packet each way, a pipelined
// connection among them), netlink samples at 10 Hz (in Interface Statistics Blocks, as netprobe
// stores them: MetadataCarriage). The longer trace is the same traffic going on for longer: flat
// memory means both need the same peak.
//
// Each measurement runs in a child process of its own, so peak RSS (VmHWM) is that run's alone:
//   - baseline: pcap_next_ex() over every packet (libpcap reading the file; nothing else);
//   - reader:   netprobe's pcapng/pcap reader alone;
//   - analysis: the reader + decoding, TCP reassembly, RESP, pairing per vantage point;
//   - report:   everything `netprobe report` does (decode, TCP, RESP, pairing, the cross-vantage
//               join and attribution, the report) minus printing it.
// Two rates per stage: packets per wall-clock second (what a user waits for; `report` joins the
// requests of the vantage points on a second thread while the first reads and analyses, so on a
// machine with a free CPU its wall time is below its CPU time), and packets per CPU second (user +
// system of all the child's threads: what it costs, and less disturbed by other work on a shared
// machine). Each is the best of the rounds. Run it on a quiet machine: the wall rates are only
// meaningful there (the load average is printed before and after).
// Targets (issue 2): report >= 25 % of the baseline's packet rate (per wall second; the CPU-second
// ratio is printed next to it); peak RSS for 4 M packets <= 1.2x that for 1 M packets and
// < 128 MiB. The exit status is 1 when a target is missed.
import CPcap
import Foundation
import NetprobeCore
import NetprobeSystem

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

func peakRSSKiB() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return -1 }
    return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? -1
}

// MARK: - The synthetic trace

/// Writes a pcapng of about `packets` packets (see the header comment).
func synthesise(path: String, packets target: Int) throws {
    let e = PcapngEncoder()
    guard let out = fopen(path, "w") else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    defer { fclose(out) }
    var buf: [UInt8] = []
    buf.reserveCapacity(1 << 22)
    func flush() {
        buf.withUnsafeBytes { _ = fwrite($0.baseAddress, 1, $0.count, out) }
        buf.removeAll(keepingCapacity: true)
    }
    func frame(client: UInt16, toServer: Bool, seq: UInt32, ack: UInt32, flags: UInt8, payload: [UInt8]) -> [UInt8] {
        var f: [UInt8] = toServer ? [0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x0e, 0, 0, 0, 0, 1, 0x08, 0x00]
            : [0x0e, 0, 0, 0, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x00]
        let total = 40 + payload.count
        let (src, dst): ([UInt8], [UInt8]) = toServer ? ([192, 168, 122, 1], [192, 168, 122, 10]) : ([192, 168, 122, 10], [192, 168, 122, 1])
        f += [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 1, 0x40, 0, 64, 6, 0, 0] + src + dst
        let (sport, dport) = toServer ? (client, UInt16(6379)) : (UInt16(6379), client)
        f += [UInt8(sport >> 8), UInt8(sport & 0xff), UInt8(dport >> 8), UInt8(dport & 0xff)]
        f += withUnsafeBytes(of: seq.bigEndian, Array.init) + withUnsafeBytes(of: ack.bigEndian, Array.init)
        f += [0x50, flags, 0x01, 0xf5, 0, 0, 0, 0] + payload
        return f
    }
    func netlink(_ name: String, _ interface: UInt32, _ t: Int64, _ n: Int) {
        let sample = NetlinkSample(timeNs: t, interface: name, link: LinkCounters(
            rxPackets: UInt64(n), rxBytes: UInt64(n * 90), rxErrors: 0, rxDropped: 0,
            txPackets: UInt64(n), txBytes: UInt64(n * 80), txErrors: 0, txDropped: 0),
            qdisc: QdiscCounters(kind: "noqueue", backlog: 0, qlen: 0, drops: 0, overlimits: 0, requeues: 0))
        try! e.appendNetprobeData(to: &buf, payload: NetprobeBlock.netlink(sample).payload(), interface: interface, ticks: UInt64(t))
    }
    e.appendSectionHeader(to: &buf)
    e.appendInterfaceDescription(to: &buf, linkType: .ethernet, snapLength: 2048, name: "virbr0", description: "bridge")
    e.appendInterfaceDescription(to: &buf, linkType: .ethernet, snapLength: 2048, name: "vnet0", description: "tap")
    let connections = 50
    let pipelined = 0 // connection 0 sends 4 requests per packet
    var clientSeq = [UInt32](repeating: 1001, count: connections)
    var serverSeq = [UInt32](repeating: 5001, count: connections)
    var t: Int64 = 1_790_000_000_000_000_000
    var written = 0
    var nextSample = t
    var samples = 0
    for c in 0..<connections {
        let port = UInt16(40000 + c)
        let syn = frame(client: port, toServer: true, seq: 1000, ack: 0, flags: 0x02, payload: [])
        let synAck = frame(client: port, toServer: false, seq: 5000, ack: 1001, flags: 0x12, payload: [])
        for (f, dt) in [(syn, Int64(0)), (synAck, Int64(30_000))] {
            for i in 0..<2 { f.withUnsafeBytes { e.appendEnhancedPacket(to: &buf, interface: UInt32(i), ticks: UInt64(t + dt + Int64(i) * 1500), data: $0, originalLength: f.count) } }
            written += 2
        }
        t += 50_000
    }
    var n = 0
    while written < target {
        let c = n % connections
        let port = UInt16(40000 + c)
        let batch = c == pipelined ? 4 : 1
        var request: [UInt8] = []
        var reply: [UInt8] = []
        for b in 0..<batch {
            let key = "key:\(String(format: "%012d", (n * 7 + b) % 100_000))"
            if (n + b) % 2 == 0 {
                request += Array("*3\r\n$3\r\nSET\r\n$16\r\n\(key)\r\n$3\r\nxxx\r\n".utf8)
                reply += Array("+OK\r\n".utf8)
            } else {
                request += Array("*2\r\n$3\r\nGET\r\n$16\r\n\(key)\r\n".utf8)
                reply += Array("$3\r\nxxx\r\n".utf8)
            }
        }
        let q = frame(client: port, toServer: true, seq: clientSeq[c], ack: serverSeq[c], flags: 0x18, payload: request)
        clientSeq[c] &+= UInt32(request.count)
        let r = frame(client: port, toServer: false, seq: serverSeq[c], ack: clientSeq[c], flags: 0x18, payload: reply)
        serverSeq[c] &+= UInt32(reply.count)
        // 20 us between requests (50 k requests/s), 400-700 us in the guest, tap 1.5 us after bridge.
        let inGuest = Int64(400_000 + (n * 7919) % 300_000)
        for i in 0..<2 {
            q.withUnsafeBytes { e.appendEnhancedPacket(to: &buf, interface: UInt32(i), ticks: UInt64(t + Int64(i) * 1500), data: $0, originalLength: q.count) }
        }
        for i in 0..<2 {
            r.withUnsafeBytes { e.appendEnhancedPacket(to: &buf, interface: UInt32(i), ticks: UInt64(t + inGuest + Int64(1 - i) * 1500), data: $0, originalLength: r.count) }
        }
        written += 4
        n += 1
        t += 20_000
        if t >= nextSample {
            netlink("virbr0", 0, t, n)
            netlink("vnet0", 1, t, n)
            samples += 1
            nextSample += 100_000_000
        }
        if buf.count > 1 << 22 { flush() }
    }
    flush()
}

// MARK: - Measurements (each in a child process)

func baseline(_ path: String) -> Int {
    var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
    guard let p = pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errbuf) else {
        FileHandle.standardError.write(Data("pcap_open_offline: \(String(decoding: errbuf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))\n".utf8))
        exit(2)
    }
    defer { pcap_close(p) }
    var header: UnsafeMutablePointer<pcap_pkthdr>?
    var data: UnsafePointer<UInt8>?
    var n = 0
    var sum = 0 // touch the data, as any reader must
    while pcap_next_ex(p, &header, &data) == 1 {
        n += 1
        if let header, let data, header.pointee.caplen > 0 { sum &+= Int(data[Int(header.pointee.caplen) - 1]) }
    }
    return n + (sum & 0) // keep `sum` alive
}

func readerOnly(_ path: String) throws -> Int {
    let reader = try TraceReader(path: path)
    var n = 0
    while let p = try reader.next() { n += 1; _ = p.timestampNs }
    return n
}

func analysisOnly(_ path: String) throws -> Int {
    TraceAnalyzer().analyze(try TraceReader(path: path)).packets
}

func report(_ path: String) throws -> Int {
    let (_, analysis) = try ReportBuilder.build(path: path)
    return analysis.packets
}

/// Child mode: `netprobe-bench --child KIND FILE` prints "packets seconds peakKiB".
if CommandLine.arguments.count == 4 && CommandLine.arguments[1] == "--child" {
    let kind = CommandLine.arguments[2], path = CommandLine.arguments[3]
    let t0 = now()
    let packets: Int
    switch kind {
    case "baseline": packets = baseline(path)
    case "reader": packets = try readerOnly(path)
    case "analysis": packets = try analysisOnly(path)
    default: packets = try report(path)
    }
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    print(packets, now() - t0, cpu, peakRSSKiB())
    exit(0)
}

/// One child's run (or the best of several: the shortest wall time and the least CPU time, which
/// may come from different runs).
struct Run {
    var packets: Int
    var seconds: Double
    var cpuSeconds: Double
    var peakKiB: Int
    var wallRate: Double { Double(packets) / seconds }
    var cpuRate: Double { Double(packets) / cpuSeconds }
}

func child(_ kind: String, _ path: String) throws -> Run {
    let me = CommandLine.arguments[0].hasPrefix("/") ? CommandLine.arguments[0]
        : FileManager.default.currentDirectoryPath + "/" + CommandLine.arguments[0]
    let r = try ChildProcess([me, "--child", kind, path], stdout: .capture)
    let status = r.wait()
    let out = r.standardOutput
    let f = out.split(whereSeparator: \.isWhitespace)
    guard status?.succeeded == true, f.count == 4, let n = Int(f[0]), let s = Double(f[1]), let c = Double(f[2]), let k = Int(f[3]) else {
        throw NSError(domain: "netprobe-bench", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(kind) run failed: \(out)"])
    }
    return Run(packets: n, seconds: s, cpuSeconds: c, peakKiB: k)
}

/// The best of `rounds` runs (the least disturbed by anything else on the machine).
func best(_ kind: String, _ path: String, rounds: Int) throws -> Run {
    var runs: [Run] = []
    for _ in 0..<rounds { runs.append(try child(kind, path)) }
    return Run(packets: runs[0].packets, seconds: runs.map(\.seconds).min()!, cpuSeconds: runs.map(\.cpuSeconds).min()!,
               peakKiB: runs.map(\.peakKiB).max()!)
}

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}

var args = Array(CommandLine.arguments.dropFirst())
var trace: String?
var packets = 4_000_000
var rounds = 3
var synthesiseTo: String?
while !args.isEmpty {
    let a = args.removeFirst()
    switch a {
    case "--packets": packets = Int(args.isEmpty ? "" : args.removeFirst()) ?? packets
    case "--rounds": rounds = Int(args.isEmpty ? "" : args.removeFirst()) ?? rounds
    case "--synthesise": synthesiseTo = args.isEmpty ? "synthetic.pcapng" : args.removeFirst()
    case "-h", "--help":
        print("""
            usage: netprobe-bench [TRACE] [--packets N (default 4000000)] [--rounds R (default 3)] [--synthesise FILE]
              TRACE          measure on this trace instead of synthetic ones (no memory check then)
              --synthesise   write the synthetic trace of --packets packets to FILE and stop (for profiling:
                             perf record netprobe-bench --child analysis|report FILE)
            """)
        exit(0)
    default: trace = a
    }
}
if let path = synthesiseTo {
    try synthesise(path: path, packets: packets)
    print("wrote \(path)")
    exit(0)
}

let dir = NSTemporaryDirectory() + "netprobe-bench-\(getpid())"
try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: dir) }

func mb(_ path: String) -> Double { Double((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)??.intValue ?? 0) / 1e6 }
func line(_ name: String, _ r: Run, _ base: Run) {
    print(String(format: "  %@ %9.2f M/s %6.1f %%   %9.2f M/CPU-s %6.1f %%   wall %6.3f s  CPU %6.3f s  peak RSS %6.1f MiB",
                 name.padding(toLength: 38, withPad: " ", startingAt: 0), r.wallRate / 1e6, 100 * r.wallRate / base.wallRate,
                 r.cpuRate / 1e6, 100 * r.cpuRate / base.cpuRate, r.seconds, r.cpuSeconds, Double(r.peakKiB) / 1024))
}

var failed = false
let long = trace ?? "\(dir)/long.pcapng"
if trace == nil {
    FileHandle.standardError.write(Data("synthesising \(packets) packets and \(packets / 4)...\n".utf8))
    try synthesise(path: long, packets: packets)
}
_ = try child("baseline", long) // warm the page cache
print("load average before: \(loadAverage()); CPUs online: \(sysconf(Int32(_SC_NPROCESSORS_ONLN)))")
let base = try best("baseline", long, rounds: rounds)
let reader = try best("reader", long, rounds: rounds)
let analysis = try best("analysis", long, rounds: rounds)
let full = try best("report", long, rounds: rounds)
print("load average after: \(loadAverage())")
print("trace: \(trace ?? "synthetic bridge + tap pcapng") (\(String(format: "%.0f", mb(long))) MB, \(base.packets) packets); best of \(rounds) runs each")
print("  stage                                   packets per wall second    packets per CPU second")
line("baseline: libpcap pcap_next_ex loop", base, base)
line("netprobe reader only", reader, base)
line("+ decode, TCP, RESP, pairing", analysis, base)
line("netprobe report (everything)", full, base)
let share = full.wallRate / base.wallRate
print(String(format: "report's packet rate: %.1f %% of the bare libpcap loop's per wall second (target >= 25 %%): %@; %.1f %% per CPU second",
             share * 100, share >= 0.25 ? "met" : "MISSED", 100 * full.cpuRate / base.cpuRate))
if share < 0.25 { failed = true }
if trace == nil {
    let short = "\(dir)/short.pcapng"
    try synthesise(path: short, packets: packets / 4)
    let small = try best("report", short, rounds: 1)
    let ratio = Double(full.peakKiB) / Double(small.peakKiB)
    print(String(format: "peak RSS: %.1f MiB for %d packets, %.1f MiB for %d packets: %.2fx (target <= 1.2x, < 128 MiB): %@",
                 Double(small.peakKiB) / 1024, small.packets, Double(full.peakKiB) / 1024, full.packets, ratio,
                 ratio <= 1.2 && full.peakKiB < 128 * 1024 ? "met" : "MISSED"))
    if ratio > 1.2 || full.peakKiB >= 128 * 1024 { failed = true }
}
exit(failed ? 1 : 0)
