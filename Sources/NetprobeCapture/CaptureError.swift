import Foundation
import CNetlink
import CPcap
import Glibc
import NetprobeSystem

/// An error from live capture, netlink or libvirt, in words that say what to check.
public struct CaptureError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }

    /// From a libpcap status code (negative PCAP_ERROR_*), with the handle's own text when useful.
    /// Calls pcap_statustostr and pcap_geterr.
    static func pcap(_ what: String, interface: String, status: Int32, handle: OpaquePointer?) -> CaptureError {
        var text = String(cString: pcap_statustostr(status))
        if let handle, let detail = pcap_geterr(handle).map({ String(cString: $0) }), !detail.isEmpty, status == PCAP_ERROR || status == PCAP_ERROR_PERM_DENIED || status == PCAP_ERROR_NO_SUCH_DEVICE {
            text = detail
        }
        var hint = ""
        switch status {
        case PCAP_ERROR_PERM_DENIED: hint = " (capturing needs CAP_NET_RAW: run as root)"
        case PCAP_ERROR_NO_SUCH_DEVICE: hint = " (no such interface here: check the name, or give --netns for an interface inside a network namespace)"
        case PCAP_ERROR_IFACE_NOT_UP: hint = " (bring it up: ip link set \(interface) up)"
        default: break
        }
        return CaptureError("\(what) on \(interface): \(text)\(hint)")
    }

    /// From a negative libnl NLE_* code (not errno). Calls nl_geterror.
    static func netlink(_ what: String, code: Int32) -> CaptureError {
        CaptureError("\(what): \(String(cString: nl_geterror(code)))")
    }

    /// From errno.
    static func posix(_ what: String, _ code: Int32 = errno) -> CaptureError {
        CaptureError("\(what): \(Errno(rawValue: code).message)")
    }
}

/// Checks the capabilities live capture needs, from /proc/self/status (CapEff).
public enum Capabilities {
    static let netAdmin = 12
    static let netRaw = 13

    /// The names of the missing capabilities among CAP_NET_RAW and CAP_NET_ADMIN (empty when all
    /// are present).
    public static func missingForCapture() -> [String] {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let bits = UInt64(line.split(separator: "\t").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "", radix: 16)
        else { return [] }
        var missing: [String] = []
        if bits & (1 << UInt64(netRaw)) == 0 { missing.append("CAP_NET_RAW") }
        if bits & (1 << UInt64(netAdmin)) == 0 { missing.append("CAP_NET_ADMIN") }
        return missing
    }
}
