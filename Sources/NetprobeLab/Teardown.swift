import Foundation
import NetprobeCore

/// What `lab down` removed.
public struct LabTeardown: Sendable {
    /// The lab's name.
    public var name: String
    /// Network namespaces removed (with every link in them).
    public var namespaces: [String] = []
    /// Processes that were ended.
    public var processes: [Int32] = []
    /// Files, folders and links removed (the lab's folder last).
    public var paths: [String] = []
    /// Nothing of the lab was there.
    public var nothingFound: Bool { namespaces.isEmpty && processes.isEmpty && paths.isEmpty }
}

extension Lab {
    /// Whether anything of lab `name` exists (state, folder or namespace).
    static func hasLeftovers(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: LabPaths(name: name).directory)
            || Netns(name: namespace(for: name)).exists || Netns(name: serverNamespace(for: name)).exists
    }

    /// Removes everything lab `name` made: its libvirt domain, every process in its namespaces
    /// (and every recorded one that is still the lab's: see `isOurs`), the namespaces with their
    /// links, paths it created outside its folder, and the folder. Nothing there is not an error
    /// (down is idempotent). A namespace under the lab's names that is not provably the lab's
    /// (`foreignNamespaces`) is left alone with its processes; after removing the rest, down
    /// then throws `LabError.foreignNamespace`, as `up` would. A lab whose libvirtd holds domains
    /// the lab did not make (`foreignDomains`) is left whole: down throws `LabError.foreignDomains`.
    @discardableResult
    public static func down(_ name: String, progress: LabProgress = { _ in }) throws -> LabTeardown {
        guard geteuid() == 0 else { throw LabError.notRoot }
        try validate(name: name)
        return try LabLock.with(name, progress: progress) { try downLocked(name, progress: progress) }
    }

    private static func downLocked(_ name: String, progress: LabProgress) throws -> LabTeardown {
        let paths = LabPaths(name: name)
        let state = LabStore.load(name)
        // Domains someone defined on the lab's libvirtd live on its daemon, folder and bridge:
        // the lab stays whole while they are there (removing it would end and undefine them).
        let foreignDomains = foreignDomains(name, state: state)
        if !foreignDomains.isEmpty {
            progress("lab \(name): left alone: libvirt domain\(foreignDomains.count == 1 ? "" : "s") \(foreignDomains.map(\.name).joined(separator: " ")) not made by the lab")
            throw LabError.foreignDomains(lab: name, uri: state?.libvirtURI ?? "qemu:///system", namespace: state?.namespace ?? namespace(for: name),
                                          domains: foreignDomains)
        }
        var teardown = LabTeardown(name: name)
        var namespaceNames = [namespace(for: name), serverNamespace(for: name)]
        for extra in [state?.namespace].compactMap({ $0 }) + (state?.extraNamespaces ?? []) where !namespaceNames.contains(extra) {
            namespaceNames.append(extra)
        }
        let foreign = foreignNamespaces(name, state: state)
        let namespaces = namespaceNames.map(Netns.init(name:)).filter { $0.exists && !foreign.contains($0) }

        if let state, let domain = state.libvirtDomain, let uri = state.libvirtURI,
           let daemon = state.processes.first(where: { $0.what == "libvirtd" && isOurs($0, lab: name) }) {
            kill(daemon.pid, SIGCONT)  // a stopped libvirtd would leave each virsh waiting for its timeout
            progress("lab \(name): stopping libvirt domain \(domain)")
            LabLibvirt.removeDomain(domain, uri: uri)
        }
        // Processes: everything inside the lab's namespaces, and what the state recorded (in case
        // a namespace was removed behind the lab's back: its processes would keep it alive unseen).
        for _ in 0..<3 {
            var pids = namespaces.flatMap { $0.pids() }
            pids += (state?.processes ?? []).filter { isOurs($0, lab: name) }.map(\.pid)
            let ended = ProcessTable.terminate(pids)
            if ended.isEmpty { break }
            teardown.processes += ended
        }
        if !teardown.processes.isEmpty { progress("lab \(name): ended processes \(teardown.processes.map(String.init).joined(separator: " "))") }
        for namespace in namespaces {
            try namespace.delete()
            teardown.namespaces.append(namespace.name)
        }
        teardown.paths = CreatedPaths(paths: paths).removeAll()
        // /run/libvirt linked into this lab's folder is the lab's even when the record of it is
        // gone with a lost state folder (a dangling link would otherwise hide the host's).
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: LabLibvirt.hostRunDirectory),
           target.hasPrefix(paths.directory + "/"), unlink(LabLibvirt.hostRunDirectory) == 0 {
            teardown.paths.append(LabLibvirt.hostRunDirectory)
        }
        if FileManager.default.fileExists(atPath: paths.directory) {
            do { try FileManager.default.removeItem(atPath: paths.directory) } catch {
                throw LabError.file(path: paths.directory, detail: "cannot remove the lab's folder: \(error.localizedDescription)")
            }
            teardown.paths.append(paths.directory)
        }
        if let first = foreign.first {
            progress("lab \(name): left \(foreign.map(\.name).joined(separator: " ")) alone: not made by the lab")
            throw foreignNamespaceError(first, lab: name)
        }
        return teardown
    }

    /// `down` for every lab that has state. A lab left standing (domains it did not make, a
    /// foreign namespace) does not stop the others' removal; the first such error is thrown at the
    /// end, after each was reported through `progress`.
    @discardableResult
    public static func downAll(progress: LabProgress = { _ in }) throws -> [LabTeardown] {
        guard geteuid() == 0 else { throw LabError.notRoot }
        // One lab that cannot be removed completely does not stop the others'; its error follows.
        var teardowns: [LabTeardown] = []
        var firstError: (any Error)?
        for name in LabStore.names() {
            do { teardowns.append(try down(name, progress: progress)) } catch {
                progress("lab \(name): \(error)")
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
        return teardowns
    }
}
