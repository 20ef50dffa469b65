import Foundation
import Testing
import NetprobeCore
import NetprobeHarness

/// `netprobe selftest` end to end: the real lab, a QEMU guest behind a bridge and a tap, three
/// injected faults, the built binary's table and JSON (root). The replay that sizes the tap queue
/// is tested without root in NetprobeHarnessTests.
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
        let (status, table) = try sh([CaptureCLITests.binary, "selftest", "--out", out], allowFailure: true)
        #expect(status == 0, "selftest exited with \(status):\n\(table)")
        let lines = table.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        for fault in SelftestFault.allCases.map(\.rawValue) {
            let row = lines.first { $0.hasPrefix(fault + " ") }
            #expect(row?.hasSuffix("PASS") == true, "\(fault): \(row ?? "not in the table")\n\(table)")
        }

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
}
