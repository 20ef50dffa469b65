import Testing
@testable import NetprobeTrace

/// The keyed hash of the connection tables.
@Suite("flow hash")
struct FlowHashTests {
    static let server = Endpoint(address: IPAddress(ipv6High: 0xFD00 << 48, low: 2), port: 6379)

    /// IPv6 clients that an unkeyed 64-bit fold of address and port (the hash before this one:
    /// `high * C ^ (low + port << 40 + 1)`, then `h ^ h >> 29`) sends to one value, whatever key
    /// is applied after it: what a crafted trace could hold.
    static func collidingUnderTheOldFold(_ n: Int) -> [Endpoint] {
        let target: UInt64 = 0x0123_4567_89AB_CDEF
        let port: UInt16 = 40000
        return (0..<n).map { i in
            let high = 0x2001_0DB8_0000_0000 | UInt64(i)
            let low = (target ^ (high &* 0xFF51_AFD7_ED55_8CCD)) &- (UInt64(port) << 40) &- 1
            return Endpoint(address: IPAddress(ipv6High: high, low: low), port: port)
        }
    }

    @Test("IPv6 clients crafted to share the old fold spread over a table's slots like any others")
    func craftedIPv6() {
        let clients = Self.collidingUnderTheOldFold(4096)
        func oldFold(_ e: Endpoint) -> UInt64 {
            var h = e.address.high &* 0xFF51_AFD7_ED55_8CCD
            h ^= e.address.low &+ (UInt64(e.port) << 40) &+ 1
            return h ^ (h >> 29)
        }
        #expect(Set(clients.map(oldFold)).count == 1)
        let hash = FlowHash()
        let slots = Set(clients.map { Int(truncatingIfNeeded: hash($0, Self.server)) & 4095 })
        // 4096 keys thrown at random into 4096 slots fill about 63 % of them.
        #expect(slots.count > 2300)
        #expect(Set(clients.map { hash($0, Self.server) }).count == clients.count)
    }

    @Test("every bit of either address, either port, the family and the extra word changes the hash")
    func everyInputCounts() {
        let hash = FlowHash()
        let client = Endpoint(address: IPAddress(ipv6High: 0x2001_0DB8_0000_0001, low: 0x1234_5678_9ABC_DEF0), port: 40000)
        let base = hash(client, Self.server, 3)
        var seen: Set<UInt64> = [base]
        for bit in 0..<64 {
            var c = client
            c.address.high ^= 1 << UInt64(bit)
            seen.insert(hash(c, Self.server, 3))
            c = client
            c.address.low ^= 1 << UInt64(bit)
            seen.insert(hash(c, Self.server, 3))
            var s = Self.server
            s.address.high ^= 1 << UInt64(bit)
            seen.insert(hash(client, s, 3))
            s = Self.server
            s.address.low ^= 1 << UInt64(bit)
            seen.insert(hash(client, s, 3))
            seen.insert(hash(client, Self.server, 3 ^ 1 << UInt64(bit)))
        }
        for bit in 0..<16 {
            var c = client
            c.port ^= 1 << UInt16(bit)
            seen.insert(hash(c, Self.server, 3))
            var s = Self.server
            s.port ^= 1 << UInt16(bit)
            seen.insert(hash(client, s, 3))
        }
        var v4 = client
        v4.address.isIPv6 = false
        seen.insert(hash(v4, Self.server, 3))
        #expect(seen.count == 1 + 5 * 64 + 2 * 16 + 1)
        // Keys differ per hash: the same connection hashes differently in another table.
        #expect(FlowHash()(client, Self.server, 3) != base)
    }
}
