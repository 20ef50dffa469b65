import FuzzSupport
import NetprobeCore

/// libFuzzer entry: the input is a whole trace file (pcap or pcapng), read and analysed by
/// TraceAnalyzer (decoding, reassembly, RESP, pairing). Any result is fine except a crash, a hang
/// or unbounded memory: errors are part of the contract. (Report and attribution, which cost more
/// than the rest together, have their own target: FuzzReport.)
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTrace(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let reader = try? TraceReader(bytes: Array(UnsafeBufferPointer(start: data, count: size)), name: "fuzz")
    else { return 0 }
    var paired = 0
    let analysis = TraceAnalyzer().analyze(reader) { paired &+= Int(truncatingIfNeeded: $0.latencyNs) }
    check(analysis.packetsPerInterface.reduce(0, +) == analysis.packets,
          "packets per interface add up to \(analysis.packetsPerInterface.reduce(0, +)), not \(analysis.packets)")
    var acc = paired &+ analysis.packets &+ analysis.warnings.count &+ analysis.peakHeldBytes
    for v in analysis.vantages {
        acc &+= v.packets &+ v.requests &+ v.connections &+ v.unpairedTotal &+ v.desynchronisedStreams
        acc &+= Int(truncatingIfNeeded: v.latency.valueNs(atPercentile: 50) ?? 0)
    }
    sink &+= acc
    return 0
}

@_cdecl("FuzzTrace_main")
public func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    fuzzerMain(argc, argv, seeds: { try pcapSeeds($0) + pcapngSeeds($0) }) { fuzzTrace($0, $1) }
}
