// netprobe-bench: how fast netprobe reads and analyses traces, and whether memory stays flat.
//
//   swift run -c release netprobe-bench [TRACE] [--copies N]
//
// Without TRACE it synthesises a pcapng of pipelined Redis conversations (two vantage points).
// Every figure is a ratio against baselines measured in the same run on the same file:
//   - read(2) of the whole file into a buffer (the I/O floor),
//   - tcpdump -r FILE -w /dev/null (libpcap reading and writing every packet), when installed.
// Memory: the peak RSS while analysing the trace once and while analysing N copies of it
// concatenated as one longer trace; flat memory means the two peaks are close.
import Foundation
import NetprobeCore

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

func peakRSSKiB() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return -1 }
    return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? -1
}

/// A pcapng with `conversations` connections, each sending pipelined GET/SET batches, seen at two
/// interfaces; sections can be repeated to make a longer trace with the same content.
func synthesise(path: String, batches: Int, sections: Int) throws {
    let e = PcapngEncoder()
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    defer { try? out.close() }
    func ip(_ last: UInt8) -> [UInt8] { [10, 0, 0, last] }
    func frame(src: UInt8, dst: UInt8, sport: UInt16, dport: UInt16, seq: UInt32, ack: UInt32, flags: UInt8, payload: [UInt8]) -> [UInt8] {
        var f: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]
        let total = 40 + payload.count
        f += [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 1, 0x40, 0, 64, 6, 0, 0] + ip(src) + ip(dst)
        f += [UInt8(sport >> 8), UInt8(sport & 0xff), UInt8(dport >> 8), UInt8(dport & 0xff)]
        f += [UInt8(seq >> 24), UInt8((seq >> 16) & 0xff), UInt8((seq >> 8) & 0xff), UInt8(seq & 0xff)]
        f += [UInt8(ack >> 24), UInt8((ack >> 16) & 0xff), UInt8((ack >> 8) & 0xff), UInt8(ack & 0xff)]
        f += [0x50, flags, 0xff, 0xff, 0, 0, 0, 0] + payload
        return f
    }
    var request: [UInt8] = []
    var reply: [UInt8] = []
    for i in 0..<16 {
        let key = "key:\(i)"
        if i % 2 == 0 {
            request += Array("*3\r\n$3\r\nSET\r\n$\(key.utf8.count)\r\n\(key)\r\n$8\r\nvalue123\r\n".utf8)
            reply += Array("+OK\r\n".utf8)
        } else {
            request += Array("*2\r\n$3\r\nGET\r\n$\(key.utf8.count)\r\n\(key)\r\n".utf8)
            reply += Array("$8\r\nvalue123\r\n".utf8)
        }
    }
    for _ in 0..<sections {
        var buf: [UInt8] = []
        e.appendSectionHeader(to: &buf)
        e.appendInterfaceDescription(to: &buf, linkType: .ethernet, snapLength: 65535, name: "virbr0", description: "bridge")
        e.appendInterfaceDescription(to: &buf, linkType: .ethernet, snapLength: 65535, name: "vnet0", description: "tap")
        var t: UInt64 = 1_700_000_000_000_000_000
        for conn in 0..<8 {
            let sport = UInt16(40000 + conn)
            var cs: UInt32 = 1000, ss: UInt32 = 9000
            var packets: [([UInt8], UInt64)] = []
            packets.append((frame(src: 1, dst: 2, sport: sport, dport: 6379, seq: cs, ack: 0, flags: 0x02, payload: []), t))
            packets.append((frame(src: 2, dst: 1, sport: 6379, dport: sport, seq: ss, ack: cs + 1, flags: 0x12, payload: []), t + 10))
            cs += 1; ss += 1; t += 1000
            for _ in 0..<batches {
                packets.append((frame(src: 1, dst: 2, sport: sport, dport: 6379, seq: cs, ack: ss, flags: 0x18, payload: request), t))
                cs &+= UInt32(request.count); t += 50_000
                packets.append((frame(src: 2, dst: 1, sport: 6379, dport: sport, seq: ss, ack: cs, flags: 0x18, payload: reply), t))
                ss &+= UInt32(reply.count); t += 1_000
            }
            for (f, ts) in packets {
                for interface in 0..<2 {
                    f.withUnsafeBytes { e.appendEnhancedPacket(to: &buf, interface: UInt32(interface), ticks: ts + UInt64(interface) * 700, data: $0, originalLength: f.count) }
                }
                if buf.count > 1 << 22 { out.write(Data(buf)); buf.removeAll(keepingCapacity: true) }
            }
        }
        out.write(Data(buf))
    }
}

func timeRead(_ path: String) -> Double {
    let t0 = now()
    let fd = open(path, O_RDONLY)
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress!, $0.count) }) > 0 {}
    close(fd)
    return now() - t0
}

func timeTcpdump(_ path: String) -> Double? {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tcpdump") else { return nil }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/tcpdump")
    p.arguments = ["-r", path, "-w", "/dev/null"]
    p.standardError = FileHandle.nullDevice
    let t0 = now()
    guard (try? p.run()) != nil else { return nil }
    p.waitUntilExit()
    return now() - t0
}

func timeAnalysis(_ path: String) throws -> (seconds: Double, packets: Int, requests: Int) {
    let t0 = now()
    let (report, analysis) = try ReportBuilder.build(path: path)
    return (now() - t0, analysis.packets, report.vantages.map(\.requests.total).reduce(0, +))
}

let args = CommandLine.arguments.dropFirst()
var copies = 4
var trace: String?
var it = args.makeIterator()
while let a = it.next() {
    if a == "--copies", let n = it.next().flatMap(Int.init) { copies = n } else { trace = a }
}
let dir = NSTemporaryDirectory() + "netprobe-bench-\(getpid())"
try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: dir) }
let single = trace ?? "\(dir)/one.pcapng"
if trace == nil { try synthesise(path: single, batches: 2500, sections: 1) }
let size = Double((try FileManager.default.attributesOfItem(atPath: single)[.size] as? NSNumber)?.intValue ?? 0)

// Warm the page cache, then measure each reader on the same bytes.
_ = timeRead(single)
let io = timeRead(single)
let tcpdump = timeTcpdump(single)
let first = try timeAnalysis(single)
let rssOne = peakRSSKiB()
print("trace: \(single) (\(String(format: "%.1f", size / 1e6)) MB, \(first.packets) packets, \(first.requests) requests over all vantage points)")
print(String(format: "read(2) of the file          %8.3f s  %8.0f MB/s   (baseline)", io, size / io / 1e6))
if let tcpdump {
    print(String(format: "tcpdump -r F -w /dev/null    %8.3f s  %8.0f MB/s   %6.2fx the read time", tcpdump, size / tcpdump / 1e6, tcpdump / io))
}
print(String(format: "netprobe report (analysis)   %8.3f s  %8.0f MB/s   %6.2fx the read time%@, %.0f packets/s",
             first.seconds, size / first.seconds / 1e6, first.seconds / io,
             tcpdump.map { String(format: ", %.2fx tcpdump", first.seconds / $0) } ?? "", Double(first.packets) / first.seconds))
// Memory: the same content N times as one trace (pcapng sections) must not need N times the memory.
if trace == nil {
    let long = "\(dir)/long.pcapng"
    try synthesise(path: long, batches: 2500, sections: copies)
    let longRun = try timeAnalysis(long)
    let rssLong = peakRSSKiB()
    print(String(format: "peak RSS: %d KiB after the trace, %d KiB after a %dx longer one (%.2fx); %.0f packets/s on it",
                 rssOne, rssLong, copies, Double(rssLong) / Double(max(rssOne, 1)), Double(longRun.packets) / longRun.seconds))
} else {
    print("peak RSS: \(rssOne) KiB")
}
