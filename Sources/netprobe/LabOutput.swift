import Foundation
import NetprobeCore
import NetprobeLab

/// How lab commands print.
enum LabOutput {
    static let progress: LabProgress = { line in printError("netprobe lab: \(line)") }

    /// Redis address, hypervisor, vantages, processes and files of a lab.
    static func describe(_ state: LabState) -> String {
        var out = ""
        func row(_ label: String, _ value: String) { out += "  " + label.padding(toLength: 12, withPad: " ", startingAt: 0) + value + "\n" }
        let redis = HostPort(parsing: state.redisAddress)
        let (host, port) = (redis?.host ?? state.redisAddress, redis.map { String($0.port) } ?? "")
        row("redis", "\(state.redisAddress) from namespace \(state.namespace)  (ip netns exec \(state.namespace) redis-cli -h \(host) -p \(port) ping)")
        if let hypervisor = state.hypervisor {
            row("hypervisor", "\(hypervisor): \(state.hypervisorReason ?? "")")
        } else {
            row("hypervisor", "none (Redis runs on the host side)")
        }
        let console = "\(LabState.stateDirectory)/\(state.name)/console.log"
        if let guest = state.guest, guest.spec.kind != .builtin {
            let addressing: String
            switch guest.addressing {
            case .dhcp: addressing = "address by DHCP (the lab's udhcpd, lease for \(guest.mac))"
            case .static: addressing = "static address (--guest-address)"
            case .commandLine: addressing = "address on its kernel command line"
            }
            row("guest", "\(guest.spec)" + (guest.diskFormat.map { " (\($0))" } ?? ""))
            row("", "\(guest.memoryMiB) MiB, \(guest.vcpus) vCPU\(guest.vcpus == 1 ? "" : "s"), \(addressing); console \(console)")
            if !guest.qemuArguments.isEmpty { row("", "extra QEMU arguments: \(guest.qemuArguments.joined(separator: " "))") }
        } else if let kernel = state.guestKernel {
            row("guest", "Linux \(kernel), Redis as init; console \(console)")
        }
        for (i, v) in state.vantages.enumerated() {
            row(i == 0 ? "vantages" : "", "\(v.interface) (\(v.role.rawValue)) in \(v.namespace)")
        }
        if !state.extraNamespaces.isEmpty { row("namespaces", ([state.namespace] + state.extraNamespaces).joined(separator: " ")) }
        if let domain = state.libvirtDomain { row("libvirt", "domain \(domain) at \(state.libvirtURI ?? "?")") }
        row("state", "\(LabState.stateDirectory)/\(state.name)/state.json")
        return out
    }

    static func describe(_ status: LabStatus) -> String {
        let state = status.state
        var out = "lab \(state.name): \(status.healthy ? "up" : "NOT HEALTHY") (setup \(state.setup.rawValue), since \(state.createdAt))\n"
        out += describe(state)
        func row(_ label: String, _ value: String) { out += "  " + label.padding(toLength: 12, withPad: " ", startingAt: 0) + value + "\n" }
        for (i, p) in status.processes.enumerated() {
            row(i == 0 ? "processes" : "", "\(p.process.what) pid \(p.process.pid) \(p.alive ? "running" : "GONE")")
        }
        row("ping", status.redisProblem.map { "no answer: \($0)" } ?? "PONG")
        for (i, d) in status.foreignDomains.enumerated() {
            let how = d.running.map { $0 ? "running" : "shut off" } ?? "defined"
            row(i == 0 ? "other VMs" : "", "\(d.name) (\(how)): a libvirt domain the lab did not make; lab down leaves the lab up while it is there")
        }
        if !status.missingNamespaces.isEmpty { row("missing", status.missingNamespaces.joined(separator: " ")) }
        if !status.healthy { row("fix", "\(upCommand(state))  (rebuilds it)") }
        return out
    }
}

/// The `lab up` command line that builds `state`'s lab again.
func upCommand(_ state: LabState) -> String {
    var words = ["netprobe", "lab", "up", "--setup", state.setup.rawValue, "--name", state.name]
    if state.libvirtDomain != nil { words.append("--libvirt") }
    if let guest = state.guest, guest.spec.kind != .builtin {
        words += ["--guest", "'\(guest.spec)'"]
        if guest.memoryMiB != LabGuestOptions.defaultMemoryMiB { words += ["--memory", "\(guest.memoryMiB)"] }
        if guest.vcpus != LabGuestOptions.defaultVCPUs { words += ["--vcpus", "\(guest.vcpus)"] }
        if !guest.qemuArguments.isEmpty { words += ["--qemu-commandline", "'\(guest.qemuArguments.joined(separator: " "))'"] }
        if guest.addressing == .static, let host = HostPort(parsing: state.redisAddress)?.host { words += ["--guest-address", host] }
    }
    return words.joined(separator: " ")
}

extension String {
    func ifEmpty(_ replacement: String) -> String { isEmpty ? replacement : self }
}
