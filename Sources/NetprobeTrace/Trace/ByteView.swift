import NetprobeModel
/// Little helpers to read fixed-width integers from raw bytes in a given byte order.
/// Bounds are the caller's responsibility: every view checks its length once, up front.
@inline(__always)
func readU16(_ p: UnsafeRawBufferPointer, _ offset: Int, swapped: Bool) -> UInt16 {
    let v = p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
    return swapped ? v.byteSwapped : v
}

@inline(__always)
func readU32(_ p: UnsafeRawBufferPointer, _ offset: Int, swapped: Bool) -> UInt32 {
    let v = p.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
    return swapped ? v.byteSwapped : v
}

@inline(__always)
func readU64(_ p: UnsafeRawBufferPointer, _ offset: Int, swapped: Bool) -> UInt64 {
    let v = p.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
    return swapped ? v.byteSwapped : v
}

/// Network byte order (big endian) reads, for packet headers.
@inline(__always)
func readBE16(_ p: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
    UInt16(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}

@inline(__always)
func readBE32(_ p: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
    UInt32(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
}

/// Host byte order is little endian on every platform netprobe runs on (x86_64, aarch64).
let hostIsLittleEndian = 1.littleEndian == 1
