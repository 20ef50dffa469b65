import CNetlink
import Glibc
import NetprobeCore

/// The neighbour table (ARP for IPv4, NDP for IPv6) of a network namespace, over rtnetlink with
/// libnl-route-3 (rtnl_neigh_alloc_cache): which address a MAC has been seen with.
///
/// netprobe reads it itself rather than through libvirt's ARP source
/// (virDomainInterfaceAddresses with VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP): libvirt 9.0's
/// parser rejects this kernel's (6.18) neighbour messages ("internal error: wrong nlmsg len",
/// seen with `virsh domifaddr --source arp`), and its libvirtd reads the table of the namespace
/// it runs in, which need not be the namespace of the domain's tap.
public enum NeighbourTable {
    /// The addresses with link-layer address `mac` (any case, colon-separated) in the table of
    /// the calling thread's network namespace (call inside `NetworkNamespace.withNamespace`),
    /// IPv4 first; entries that failed or are still incomplete are left out.
    public static func addresses(ofMAC mac: String) throws -> [String] {
        guard let sk = nl_socket_alloc() else { throw CaptureError("nl_socket_alloc failed (out of memory)") }
        defer { nl_socket_free(sk) }
        var rc = nl_connect(sk, NETLINK_ROUTE)
        guard rc == 0 else { throw CaptureError.netlink("cannot open a NETLINK_ROUTE socket", code: rc) }
        var cache: OpaquePointer?
        rc = rtnl_neigh_alloc_cache(sk, &cache)
        guard rc == 0, let cache else { throw CaptureError.netlink("cannot read the neighbour table over netlink", code: rc) }
        defer { nl_cache_free(cache) }
        let wanted = mac.lowercased()
        var v4: [String] = []
        var v6: [String] = []
        var object = nl_cache_get_first(cache)
        while let neigh = object {
            defer { object = nl_cache_get_next(neigh) }
            let state = rtnl_neigh_get_state(neigh)
            guard state & Int32(NUD_FAILED | NUD_INCOMPLETE) == 0,
                  let lladdr = rtnl_neigh_get_lladdr(neigh), Self.text(linkLayer: lladdr) == wanted,
                  let dst = rtnl_neigh_get_dst(neigh), let address = Self.text(network: dst) else { continue }
            if address.contains(":") { v6.append(address) } else { v4.append(address) }
        }
        return v4 + v6
    }

    /// "52:54:00:77:00:03" from a link-layer nl_addr.
    static func text(linkLayer a: OpaquePointer) -> String? {
        let length = Int(nl_addr_get_len(a))
        guard length > 0, let bytes = nl_addr_get_binary_addr(a) else { return nil }
        let raw = UnsafeRawBufferPointer(start: bytes, count: length)
        return raw.map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined(separator: ":")
    }

    /// "10.77.0.3" or "fe80::1" from an IPv4 or IPv6 nl_addr (inet_ntop).
    private static func text(network a: OpaquePointer) -> String? {
        let family = nl_addr_get_family(a)
        guard family == AF_INET || family == AF_INET6, let bytes = nl_addr_get_binary_addr(a) else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, bytes, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
