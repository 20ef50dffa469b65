import Foundation
import NetprobeCore

/// Which namespaces and processes under a lab's names really are the lab's.
///
/// A namespace called np-NAME (or np-NAME-srv) can exist without the lab having made it: made
/// by hand, by another tool, or by a lab whose state was lost. Deleting a namespace deletes its
/// links and strands its processes, so `up` and `down` delete one only when it is provably the
/// lab's:
///  - its lo carries the lab's marker, the alias `netprobe-lab NAME` (set right after
///    `ip netns add`, so it lives and dies with the namespace), or
///  - the lab's state file names it (the state is written before the namespace is made: this
///    covers a crash between `ip netns add` and setting the marker, and labs made before the
///    marker existed).
/// Anything else is foreign. Taking it over would be guessing, and a wrong guess destroys
/// someone else's work, so `up` refuses to build over it and `down` leaves it (and its
/// processes) alone; both fail with `LabError.foreignNamespace`, which says how to look at it and
/// remove it by hand. A marked namespace whose state is gone is the lab's: `up` removes it and
/// builds afresh, `down` removes it.
extension Lab {
    /// The alias of lo in every namespace lab `name` makes.
    static func marker(for name: String) -> String { "netprobe-lab \(name)" }

    /// The namespaces lab `name` could have made (np-NAME, np-NAME-srv) that exist but are not
    /// provably its own (no marker, not named by `state`).
    static func foreignNamespaces(_ name: String, state: LabState?) -> [Netns] {
        let named = Set([state?.namespace].compactMap { $0 } + (state?.extraNamespaces ?? []))
        let marker = marker(for: name)
        return [namespace(for: name), serverNamespace(for: name)].map(Netns.init(name:)).filter { netns in
            netns.exists && !named.contains(netns.name) && netns.marker != marker
        }
    }

    /// The error for a foreign namespace: what is in it, and how to deal with it.
    static func foreignNamespaceError(_ netns: Netns, lab name: String) -> LabError {
        let links = ((try? netns.ip("-j", "link", "show").stdout).flatMap { try? JSONDecoder().decode([LinkInfo].self, from: Data($0.utf8)) } ?? [])
            .map(\.ifname).filter { $0 != "lo" }
        return .foreignNamespace(namespace: netns.name, lab: name, stateFile: LabPaths(name: name).stateFile,
                                 marker: marker(for: name), processes: netns.pids().count, links: links)
    }

    /// A process recorded in lab `name`'s state is still the one the lab started: alive, the same
    /// program, and tied to the lab: it runs in one of the lab's (marked or recorded) namespaces
    /// (libvirt's QEMU, whose command line names nothing of the lab's), its command line names a
    /// file in the lab's folder (QEMU's pid file, libvirtd's and virtlogd's pid files: this holds
    /// even when its namespace was removed behind the lab's back), or it runs in that folder
    /// (redis-server's `--dir`). Pids are reused: a stale state must never make `down` end someone
    /// else's redis-server or QEMU that happens to have a recorded pid.
    static func isOurs(_ process: LabState.Process, lab name: String) -> Bool {
        guard ProcessTable.isAlive(process.pid) else { return false }
        let commandLine = ProcessTable.commandLine(process.pid)
        guard commandLine.contains(process.what) else { return false }
        let directory = LabPaths(name: name).directory
        if commandLine.contains(directory + "/") { return true }
        let cwd = ProcessTable.workingDirectory(process.pid)
        if cwd == directory || cwd == directory + " (deleted)" { return true }
        guard let identity = ProcessTable.networkNamespace(process.pid) else { return false }
        let state = LabStore.load(name)
        let foreign = foreignNamespaces(name, state: state)
        let candidates = [namespace(for: name), serverNamespace(for: name)] + [state?.namespace].compactMap { $0 } + (state?.extraNamespaces ?? [])
        return candidates.map(Netns.init(name:)).contains { !foreign.contains($0) && $0.identity == identity }
    }
}
