import Testing
import NetprobeCore

@Suite("run metadata: how the load command ended")
struct LoadOutcomeTests {
    static func run(_ outcome: RunMetadata.LoadOutcome?) -> RunMetadata {
        RunMetadata(netprobeVersion: "0.1.0", startedNs: 0, hostKernel: "Linux", hostname: "h", setup: nil, vantages: [],
                    filter: "tcp port 6379", snapLength: 2048, loadCommand: ["redis-benchmark", "-n", "50000"],
                    loadOutcome: outcome)
    }

    @Test("the last run block wins; a load cut short by --duration is a note that says so")
    func cutShort() throws {
        let outcome = RunMetadata.LoadOutcome(exitStatus: 143, endedByCapture: true, captureStop: "duration reached", durationNs: 20_000_000_000)
        let blocks = try [Self.run(nil), Self.run(outcome)].map { m -> NetprobeBlock in
            try #require(NetprobeBlock.decode(enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: try NetprobeBlock.run(m).payload()))
        }
        let context = CaptureContext(blocks: blocks)
        #expect(context.notes == ["load command: exit status 143: cut short: it was still running when the capture's --duration of 20 s ran out, and netprobe ended it (SIGTERM); its own results cover only part of its run"])
        #expect(CaptureContext(blocks: [blocks[0]]).notes.isEmpty)
        let finished = RunMetadata.LoadOutcome(exitStatus: 0, endedByCapture: false, captureStop: "load command exited", durationNs: nil)
        #expect(CaptureContext(blocks: [.run(Self.run(finished))]).notes.isEmpty)
        #expect(finished.summary == "exit status 0")
    }

    @Test("a run block without loadOutcome (older traces) still decodes, and the start block does not carry the key")
    func compatible() throws {
        let payload = try NetprobeBlock.run(Self.run(nil)).payload()
        #expect(!String(decoding: payload, as: UTF8.self).contains("loadOutcome"))
        #expect(NetprobeBlock.decode(enterpriseNumber: NetprobeBlock.enterpriseNumber, payload: payload) == .run(Self.run(nil)))
    }
}
