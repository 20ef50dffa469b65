/// Where `netprobe capture` took the address of the Redis it asks for INFO: the trace's run
/// block stores the raw value, the capture summary and the report say it in words.
///
/// The order is the order of trust: what the user named, then where the load really goes, then
/// the lab that made the VM, then what the network says about the VM. A lab seen only through a
/// shared bridge never lends its Redis to a VM it did not make (issue 15: INFO was asked of the
/// lab's guest while the load went to a hand-defined OSv domain on the same bridge).
public enum RedisAddressSource: String, Sendable, Codable, CaseIterable {
    /// `--redis HOST:PORT`.
    case option = "redis-option"
    /// The load command's own target (netprobe load --target / -h -p, redis-benchmark -h -p,
    /// memtier_benchmark -s -p).
    case loadTarget = "load-target"
    /// The lab's state: the domain (or every captured interface) is the lab's own.
    case lab
    /// The domain's MAC in a DHCP lease (libvirt's lease source), with Redis's default port.
    case domainLease = "domain-lease"
    /// The domain's MAC in the neighbour (ARP) table of the namespace of its tap, with
    /// Redis's default port.
    case domainNeighbour = "domain-neighbour"
}
