import Foundation
import NetprobeCore

/// How a lab is doing, as `lab status` shows it.
public struct LabStatus: Sendable {
    /// A recorded process and whether it is still running.
    public struct ProcessStatus: Sendable {
        /// The process as the state recorded it.
        public var process: LabState.Process
        /// Still running, and still the same program.
        public var alive: Bool
    }

    /// The lab's state file.
    public var state: LabState
    /// Each recorded process and whether it runs.
    public var processes: [ProcessStatus]
    /// Namespaces of the lab that are missing.
    public var missingNamespaces: [String]
    /// nil when Redis answered PING; else what went wrong.
    public var redisProblem: String?
    /// Domains on the lab's libvirtd that the lab did not make (`down` leaves the lab up for them).
    public var foreignDomains: [ForeignDomain] = []

    /// Everything is there and Redis answers.
    public var healthy: Bool { missingNamespaces.isEmpty && processes.allSatisfy(\.alive) && redisProblem == nil }
}

extension Lab {
    /// The state of lab `name` with a live check (processes, namespaces, PING), or nil when there
    /// is no such lab.
    public static func status(_ name: String) -> LabStatus? {
        guard let state = LabStore.load(name) else { return nil }
        let missing = ([state.namespace] + state.extraNamespaces).filter { !Netns(name: $0).exists }
        let processes = state.processes.map { LabStatus.ProcessStatus(process: $0, alive: isOurs($0, lab: name)) }
        let problem: String?
        if missing.contains(state.namespace) {
            problem = "namespace \(state.namespace) is missing"
        } else if let dead = processes.first(where: { !$0.alive }) {
            problem = "not asked: \(dead.process.what) (pid \(dead.process.pid)) is gone"
        } else {
            problem = RedisPing.once(from: Netns(name: state.namespace), address: state.redisAddress)
        }
        let foreign = state.libvirtDomain == nil ? [] : foreignDomains(name, state: state)
        return LabStatus(state: state, processes: processes, missingNamespaces: missing, redisProblem: problem, foreignDomains: foreign)
    }

    /// Status of every lab that has state.
    public static func statuses() -> [LabStatus] { LabStore.names().compactMap(status) }
}
