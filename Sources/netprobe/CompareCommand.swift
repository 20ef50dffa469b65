import ArgumentParser

extension Netprobe {
    /// Placeholder until compare lands (issue 6).
    struct CompareCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "compare", abstract: "(not built yet) Compare setups side by side.")
        func run() throws { throw ValidationError("netprobe compare is not built yet") }
    }
}
