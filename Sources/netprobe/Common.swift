import ArgumentParser
import Foundation
import NetprobeCore

extension TimeSpan: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

/// Lab state files, read by commands that can find a lab VM by name.
enum LabStates {
    static func all() -> [LabState] {
        let dir = LabState.stateDirectory
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.sorted().compactMap { name in
            guard let data = FileManager.default.contents(atPath: "\(dir)/\(name)/state.json") else { return nil }
            return try? JSONDecoder().decode(LabState.self, from: data)
        }
    }
}

/// The role an interface most likely plays, from its name (overridden with --role).
func guessedRole(_ interface: String) -> String { VantageRole.guess(interface: interface).rawValue }
