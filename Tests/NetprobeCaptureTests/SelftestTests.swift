import Foundation
import Testing
@testable import netprobe
import NetprobeCore

/// `netprobe selftest`: end to end (the real lab, a QEMU guest behind a bridge and a tap, three
/// injected faults, the built binary's table and JSON; root), and the replay it sizes the tap
/// queue with (no root).
@Suite("selftest: injected faults are found and sized", .serialized)
struct SelftestTests {
    struct Outcome: Decodable {
        struct Row: Decodable {
            var fault: String
            var injectedUs: Double?
            var measuredUs: Double?
            var passed: Bool
            var reasons: [String]
        }
        var rows: [Row]
    }

    @Test("netprobe selftest: tap-queue, starved-guest and redis-stall all PASS within ±15 %, exit 0, lab removed (root, QEMU guest)",
          .enabled(if: isRoot, rootNote))
    func allFaultsPass() throws {
        let out = tempPath("-selftest")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let started = Date()
        let (status, table) = try sh([CaptureCLITests.binary, "selftest", "--out", out], allowFailure: true)
        let seconds = Date().timeIntervalSince(started)
        #expect(status == 0, "selftest exited with \(status):\n\(table)")
        let lines = table.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        for fault in SelftestFault.allCases.map(\.rawValue) {
            let row = lines.first { $0.hasPrefix(fault + " ") }
            #expect(row?.hasSuffix("PASS") == true, "\(fault): \(row ?? "not in the table")\n\(table)")
        }
        #expect(seconds < 150, "selftest took \(Int(seconds)) s")

        // selftest.json says the same, with the numbers.
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(out)/selftest.json"))
        let outcome = try JSONDecoder().decode(Outcome.self, from: data)
        #expect(outcome.rows.map(\.fault) == SelftestFault.allCases.map(\.rawValue))
        for r in outcome.rows {
            #expect(r.passed, "\(r.fault): \(r.reasons)")
            let injected = try #require(r.injectedUs, "\(r.fault): no injected size")
            let measured = try #require(r.measuredUs, "\(r.fault): no measured size")
            #expect(abs(measured - injected) <= 0.15 * injected, "\(r.fault): injected \(injected) us, measured \(measured) us")
        }

        // Nothing is left behind: no lab state, no namespace.
        let (_, namespaces) = try sh(["ip", "netns", "list"])
        #expect(!namespaces.contains("np-selftest"), "the selftest lab's namespace is still there")
        #expect(!FileManager.default.fileExists(atPath: "/run/netprobe/lab/selftest/state.json"))
    }

    // The injected size of tap-queue, computed without the lab.
    typealias A = RequestPathPackets.Arrival
    func a(_ seconds: Double, _ length: Int, request: Bool = true) -> A {
        A(timeNs: Int64(seconds * 1e9), length: length, isRequest: request, tapTimeNs: Int64(seconds * 1e9), bridged: true)
    }

    @Test("a full bucket lets a burst through, then packets wait for tokens in order, and an idle bucket refills")
    func tokenBucket() {
        // 1000 B/s, 200 B of burst: the bucket holds 0.2 s of tokens; a 100 B packet costs 0.1 s.
        let replay = TokenBucketReplay(rateBytesPerSecond: 1000, burstBytes: 200)
        let r = replay.run([a(0, 100), a(0, 100), a(0, 100), a(0.05, 100), a(1.0, 100), a(1.0, 60, request: false)])
        let waits = r.waitsNs.map { Double($0) / 1e9 }
        let expected = [0, 0, 0.1, 0.15, 0, 0]
        for (w, e) in zip(waits, expected) { #expect(abs(w - e) < 1e-6, "waits \(waits), expected \(expected)") }
        #expect(r.requests == 5)
        #expect(abs(r.meanRequestWaitNs / 1e9 - 0.25 / 5) < 1e-6)
    }

    @Test("a bare ACK behind requests takes tokens but is not in the request mean")
    func nonRequestsTakeTokens() {
        let replay = TokenBucketReplay(rateBytesPerSecond: 1000, burstBytes: 100)
        // The ACK empties the bucket; the request after it waits its whole cost.
        let r = replay.run([a(0, 100, request: false), a(0, 100)])
        #expect(r.requests == 1)
        #expect(abs(r.meanRequestWaitNs / 1e9 - 0.1) < 1e-6)
    }

    @Test("--faults takes the three names, in any order, and rejects others")
    func faultNames() throws {
        let c = try Netprobe.SelftestCommand.parse(["--faults", "redis-stall,tap-queue"])
        #expect(c.faultList == [.redisStall, .tapQueue])
        #expect(throws: (any Error).self) { try Netprobe.SelftestCommand.parse(["--faults", "tap-queue,disk-full"]) }
    }
}
