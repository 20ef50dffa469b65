import NetprobeModel
/// Encodes pcapng blocks (draft-ietf-opsawg-pcapng) into a byte buffer.
///
/// netprobe's capture writes its traces with this; tests use it to build fixtures in both byte
/// orders. Every `append…` call adds one complete block, so a file cut after any call is valid up
/// to its last complete block.
public struct PcapngEncoder: Sendable {
    /// Write in the opposite of the host's byte order (for tests of readers).
    public var swapped: Bool

    public init(swapped: Bool = false) { self.swapped = swapped }

    /// A pcapng option: code and raw value (padding is added when encoding). The value's length is
    /// a 16-bit field: at most 65,535 bytes (`MetadataCarriage` cuts longer data into pieces).
    public struct Option: Sendable {
        public var code: UInt16
        public var value: [UInt8]
        public init(_ code: UInt16, _ value: [UInt8]) {
            self.code = code
            self.value = value
        }
        public init(_ code: UInt16, string: String) { self.init(code, Array(string.utf8)) }
        public init(_ code: UInt16, u64: UInt64, swapped: Bool) {
            let v = swapped ? u64.byteSwapped : u64
            self.init(code, withUnsafeBytes(of: v) { Array($0) })
        }
        /// A timestamp option (isb_starttime, isb_endtime): two 32-bit words, high then low, in
        /// the section's byte order, as an Enhanced Packet Block's timestamp.
        public init(_ code: UInt16, ticks: UInt64, swapped: Bool) {
            let words = [UInt32(truncatingIfNeeded: ticks >> 32), UInt32(truncatingIfNeeded: ticks)].map { swapped ? $0.byteSwapped : $0 }
            self.init(code, words.withUnsafeBytes { Array($0) })
        }
        /// A custom option (2988 UTF-8 / 2989 binary, copiable; 19372 / 19373 not to be copied):
        /// the Private Enterprise Number in the section's byte order, then `data` as it is.
        public init(custom code: UInt16, enterpriseNumber: UInt32, data: some Collection<UInt8>, swapped: Bool) {
            var value = withUnsafeBytes(of: swapped ? enterpriseNumber.byteSwapped : enterpriseNumber) { Array($0) }
            value.append(contentsOf: data)
            self.init(code, value)
        }
    }

    /// The custom option codes (draft-ietf-opsawg-pcapng, "Custom Options").
    public enum CustomOptionCode {
        public static let utf8Copiable: UInt16 = 2988
        public static let binaryCopiable: UInt16 = 2989
        public static let utf8NotCopiable: UInt16 = 19372
        public static let binaryNotCopiable: UInt16 = 19373
        public static func contains(_ code: UInt16) -> Bool {
            code == utf8Copiable || code == binaryCopiable || code == utf8NotCopiable || code == binaryNotCopiable
        }
    }

    // MARK: Blocks

    /// Section Header Block: shb_hardware 2, shb_os 3, shb_userappl 4, comment 1.
    public func appendSectionHeader(to out: inout [UInt8], options: [Option] = []) {
        block(0x0A0D_0D0A, to: &out, options: options) { body in
            u32(0x1A2B_3C4D, &body)
            u16(1, &body)
            u16(0, &body)
            u64(UInt64.max, &body) // section length unknown (-1)
        }
    }

    /// Interface Description Block. `tsResolution` is the if_tsresol byte (9 = nanoseconds).
    public func appendInterfaceDescription(to out: inout [UInt8], linkType: LinkType, snapLength: UInt32,
                                           name: String?, description: String? = nil, tsResolution: UInt8 = 9,
                                           filter: String? = nil, os: String? = nil, extra: [Option] = []) {
        var options: [Option] = []
        if let name { options.append(Option(2, string: name)) }
        if let description { options.append(Option(3, string: description)) }
        options.append(Option(9, [tsResolution]))
        if let filter { options.append(Option(11, [0] + Array(filter.utf8))) }
        if let os { options.append(Option(12, string: os)) }
        options += extra
        block(1, to: &out, options: options) { body in
            u16(UInt16(truncatingIfNeeded: linkType.rawValue), &body)
            u16(0, &body)
            u32(snapLength, &body)
        }
    }

    /// Enhanced Packet Block. `ticks` is the timestamp in units of the interface's if_tsresol.
    public func appendEnhancedPacket(to out: inout [UInt8], interface: UInt32, ticks: UInt64,
                                     data: UnsafeRawBufferPointer, originalLength: Int,
                                     direction: PacketDirection = .unknown) {
        let options = direction == .unknown ? [] : [Option(2, u32bytes(UInt32(direction.rawValue)))]
        block(6, to: &out, options: options) { body in
            u32(interface, &body)
            u32(UInt32(truncatingIfNeeded: ticks >> 32), &body)
            u32(UInt32(truncatingIfNeeded: ticks), &body)
            u32(UInt32(data.count), &body)
            u32(UInt32(originalLength), &body)
            body.append(contentsOf: data)
            pad(&body)
        }
    }

    /// Simple Packet Block (no interface id, no timestamp).
    public func appendSimplePacket(to out: inout [UInt8], data: UnsafeRawBufferPointer, originalLength: Int) {
        block(3, to: &out, options: []) { body in
            u32(UInt32(originalLength), &body)
            body.append(contentsOf: data)
            pad(&body)
        }
    }

    /// Interface Statistics Block: isb_starttime 2, isb_endtime 3 (in the interface's ticks),
    /// isb_ifrecv 4, isb_ifdrop 5, isb_filteraccept 6, isb_osdrop 7, isb_usrdeliv 8, a comment, and
    /// `extra` options (netprobe's data: `appendNetprobeData`).
    public func appendInterfaceStatistics(to out: inout [UInt8], interface: UInt32, ticks: UInt64,
                                          startTicks: UInt64? = nil, endTicks: UInt64? = nil,
                                          received: UInt64? = nil, interfaceDropped: UInt64? = nil,
                                          filterAccepted: UInt64? = nil, osDropped: UInt64? = nil,
                                          userDelivered: UInt64? = nil, comment: String? = nil, extra: [Option] = []) {
        var options: [Option] = []
        if let comment { options.append(Option(1, string: comment)) }
        if let startTicks { options.append(Option(2, ticks: startTicks, swapped: swapped)) }
        if let endTicks { options.append(Option(3, ticks: endTicks, swapped: swapped)) }
        for (code, value) in [(UInt16(4), received), (5, interfaceDropped), (6, filterAccepted), (7, osDropped), (8, userDelivered)] {
            if let value { options.append(Option(code, u64: value, swapped: swapped)) }
        }
        options += extra
        block(5, to: &out, options: options) { body in
            u32(interface, &body)
            u32(UInt32(truncatingIfNeeded: ticks >> 32), &body)
            u32(UInt32(truncatingIfNeeded: ticks), &body)
        }
    }

    /// Custom Block (0x00000BAD, or 0x40000BAD when it must not be copied by editors).
    public func appendCustom(to out: inout [UInt8], enterpriseNumber: UInt32, payload: [UInt8], copiable: Bool = true) {
        block(copiable ? 0x0000_0BAD : 0x4000_0BAD, to: &out, options: []) { body in
            u32(enterpriseNumber, &body)
            body.append(contentsOf: payload)
            pad(&body)
        }
    }

    /// Any block with a raw body (for tests: unknown types, Name Resolution Blocks ...).
    public func appendRaw(to out: inout [UInt8], type: UInt32, body raw: [UInt8]) {
        block(type, to: &out, options: []) { body in
            body.append(contentsOf: raw)
            pad(&body)
        }
    }

    // MARK: Encoding helpers

    private func block(_ type: UInt32, to out: inout [UInt8], options: [Option], body fill: (inout [UInt8]) -> Void) {
        let start = out.count
        u32(type, &out)
        u32(0, &out) // patched below
        fill(&out)
        if !options.isEmpty {
            for o in options {
                u16(o.code, &out)
                u16(UInt16(o.value.count), &out)
                out.append(contentsOf: o.value)
                pad(&out)
            }
            u32(0, &out) // opt_endofopt
        }
        let total = UInt32(out.count - start + 4)
        u32(total, &out)
        let v = swapped ? total.byteSwapped : total
        withUnsafeBytes(of: v) { for (i, b) in $0.enumerated() { out[start + 4 + i] = b } }
    }

    private func u16(_ v: UInt16, _ out: inout [UInt8]) {
        withUnsafeBytes(of: swapped ? v.byteSwapped : v) { out.append(contentsOf: $0) }
    }

    private func u32(_ v: UInt32, _ out: inout [UInt8]) {
        withUnsafeBytes(of: swapped ? v.byteSwapped : v) { out.append(contentsOf: $0) }
    }

    private func u64(_ v: UInt64, _ out: inout [UInt8]) {
        withUnsafeBytes(of: swapped ? v.byteSwapped : v) { out.append(contentsOf: $0) }
    }

    private func u32bytes(_ v: UInt32) -> [UInt8] {
        withUnsafeBytes(of: swapped ? v.byteSwapped : v) { Array($0) }
    }

    private func pad(_ out: inout [UInt8]) {
        while out.count % 4 != 0 { out.append(0) }
    }
}
