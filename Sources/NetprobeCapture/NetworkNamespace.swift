import CNetlink
import CNetprobeShims
import Foundation
import NetprobeSystem

/// Network namespaces by name, as `ip netns` makes them (/run/netns/NAME).
///
/// A socket (a pcap handle, a netlink socket) belongs to the namespace of the thread that
/// created it, and stays there. `setns(2)` moves only the calling thread, so netprobe opens its
/// sockets inside `withNamespace`, on a thread it owns (never inside Swift concurrency tasks,
/// which hop threads), and switches back at once.
public enum NetworkNamespace {
    public static let directory = "/run/netns"

    /// Names of the namespaces `ip netns list` would show.
    public static func list() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    /// Runs `body` with the calling thread inside namespace `name` (nil: stay where it is), then
    /// moves the thread back to the namespace it was in.
    public static func withNamespace<T>(_ name: String?, _ body: () throws -> T) throws -> T {
        guard let name else { return try body() }
        let path = "\(directory)/\(name)"
        guard FileManager.default.fileExists(atPath: path) else {
            throw CaptureError("no network namespace named \(name) (\(path) is missing; `ip netns list` shows the ones there are)")
        }
        // Remember where this thread is, to come back.
        let home = "/proc/thread-self/ns/net"
        let saved = open(home, O_RDONLY | O_CLOEXEC)
        guard saved >= 0 else { throw CaptureError.posix("cannot open \(home)") }
        defer { close(saved) }
        let rc = CNetprobe_enter_netns(path)
        guard rc == 0 else {
            throw CaptureError("cannot enter network namespace \(name): \(Errno(rawValue: -rc).message)\(rc == -EPERM ? " (needs CAP_SYS_ADMIN: run as root)" : "")")
        }
        defer {
            let back = CNetprobe_setns_fd(saved)
            if back != 0 {
                fatalError("netprobe: could not return to the original network namespace: \(Errno(rawValue: -back).message)")
            }
        }
        return try body()
    }

    /// The namespace (or nil for the current one) in which an interface named `interface` exists.
    /// Looks in the current namespace first, then in every named one.
    public static func locate(interface: String) -> (found: Bool, namespace: String?) {
        if if_nametoindex(interface) != 0 { return (true, nil) }
        for ns in list() {
            if (try? withNamespace(ns, { if_nametoindex(interface) != 0 })) == true { return (true, ns) }
        }
        return (false, nil)
    }

    /// Like `locate(interface:)`, but only where the interface's MAC is one of `macs` (any case):
    /// interface names repeat across namespaces (every lab has a virbr0 and a vnet0), a MAC
    /// tells the right one. nil when no namespace has it with such a MAC.
    public static func locate(interface: String, macs: [String]) -> String?? {
        let wanted = Set(macs.map { $0.lowercased() })
        func matches() -> Bool { LinkAddress.mac(of: interface).map(wanted.contains) ?? false }
        if if_nametoindex(interface) != 0, matches() { return .some(nil) }
        for ns in list() where (try? withNamespace(ns, { if_nametoindex(interface) != 0 && matches() })) == true {
            return .some(ns)
        }
        return nil
    }
}

/// An interface's link-layer address over rtnetlink (libnl-route-3: rtnl_link_get_kernel,
/// rtnl_link_get_addr), in the calling thread's namespace (sysfs would show the namespace that
/// mounted it instead).
enum LinkAddress {
    /// "fe:54:00:77:00:03"; nil when there is no such interface or it has no MAC.
    static func mac(of interface: String) -> String? {
        guard let sk = nl_socket_alloc() else { return nil }
        defer { nl_socket_free(sk) }
        guard nl_connect(sk, NETLINK_ROUTE) == 0 else { return nil }
        var link: OpaquePointer?
        guard rtnl_link_get_kernel(sk, 0, interface, &link) == 0, let link else { return nil }
        defer { rtnl_link_put(link) }
        return rtnl_link_get_addr(link).flatMap(NeighbourTable.text(linkLayer:))
    }
}
