import Testing
@testable import NetprobeModel

@Suite struct TimeSpanTests {
    @Test(arguments: [
        ("10s", Int64(10_000_000_000)), ("500ms", 500_000_000), ("2m", 120_000_000_000), ("1h", 3_600_000_000_000),
        ("250us", 250_000), ("10ns", 10), ("1.5", 1_500_000_000), ("1m30s", 90_000_000_000),
        ("1h2m", 3_720_000_000_000), ("1.5ms", 1_500_000), ("0.0000000016", 2),
    ])
    func parses(text: String, ns: Int64) {
        #expect(TimeSpan(parsing: text)?.nanoseconds == ns)
    }

    @Test(arguments: ["", "s", "ten s", "-1s", "5x", "1e30s", "0", "0s", "1m30", "m30s", "1..5s", "nan", "inf", "1 s"])
    func rejects(text: String) {
        #expect(TimeSpan(parsing: text) == nil)
    }

    @Test func printsTheLargestWholeUnit() {
        #expect(TimeSpan.seconds(90).description == "90s")
        #expect(TimeSpan.seconds(120).description == "2m")
        #expect(TimeSpan(nanoseconds: 250_000).description == "250us")
        #expect(TimeSpan(nanoseconds: 7).description == "7ns")
        // What it prints parses back to the same length.
        for ns: Int64 in [7, 250_000, 1_500_000, 90_000_000_000, 3_600_000_000_000] {
            #expect(TimeSpan(parsing: TimeSpan(nanoseconds: ns).description)?.nanoseconds == ns)
        }
    }
}

@Suite struct HostPortTests {
    @Test(arguments: [
        ("10.77.0.2:6380", "10.77.0.2", UInt16(6380)), ("10.77.0.2", "10.77.0.2", 6379), ("[::1]:7000", "::1", 7000),
        ("::1", "::1", 6379), ("[fe80::1]", "fe80::1", 6379), ("redis.lab:1", "redis.lab", 1),
    ])
    func parses(text: String, host: String, port: UInt16) {
        let hp = HostPort(parsing: text)
        #expect(hp?.host == host)
        #expect(hp?.port == port)
    }

    @Test(arguments: ["", ":6379", "host:0", "host:65536", "host:x", "[::1", "[::1]x", "a b:1", "a/b"])
    func rejects(text: String) {
        #expect(HostPort(parsing: text) == nil)
    }

    @Test func printsBracketsAroundIPv6() {
        #expect(HostPort(host: "::1", port: 7000).description == "[::1]:7000")
        #expect(HostPort(host: "10.0.0.1", port: 6379).description == "10.0.0.1:6379")
    }
}

@Suite struct VantageRoleTests {
    @Test(arguments: [
        ("lo", VantageRole.host), ("virbr0", .bridge), ("br-lab", .bridge), ("vnet3", .tap), ("tap0", .tap),
        ("macvtap0", .macvtap), ("veth12", .veth), ("np-cli", .client), ("eth0", .other),
    ])
    func guessesFromTheName(interface: String, role: VantageRole) {
        #expect(VantageRole.guess(interface: interface) == role)
    }

    @Test func pathOrderRunsFromTheClientInwards() {
        #expect(VantageRole.client.pathRank < VantageRole.bridge.pathRank)
        #expect(VantageRole.bridge.pathRank < VantageRole.tap.pathRank)
        #expect(VantageRole.parent.pathRank < VantageRole.macvtap.pathRank)
        #expect(VantageRole.tap.pathRank < VantageRole.host.pathRank)
        #expect(VantageRole.allCases.filter(\.isGuestDevice) == [.tap, .macvtap])
    }
}
