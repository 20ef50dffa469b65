import NetprobeCore

/// libFuzzer entry: the input is a whole trace file (pcap or pcapng). Any result is fine except a
/// crash, a hang or unbounded memory: errors are part of the contract.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTrace(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let reader = try? TraceReader(bytes: bytes, name: "fuzz") else { return 0 }
    let join = RequestJoin()
    let analysis = TraceAnalyzer().analyze(reader) { join.add($0) }
    _ = Report(analysis: analysis, file: "fuzz", format: reader.format.rawValue)
    _ = Attribution.compute(join, inputs: AttributionInputs(vantages: analysis.vantages.map { ($0.name, Attribution.guessRole($0.name)) }))
    return 0
}

// SwiftPM links an executable's entry point as FuzzTrace_main; hand control to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

@_cdecl("FuzzTrace_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var vector = argv
    return LLVMFuzzerRunDriver(&count, &vector) { data, size in fuzzTrace(data, size) }
}
