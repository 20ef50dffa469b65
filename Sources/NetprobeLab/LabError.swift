import Foundation

/// Why a lab step failed. Every case's description says what to check next.
public enum LabError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The lab creates namespaces, links and device nodes: it needs root.
    case notRoot
    /// A lab name that cannot be used (it becomes part of namespace and file names).
    case invalidName(String, reason: String)
    /// Options that do not fit together (e.g. `--libvirt` with a setup that has no guest).
    case invalidOptions(String)
    /// Programs the lab needs are not installed; `packages` are the Debian packages that have them.
    case missingPackages(tools: [String], packages: [String])
    /// A program ran and failed.
    case commandFailed(command: String, status: Int32, stderr: String)
    /// A program did not finish in time and was stopped.
    case commandTimedOut(command: String, seconds: Double)
    /// A program could not be started at all.
    case commandNotStarted(command: String, reason: String)
    /// `--setup vhost-net` on a host whose kernel has no vhost-net device.
    case vhostNetUnavailable
    /// The guest kernel and initramfs could not be made.
    case guestImage(String)
    /// A process the lab started died (or never appeared); `logTail` is the end of its log.
    case processDied(what: String, detail: String, logTail: String)
    /// Redis did not answer PING in time; `checks` are what the lab found worth checking (a
    /// bring-your-own guest: its DHCP, ARP, console, files).
    case redisNotAnswering(address: String, namespace: String, seconds: Int, lastError: String, consoleTail: String, checks: [String] = [])
    /// A file of a bring-your-own guest (`--guest disk:` / `kernel:`) is missing or unreadable.
    case guestFileMissing(path: String, role: String, reason: String)
    /// The guest stopped before Redis answered: a halt sign on its console (`GuestConsole`), with
    /// QEMU still running or not.
    case guestHalted(meaning: String, line: String, qemuRunning: Bool, consoleLog: String, consoleTail: String, checks: [String])
    /// Something outside the lab is in the way (another libvirtd, another lab's libvirt ...).
    case conflict(String)
    /// A namespace with one of the lab's names exists but is not provably the lab's (see
    /// `Lab.foreignNamespaces`): `up` does not build over it and `down` does not delete it.
    case foreignNamespace(namespace: String, lab: String, stateFile: String, marker: String, processes: Int, links: [String])
    /// The lab's libvirtd holds domains the lab did not make (`Lab.foreignDomains`): `down`
    /// leaves the whole lab as it is, since removing it would end and undefine them too.
    case foreignDomains(lab: String, uri: String, namespace: String, domains: [ForeignDomain])
    /// libvirtd or a libvirt step failed.
    case libvirt(String)
    /// A file or folder the lab needs could not be written or read.
    case file(path: String, detail: String)

    public var description: String {
        switch self {
        case .notRoot:
            return "netprobe lab needs root: it creates network namespaces, bridges, taps and device nodes (run it with sudo, or as root)"
        case .invalidName(let name, let reason):
            return "cannot use '\(name)' as a lab name: \(reason)"
        case .invalidOptions(let text):
            return text
        case .missingPackages(let tools, let packages):
            return """
                missing programs: \(tools.joined(separator: ", ")).
                They come with the Debian packages: \(packages.joined(separator: " "))
                Install them with: apt-get install -y --no-install-recommends \(packages.joined(separator: " "))
                """
        case .commandFailed(let command, let status, let stderr):
            let text = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            return "`\(command)` failed (exit status \(status))" + (text.isEmpty ? "" : ":\n\(text)")
        case .commandTimedOut(let command, let seconds):
            return "`\(command)` did not finish within \(Int(seconds)) s and was stopped"
        case .commandNotStarted(let command, let reason):
            return "could not start `\(command)`: \(reason)"
        case .vhostNetUnavailable:
            return """
                the vhost-net setup is not available on this host: /dev/vhost-net is missing, so this kernel \
                has no vhost-net (QEMU's `-netdev tap,vhost=on` needs it; QEMU 7.2 aborts without it).
                What the host would need: a kernel built with CONFIG_VHOST_NET (=y or =m), the module loaded \
                (`modprobe vhost_net`), and the device node /dev/vhost-net (char 10:238).
                On this host use --setup bridge (the same tap, served by QEMU's userspace virtio-net instead).
                """
        case .guestImage(let text):
            return "cannot build the Redis guest image: \(text)"
        case .processDied(let what, let detail, let logTail):
            return "\(what) \(detail)" + (logTail.isEmpty ? "" : "; the end of its log:\n\(logTail)")
        case .redisNotAnswering(let address, let namespace, let seconds, let lastError, let consoleTail, let checks):
            var text = "Redis at \(address) did not answer PING from namespace \(namespace) within \(seconds) s"
            if !lastError.isEmpty { text += " (last attempt: \(lastError))" }
            if !consoleTail.isEmpty { text += "; the end of the guest console:\n\(consoleTail)" }
            if !checks.isEmpty { text += "\nWhat to check:\n" + checks.map { "  - \($0)" }.joined(separator: "\n") }
            return text
        case .guestFileMissing(let path, let role, let reason):
            return "the guest's \(role) \(path) cannot be used: \(reason)"
        case .guestHalted(let meaning, let line, let qemuRunning, let consoleLog, let consoleTail, let checks):
            var text = "the guest stopped before Redis answered: \(meaning) (its console \(consoleLog) says '\(line)'; "
                + (qemuRunning ? "QEMU still runs, but the guest will not come up by itself)" : "QEMU has exited)")
            if !consoleTail.isEmpty { text += "; the end of the guest console:\n\(consoleTail)" }
            if !checks.isEmpty { text += "\nWhat to check:\n" + checks.map { "  - \($0)" }.joined(separator: "\n") }
            return text
        case .conflict(let text):
            return text
        case .foreignNamespace(let namespace, let lab, let stateFile, let marker, let processes, let links):
            let contents = "\(processes) process\(processes == 1 ? "" : "es") and " + (links.isEmpty ? "no links but lo" : "links \(links.joined(separator: ", "))")
            return """
                namespace \(namespace) exists, but netprobe lab did not make it: no lab state names it \
                (\(stateFile)) and its lo does not carry the lab's marker (alias '\(marker)'). \
                It may belong to someone else (\(contents) in it), so lab \(lab) leaves it alone: \
                look at it (ip netns pids \(namespace); ip -n \(namespace) link), remove it yourself \
                (ip netns delete \(namespace)), or use another lab name (--name).
                """
        case .foreignDomains(let lab, let uri, let namespace, let domains):
            let list = domains.map { d in d.name + (d.running.map { $0 ? " (running)" : " (shut off)" } ?? " (defined)") }
            let plural = domains.count == 1 ? "domain" : "domains"
            let removal = domains.map { "virsh -c '\(uri)' destroy \($0.name); virsh -c '\(uri)' undefine \($0.name)" }.joined(separator: "; ")
            return """
                lab \(lab) was left as it is: its libvirtd (\(uri), in namespace \(namespace)) also holds \(plural) \
                \(list.joined(separator: ", ")), which netprobe lab did not make (no netprobe lab mark in \
                \(domains.count == 1 ? "its" : "their") XML). Removing the lab would end \(domains.count == 1 ? "it" : "them") and delete \
                \(domains.count == 1 ? "its definition" : "their definitions") with the lab's folder. To remove the lab, \
                remove \(domains.count == 1 ? "it" : "them") yourself first (\(removal)), then run `netprobe lab down \(lab)` again.
                """
        case .libvirt(let text):
            return "libvirt: \(text)"
        case .file(let path, let detail):
            return "\(path): \(detail)"
        }
    }
}
