import ArgumentParser

extension Netprobe {
    /// Placeholder until the load generator lands (issue 4).
    struct LoadCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "load", abstract: "(not built yet) Built-in Redis load generator.")
        func run() throws { throw ValidationError("netprobe load is not built yet") }
    }
}
