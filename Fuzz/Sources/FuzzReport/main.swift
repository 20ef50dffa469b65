import FuzzSupport
import Foundation
import NetprobeCore

/// libFuzzer entry: a whole trace through everything `netprobe report` does after reading —
/// analysis, netprobe's own custom blocks (JSON: netlink samples, Redis INFO, client records),
/// the cross-vantage join, attribution and the verdict, and the text, JSON and HTML renderings.
/// The numbers a trace carries (times, counters, INFO values) are untrusted here too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReport(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let reader = try? TraceReader(bytes: Array(UnsafeBufferPointer(start: data, count: size)), name: "fuzz")
    else { return 0 }
    let (report, analysis) = ReportBuilder.build(reader: reader)
    var acc = analysis.packets &+ report.segments.count &+ (report.verdict?.evidence.count ?? 0)
    acc &+= TextReport.render(report).utf8.count
    acc &+= HTMLReport.render(report).utf8.count
    // `report --format json` must always work: a NaN or an infinity in the report would not encode.
    let json = try? JSONEncoder().encode(report)
    check(json != nil, "the report does not encode as JSON")
    acc &+= json?.count ?? 0
    sink &+= acc
    return 0
}

@_cdecl("FuzzReport_main")
public func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    fuzzerMain(argc, argv, seeds: { try pcapSeeds($0) + pcapngSeeds($0) }) { fuzzReport($0, $1) }
}
