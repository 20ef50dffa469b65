import ArgumentParser

extension Netprobe {
    /// Placeholder until selftest lands (issue 5).
    struct SelftestCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "selftest", abstract: "(not built yet) Inject known faults in the lab and check the verdict.")
        func run() throws { throw ValidationError("netprobe selftest is not built yet") }
    }
}
