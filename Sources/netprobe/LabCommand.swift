import ArgumentParser

extension Netprobe {
    /// Placeholder until the lab lands (issue 4).
    struct LabCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "lab", abstract: "(not built yet) The built-in testbed.")
        func run() throws { throw ValidationError("netprobe lab is not built yet") }
    }
}
