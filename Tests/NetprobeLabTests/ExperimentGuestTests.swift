import Foundation
import NetprobeCore
import Testing
@testable import NetprobeLab

/// `netprobe experiment --guest NAME=SPEC`, as a user runs it: the host baseline, the built-in
/// guest and a user's guest (the built-in one as a kernel + DHCP initramfs, `OwnGuestImages`)
/// behind the bridge, short runs, then compare.json and the HTML with the three side by side.
@Suite("netprobe experiment --guest (root)", .serialized)
struct ExperimentGuestTests {
    @Test("--setups host,bridge --guest linux=builtin --guest own=kernel:...: host, linux-bridge and own-bridge captured, reported and compared against host")
    func twoGuestsAndHost() throws {
        try requireRoot()
        let images = try OwnGuestImages.get()
        let dir = NSTemporaryDirectory() + "netprobe-exp-guest-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let before = try HostSnapshot.take(testing: "exp-own-bridge")
        let spec = "kernel:\(images.kernel),initrd=\(images.dhcpInitrd),cmdline=\(OwnGuestImages.cmdline)"
        let out = try NetprobeBinary.run(["experiment", "--setups", "host,bridge", "--guest", "linux=builtin", "--guest", "own=\(spec)",
                                          "--duration", "3s", "--warmup", "1s", "-c", "2", "-o", dir])
        #expect(out.status == 0, "\(out.stdout)\n\(out.stderr)")
        // The progress names each run; the table has a row per run.
        for name in ["host", "linux-bridge", "own-bridge"] {
            #expect(out.stderr.contains("] \(name): "), "\(out.stderr)")
            #expect(FileManager.default.fileExists(atPath: "\(dir)/\(name).pcapng"), "no trace for \(name)")
        }
        let experiment = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/experiment.json"))) as? [String: Any]
        let setups = try #require(experiment?["setups"] as? [[String: Any]])
        #expect(setups.map { $0["setup"] as? String } == ["host", "linux-bridge", "own-bridge"])
        #expect(setups.allSatisfy { $0["status"] as? String == "done" }, "\(setups.map { ($0["setup"] ?? "", $0["status"] ?? "", $0["reason"] ?? "") })")
        // Each guest run captured requests at the bridge and the tap, and was attributed.
        for s in setups where (s["setup"] as? String)?.hasSuffix("-bridge") == true {
            let report = try #require(s["report"] as? [String: Any])
            let vantages = try #require(report["vantages"] as? [[String: Any]])
            #expect(Set(vantages.compactMap { $0["name"] as? String }).isSuperset(of: ["virbr0", "vnet0"]))
            let requests = vantages.compactMap { ($0["requests"] as? [String: Any])?["total"] as? Int }
            #expect(requests.allSatisfy { $0 > 100 }, "\(requests)")
            #expect(report["verdict"] != nil)
        }
        let compare = try String(contentsOfFile: "\(dir)/compare.json", encoding: .utf8)
        for name in ["host", "linux-bridge", "own-bridge"] { #expect(compare.contains("\"\(name)\"")) }
        let html = try String(contentsOfFile: "\(dir)/experiment.html", encoding: .utf8)
        #expect(html.contains("own-bridge") && html.contains("linux-bridge"))
        #expect(try HostSnapshot.take(testing: "exp-own-bridge") == before, "the experiment left something behind")
    }
}
