/// Builds RESP2 `SET` and `GET` requests into a caller's buffer without allocating.
///
/// Each command has a template made once (`*3\r\n$3\r\nSET\r\n$<k>\r\n<key>\r\n$<b>\r\n<value>\r\n`
/// and `*2\r\n$3\r\nGET\r\n$<k>\r\n<key>\r\n`); a request is the template copied with the key's
/// number written into it. Keys have a fixed width (`key:0042` for a key space of 10000), so every
/// request of a command has the same length.
final class RequestEncoder {
    private struct Template {
        let bytes: UnsafeMutableRawBufferPointer
        /// Offset of the key number's first digit.
        let digits: Int
    }

    private let set: Template
    private let get: Template
    /// Digits of the key number.
    let width: Int
    /// The longest request: what a buffer must hold per request.
    let maximumLength: Int

    init(keyPrefix: String, keySpace: Int, dataSize: Int) {
        width = String(max(keySpace - 1, 0)).count
        let key = Array(keyPrefix.utf8) + [UInt8](repeating: UInt8(ascii: "0"), count: width)
        let keyHeader = Array("$\(key.count)\r\n".utf8)
        let value = [UInt8](repeating: UInt8(ascii: "x"), count: dataSize)
        let crlf: [UInt8] = [13, 10]

        let setPrefix = Array("*3\r\n$3\r\nSET\r\n".utf8) + keyHeader
        set = Self.template(setPrefix + key + crlf + Array("$\(dataSize)\r\n".utf8) + value + crlf,
                            digits: setPrefix.count + key.count - width)
        let getPrefix = Array("*2\r\n$3\r\nGET\r\n".utf8) + keyHeader
        get = Self.template(getPrefix + key + crlf, digits: getPrefix.count + key.count - width)
        maximumLength = max(set.bytes.count, get.bytes.count)
    }

    deinit {
        set.bytes.deallocate()
        get.bytes.deallocate()
    }

    private static func template(_ bytes: [UInt8], digits: Int) -> Template {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
        buffer.copyBytes(from: bytes)
        return Template(bytes: buffer, digits: digits)
    }

    /// Writes the request for `command` on key number `key` at `destination`; returns its length.
    @inline(__always)
    func encode(_ command: LoadCommandKind, key: UInt64, into destination: UnsafeMutableRawPointer) -> Int {
        let t = command == .set ? set : get
        destination.copyMemory(from: t.bytes.baseAddress!, byteCount: t.bytes.count)
        var n = key
        var i = t.digits + width - 1
        while i >= t.digits {
            destination.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 &+ n % 10), toByteOffset: i, as: UInt8.self)
            n /= 10
            i -= 1
        }
        return t.bytes.count
    }

    /// Length of a request for `command`.
    func length(of command: LoadCommandKind) -> Int { command == .set ? set.bytes.count : get.bytes.count }
}

/// SplitMix64: a small, fast generator for key numbers (not for anything secret).
struct KeyGenerator {
    private var state: UInt64
    private let space: UInt64

    init(seed: UInt64, keySpace: Int) {
        state = seed
        space = UInt64(keySpace)
    }

    /// A key number uniform in 0..<keySpace (Lemire's multiply-shift; the bias is below 2^-24
    /// for key spaces up to 10^12).
    @inline(__always)
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return z.multipliedFullWidth(by: space).high
    }
}
