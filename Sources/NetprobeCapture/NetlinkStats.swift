import CNetlink
import CNetprobeShims
import Glibc
import NetprobeCore

/// Reads link counters and root-qdisc statistics over rtnetlink with libnl-route-3.
///
/// One instance per network namespace: its socket is opened in the namespace of the thread that
/// creates it (create it inside `NetworkNamespace.withNamespace`). Owns the socket and the link
/// and qdisc caches; frees them in `deinit`.
public final class NetlinkStats {
    private let socket: OpaquePointer
    private var linkCache: OpaquePointer?
    private var qdiscCache: OpaquePointer?

    /// nl_socket_alloc + nl_connect(NETLINK_ROUTE) + rtnl_link_alloc_cache + rtnl_qdisc_alloc_cache.
    public init() throws {
        guard let sk = nl_socket_alloc() else { throw CaptureError("nl_socket_alloc failed (out of memory)") }
        socket = sk
        var rc = nl_connect(sk, NETLINK_ROUTE)
        guard rc == 0 else {
            nl_socket_free(sk)
            throw CaptureError.netlink("cannot open a NETLINK_ROUTE socket", code: rc)
        }
        rc = rtnl_link_alloc_cache(sk, AF_UNSPEC, &linkCache)
        guard rc == 0 else {
            nl_socket_free(sk)
            throw CaptureError.netlink("cannot read the link list over netlink", code: rc)
        }
        rc = rtnl_qdisc_alloc_cache(sk, &qdiscCache)
        guard rc == 0 else {
            nl_cache_free(linkCache)
            nl_socket_free(sk)
            throw CaptureError.netlink("cannot read the qdisc list over netlink", code: rc)
        }
    }

    deinit {
        if let linkCache { nl_cache_free(linkCache) }
        if let qdiscCache { nl_cache_free(qdiscCache) }
        nl_socket_free(socket)
    }

    /// Refreshes both caches (nl_cache_refill). Objects taken from the caches before are invalid
    /// afterwards, which is why `sample` copies what it needs.
    public func refresh() throws {
        var rc = nl_cache_refill(socket, linkCache)
        guard rc == 0 else { throw CaptureError.netlink("netlink link refresh failed", code: rc) }
        rc = nl_cache_refill(socket, qdiscCache)
        guard rc == 0 else { throw CaptureError.netlink("netlink qdisc refresh failed", code: rc) }
    }

    /// The current counters of `interface`, or nil when it does not exist (any more).
    public func sample(_ interface: String, timeNs: Int64) -> NetlinkSample? {
        guard let link = rtnl_link_get_by_name(linkCache, interface) else { return nil }
        defer { rtnl_link_put(link) }
        func stat(_ id: rtnl_link_stat_id_t) -> UInt64 { rtnl_link_get_stat(link, id) }
        let counters = LinkCounters(
            rxPackets: stat(RTNL_LINK_RX_PACKETS), rxBytes: stat(RTNL_LINK_RX_BYTES),
            rxErrors: stat(RTNL_LINK_RX_ERRORS), rxDropped: stat(RTNL_LINK_RX_DROPPED),
            txPackets: stat(RTNL_LINK_TX_PACKETS), txBytes: stat(RTNL_LINK_TX_BYTES),
            txErrors: stat(RTNL_LINK_TX_ERRORS), txDropped: stat(RTNL_LINK_TX_DROPPED))
        var qdisc: QdiscCounters?
        let index = rtnl_link_get_ifindex(link)
        if let q = rtnl_qdisc_get_by_parent(qdiscCache, index, TC_H_ROOT) {
            defer { rtnl_qdisc_put(q) }
            func tc(_ id: rtnl_tc_stat) -> UInt64 { CNetprobe_qdisc_stat(q, Int32(id.rawValue)) }
            qdisc = QdiscCounters(
                kind: String(cString: CNetprobe_qdisc_kind(q)), backlog: tc(RTNL_TC_BACKLOG), qlen: tc(RTNL_TC_QLEN),
                drops: tc(RTNL_TC_DROPS), overlimits: tc(RTNL_TC_OVERLIMITS), requeues: tc(RTNL_TC_REQUEUES))
        }
        return NetlinkSample(timeNs: timeNs, interface: interface, link: counters, qdisc: qdisc)
    }
}

/// The wall clock pcap uses: CLOCK_REALTIME in nanoseconds.
public func realtimeNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}
