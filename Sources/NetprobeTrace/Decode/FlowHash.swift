import NetprobeModel

/// A keyed 64-bit hash of a connection: both endpoints whole (the 128 bits of each address, its
/// family, both ports) and one more word (a vantage number), for the hand-made tables of the
/// pipeline (`FlowTable`, the join's flow cache) and as the one word the keys of
/// `ClientRecords` give Swift's hasher.
///
/// Every input word is combined with a random key before anything is folded, so a trace cannot be
/// crafted to make connections collide without knowing the key (a trace is data from anywhere: a
/// 64-bit fold of an IPv6 address made before the key went in could be collided at will). The
/// mixing is three 64 x 64 -> 128-bit multiplications, each folded by xoring its halves (wyhash's
/// "mum"): about the cost of the unkeyed mix it replaced.
package struct FlowHash: Sendable, BitwiseCopyable {
    private let k0, k1, k2, k3, k4, k5: UInt64

    /// A hash with a fresh random key.
    package init() {
        var g = SystemRandomNumberGenerator()
        // Odd keys are never zero (a zero factor would fold every value of the other to 0).
        k0 = g.next() | 1
        k1 = g.next() | 1
        k2 = g.next() | 1
        k3 = g.next() | 1
        k4 = g.next() | 1
        k5 = g.next() | 1
    }

    /// One key for the whole process (tables that live long and are many: the client records').
    package static let process = FlowHash()

    @inline(__always)
    private static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let p = a.multipliedFullWidth(by: b)
        return p.high ^ p.low
    }

    /// The hash of (client, server, extra).
    @inline(__always)
    package func callAsFunction(_ client: Endpoint, _ server: Endpoint, _ extra: UInt64 = 0) -> UInt64 {
        let c = Self.fold(client.address.high ^ k0, client.address.low ^ k1)
        let s = Self.fold(server.address.high ^ k2, server.address.low ^ k3)
        let small = UInt64(client.port) | UInt64(server.port) << 16
            | (client.address.isIPv6 ? 1 << 32 : 0) | (server.address.isIPv6 ? 1 << 33 : 0)
        return Self.fold(c ^ small ^ k4, s ^ extra ^ k5)
    }
}
