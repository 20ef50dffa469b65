import FuzzSupport
import NetprobeCore

/// libFuzzer entry: the input is a classic pcap file. Inputs without a pcap magic number are
/// rejected (-1) so the corpus stays on the pcap reader; any outcome but a crash, a hang, unbounded
/// memory or a broken promise of `PacketRecord` is fine (errors and warnings are the contract).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPcap(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 4 else { return -1 }
    let magic = UnsafeRawPointer(data).loadUnaligned(as: UInt32.self)
    guard [magic, magic.byteSwapped].contains(where: { $0 == 0xa1b2_c3d4 || $0 == 0xa1b2_3c4d || $0 == 0xa1b2_cd34 })
    else { return -1 }
    // TraceReader(bytes:) is the public in-memory entry; it takes an array.
    guard let reader = try? TraceReader(bytes: Array(UnsafeBufferPointer(start: data, count: size)), name: "fuzz")
    else { return 0 }
    drain(reader)
    return 0
}

@_cdecl("FuzzPcap_main")
public func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    fuzzerMain(argc, argv, seeds: pcapSeeds) { fuzzPcap($0, $1) }
}
