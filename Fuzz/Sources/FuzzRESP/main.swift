import NetprobeCore

/// libFuzzer entry: the first byte picks the role and a chunk size; the rest is a RESP stream fed
/// in chunks, with an occasional run of missing bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESP(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 1 else { return 0 }
    let control = data[0]
    var decoder = RESPStreamDecoder(role: control & 1 == 0 ? .requests : .responses)
    let chunk = Int(control >> 1) % 17 + 1
    let body = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    var offset = 0
    var messages = 0
    while offset < body.count {
        let n = min(chunk, body.count - offset)
        let part = UnsafeRawBufferPointer(rebasing: body[offset..<(offset + n)])
        let ok = decoder.feed(.data(part, sequence: UInt32(truncatingIfNeeded: offset), timestampNs: Int64(offset))) { _ in
            messages += 1
        }
        if !ok { break }
        if control & 0x80 != 0 && offset % 97 == 0 {
            _ = decoder.feed(.missing(count: n, sequence: UInt32(truncatingIfNeeded: offset), timestampNs: 0, cutBySnaplen: true)) { _ in }
        }
        offset += n
    }
    return 0
}

// SwiftPM links an executable's entry point as FuzzRESP_main; hand control to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

@_cdecl("FuzzRESP_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var vector = argv
    return LLVMFuzzerRunDriver(&count, &vector) { data, size in fuzzRESP(data, size) }
}
