// The stages measured in child processes (`netprobe-bench --child STAGE FILE`).
import CPcap
import Foundation
import NetprobeCore

enum Stage: String, CaseIterable {
    /// pcap_next_ex() over every packet: libpcap reading the file, nothing else.
    case baseline
    /// netprobe's pcapng/pcap reader alone.
    case reader
    /// The reader + decoding, TCP reassembly, RESP, pairing per vantage point.
    case analysis
    /// Everything `netprobe report` does (the cross-vantage join, attribution, the report) minus printing it.
    case report

    var label: String {
        switch self {
        case .baseline: "baseline: libpcap pcap_next_ex loop"
        case .reader: "netprobe reader only"
        case .analysis: "+ decode, TCP, RESP, pairing"
        case .report: "netprobe report (everything)"
        }
    }
}

/// Child mode: runs `stage` on `path` and prints "packets seconds peakKiB", then for `analysis`
/// and `report` "vantage NAME REQUESTS UNPAIRED" lines, and for `report` "joined N" (requests the
/// attribution joined) and "client-records N" (requests timed end to end by the load generator's
/// records). The peak is VmHWM: wait4's ru_maxrss would count the parent's pages, which the child
/// shares until it calls exec.
func runChild(_ stage: Stage, _ path: String) throws -> Never {
    let t0 = now()
    var lines: [String] = []
    let packets: Int
    switch stage {
    case .baseline:
        packets = libpcapLoop(path)
    case .reader:
        let reader = try TraceReader(path: path)
        var n = 0
        while let p = try reader.next() { n += 1; _ = p.timestampNs }
        packets = n
    case .analysis:
        let analysis = TraceAnalyzer().analyze(try TraceReader(path: path))
        packets = analysis.packets
        lines = analysis.vantages.map { "vantage \($0.name) \($0.requests) \($0.unpairedTotal)" }
    case .report:
        let (report, analysis) = try ReportBuilder.build(path: path)
        packets = analysis.packets
        lines = analysis.vantages.map { "vantage \($0.name) \($0.requests) \($0.unpairedTotal)" }
        let details = report.attribution
        lines.append("joined \(details?.requestsJoined ?? 0)")
        // The load generator's records in use: the end-to-end time is then the client's own.
        let atClient = details?.endToEndDefinition.hasPrefix("at the client") == true
        lines.append("client-records \(atClient ? details?.endToEndUs?.count ?? 0 : 0)")
    }
    let seconds = now() - t0
    print(([String(packets) + " " + String(seconds) + " " + String(peakRSSKiB())] + lines).joined(separator: "\n"))
    exit(0)
}

private func libpcapLoop(_ path: String) -> Int {
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

/// This process's peak resident set (VmHWM), KiB.
private func peakRSSKiB() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return -1 }
    return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? -1
}
