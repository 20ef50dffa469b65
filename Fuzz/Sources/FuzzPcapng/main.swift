import FuzzSupport
import NetprobeCore

/// libFuzzer entry: the input is a pcapng file. Inputs that do not start with a Section Header
/// Block are rejected (-1) so the corpus stays on the pcapng reader: sections in either byte
/// order, interface options, every packet block, statistics and custom blocks.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPcapng(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 4, UnsafeRawPointer(data).loadUnaligned(as: UInt32.self) == 0x0A0D_0D0A else { return -1 }
    guard let reader = try? TraceReader(bytes: Array(UnsafeBufferPointer(start: data, count: size)), name: "fuzz")
    else { return 0 }
    drain(reader)
    return 0
}

@_cdecl("FuzzPcapng_main")
public func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    fuzzerMain(argc, argv, seeds: pcapngSeeds) { fuzzPcapng($0, $1) }
}
