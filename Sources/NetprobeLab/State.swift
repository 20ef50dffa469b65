import Foundation
import NetprobeCore

/// Where one lab keeps its state, logs and private files: `/run/netprobe/lab/<name>/`.
/// (/run is emptied at boot, like the namespaces and processes the state describes.)
struct LabPaths: Sendable {
    let name: String

    var directory: String { "\(LabState.stateDirectory)/\(name)" }
    var stateFile: String { "\(directory)/state.json" }
    /// The guest's serial console.
    var consoleLog: String { "\(directory)/console.log" }
    var qemuPidFile: String { "\(directory)/qemu.pid" }
    var redisLog: String { "\(directory)/redis.log" }
    var redisPidFile: String { "\(directory)/redis.pid" }
    /// libvirtd's and virtlogd's private configuration, state and logs.
    var libvirtDirectory: String { "\(directory)/libvirt" }
    /// Paths outside `directory` that the lab created (see `CreatedPaths`).
    var createdPathsFile: String { "\(directory)/created-paths" }
}

/// Reads and writes `state.json` (`LabState` from NetprobeCore).
public enum LabStore {
    /// Names of the labs that have a state folder.
    public static func names() -> [String] {
        let fm = FileManager.default
        let names = (try? fm.contentsOfDirectory(atPath: LabState.stateDirectory)) ?? []
        return names.filter { name in
            var isDirectory: ObjCBool = false
            return fm.fileExists(atPath: "\(LabState.stateDirectory)/\(name)", isDirectory: &isDirectory) && isDirectory.boolValue
        }.sorted()
    }

    /// The state of lab `name`, or nil when it has none (or it cannot be read).
    public static func load(_ name: String) -> LabState? {
        guard let data = FileManager.default.contents(atPath: LabPaths(name: name).stateFile) else { return nil }
        return try? JSONDecoder().decode(LabState.self, from: data)
    }

    /// Every lab's state.
    public static func all() -> [LabState] { names().compactMap(load) }

    /// Writes the state atomically (a reader never sees half a file).
    static func save(_ state: LabState) throws {
        let paths = LabPaths(name: state.name)
        try GuestImageBuilder.makeDirectory(paths.directory)
        do {
            try encode(state).write(to: URL(fileURLWithPath: paths.stateFile), options: .atomic)
        } catch {
            throw LabError.file(path: paths.stateFile, detail: "cannot write the lab state: \(error.localizedDescription)")
        }
    }

    /// Pretty, key-sorted JSON of a state (also what `lab status --format json` prints).
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }
}

/// Paths outside the lab's folder that `up` created and `down` must remove: the mount points
/// and /run/libvirt link for a namespaced libvirtd, and /dev/tapN nodes made where no devtmpfs or
/// udev makes them. One line per path, `KIND PATH`, appended as soon as the path exists.
struct CreatedPaths {
    enum Kind: String {
        /// An empty folder: removed only if still empty.
        case directory
        /// A symbolic link: removed only if it still points into the lab's folder.
        case symlink
        /// A device node.
        case node
    }

    let paths: LabPaths

    func record(_ kind: Kind, _ path: String) throws {
        try GuestImageBuilder.makeDirectory(paths.directory)
        let line = "\(kind.rawValue) \(path)\n"
        if let handle = FileHandle(forWritingAtPath: paths.createdPathsFile) {
            defer { try? handle.close() }
            handle.seekToEndOfFile()
            handle.write(Data(line.utf8))
        } else {
            try GuestImageBuilder.write(Array(line.utf8), to: paths.createdPathsFile)
        }
    }

    var entries: [(Kind, String)] {
        let text = (try? String(contentsOfFile: paths.createdPathsFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2, let kind = Kind(rawValue: parts[0]) else { return nil }
            return (kind, parts[1])
        }
    }

    /// Removes what was recorded, newest first. Returns what was removed.
    func removeAll() -> [String] {
        let fm = FileManager.default
        var removed: [String] = []
        for (kind, path) in entries.reversed() {
            switch kind {
            case .directory:
                if (try? fm.contentsOfDirectory(atPath: path))?.isEmpty == true, rmdir(path) == 0 { removed.append(path) }
            case .symlink:
                if let target = try? fm.destinationOfSymbolicLink(atPath: path), target.hasPrefix(paths.directory),
                   unlink(path) == 0 { removed.append(path) }
            case .node:
                if unlink(path) == 0 { removed.append(path) }
            }
        }
        return removed
    }
}
