import NetprobeModel

extension RedisAddressSource {
    /// Where the address came from, for the capture summary and the report: "the load
    /// command's target", ...
    public var words: String {
        switch self {
        case .option: "given with --redis"
        case .loadTarget: "the load command's target"
        case .lab: "the lab's state: the VM is the lab's"
        case .domainLease: "the domain's DHCP lease, Redis's default port"
        case .domainNeighbour: "the domain's MAC in the neighbour table, Redis's default port"
        }
    }
}
