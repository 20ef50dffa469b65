import Foundation
import NetprobeCore

/// Reads a guest's serial console while the lab waits for its Redis: a guest that halted (no
/// bootable disk, a kernel panic, an OSv abort, a power-off) is told at once instead of after the
/// boot timeout, since QEMU (and libvirt's "running") can outlive a halted guest.
enum GuestConsole {
    /// A line that means the guest stopped, and what it means.
    struct HaltSign: Equatable {
        var text: String
        var meaning: String
    }

    /// Signs of a guest that will not come up by itself, as their console lines start or contain them.
    static let haltSigns: [HaltSign] = [
        HaltSign(text: "No bootable device", meaning: "the firmware (SeaBIOS) found no bootable disk"),
        HaltSign(text: "Boot failed: not a bootable disk", meaning: "the firmware (SeaBIOS) found no boot sector on the disk"),
        HaltSign(text: "Kernel panic - not syncing", meaning: "the guest kernel panicked"),
        HaltSign(text: "reboot: System halted", meaning: "the guest kernel halted"),
        HaltSign(text: "reboot: Power down", meaning: "the guest powered off"),
        HaltSign(text: "[backtrace]", meaning: "the guest aborted (OSv prints a backtrace when it aborts)"),
        HaltSign(text: "Halting.", meaning: "the guest halted"),
    ]

    /// The first halt sign in the console text, with the line that showed it.
    static func halt(in text: String) -> (sign: HaltSign, line: String)? {
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = String(raw)
            if let sign = haltSigns.first(where: { line.contains($0.text) }) { return (sign, LogFile.printable(line).trimmingCharacters(in: .whitespaces)) }
            if line.trimmingCharacters(in: .whitespaces) == "Aborted" {
                return (HaltSign(text: "Aborted", meaning: "the guest aborted"), "Aborted")
            }
        }
        return nil
    }

    /// Whether the console mentions DHCP (a guest asking for an address).
    static func mentionsDHCP(_ text: String) -> Bool {
        let lower = text.lowercased()
        return lower.contains("dhcp") || lower.contains("udhcpc")
    }
}

/// What to check when a guest's Redis never answered: what the DHCP server saw, whether the
/// address answers ARP, what the console and the image files said.
struct GuestDiagnosis {
    var namespace: Netns
    var address: String
    var port: String
    var guest: LabGuest
    var dhcp: DHCPServer?
    var dhcpInterface: String?
    var consoleLog: String
    var fileNotes: [String]

    /// One sentence per finding, most telling first.
    func checks(lastError: String) -> [String] {
        var out: [String] = []
        let console = LogFile.read(consoleLog)
        switch guest.addressing {
        case .dhcp:
            let events = dhcp?.events ?? .init()
            let log = dhcp?.logFile ?? ""
            if events.acknowledged {
                out.append("the lab's DHCP server gave \(address) to the guest (MAC \(guest.mac)); udhcpd's log: \(log)")
            } else if events.offered {
                out.append("the lab's DHCP server offered \(address) to MAC \(guest.mac) but the guest never took it (udhcpd's log: \(log))")
            } else {
                out.append("no DHCP request from the guest (MAC \(guest.mac)) reached the lab's DHCP server on \(dhcpInterface ?? "the bridge"): the guest does not ask for an address by DHCP (if it has a static one, give it with --guest-address), or its virtio network device never came up (udhcpd's log: \(log))")
            }
        case .static:
            out.append("no DHCP server runs for this guest: --guest-address says it configures \(address) itself")
            if GuestConsole.mentionsDHCP(console) {
                out.append("its console mentions DHCP: if it asks for an address, leave out --guest-address and the lab's DHCP server will answer")
            }
        case .commandLine:
            break
        }
        switch neighbourState() {
        case .some(let mac):
            out.append("\(address) answers ARP (MAC \(mac)): the guest has its address, but nothing accepted a connection on port \(port) (\(lastError)): is Redis running there, listening on 0.0.0.0 or \(address), port \(port), protected-mode off?")
        case .none:
            out.append("\(address) does not answer ARP from the lab's side: the guest has not configured that address, or its NIC is not up")
        }
        if console.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            out.append("the guest printed nothing on its serial console (ttyS0): a Linux kernel needs console=ttyS0 on its command line; a boot loader may write to the screen only")
        }
        out += fileNotes
        return out
    }

    /// The guest address's MAC when its neighbour entry in the lab's namespace is resolved, else nil.
    func neighbourState() -> String? {
        _ = try? namespace.exec([GuestImageBuilder.busyboxPath, "ping", "-c", "1", "-W", "1", address], timeout: 5)
        guard let out = try? namespace.exec(["ip", "neigh", "show", address], timeout: 10) else { return nil }
        for line in out.stdout.split(separator: "\n") where !line.contains("FAILED") && !line.contains("INCOMPLETE") {
            let fields = line.split(separator: " ").map(String.init)
            if let k = fields.firstIndex(of: "lladdr"), k + 1 < fields.count { return fields[k + 1] }
        }
        return nil
    }
}
