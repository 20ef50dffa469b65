// The trace shapes netprobe-bench measures (issue 17): what users hand to `netprobe report`.

/// A kind of trace, synthesised at any length.
public enum TraceShape: String, CaseIterable, Sendable {
    /// What `netprobe capture` writes for bridge + tap: pcapng, two vantage points (virbr0, vnet0),
    /// 50 connections of GET/SET, one of them 4 requests per segment, netlink samples at 10 Hz.
    /// The benchmark's original trace, byte for byte.
    case twoVantage = "two-vantage"
    /// What `tcpdump -i lo -w` writes under redis-benchmark: a classic pcap (libpcap's own writer,
    /// microsecond stamps), one vantage point, full snaplen, 50 connections of GET/SET.
    case classicPcap = "pcap"
    /// redis-benchmark -P 16 on loopback: 16 requests per segment, 16 replies per segment.
    case pipelined
    /// Connections that live for 3 requests each (handshake, 3 GET/SET, FIN both ways): tens of
    /// thousands of connections per million packets, 50 open at a time. Classic pcap.
    case shortConnections = "short-connections"
    /// `netprobe capture -i lo -- netprobe load`: pcapng, vantage `lo` (host), 50 connections, and
    /// the load generator's record of every request (written by ClientRecordWriter, cut into
    /// blocks by ClientRecordReader and stored at the end as netprobe's data, as a capture does).
    case clientRecords = "client-records"
    /// A macvtap guest: pcapng with three vantage points (np-cli = client, np-parent = parent,
    /// macvtap0 = macvtap), netlink samples at 10 Hz.
    case macvtap

    /// The file name extension of the shape's trace.
    public var fileExtension: String {
        switch self {
        case .classicPcap, .pipelined, .shortConnections: "pcap"
        default: "pcapng"
        }
    }

    /// One vantage point: nothing to join across.
    public var isSingleVantage: Bool {
        switch self {
        case .twoVantage, .macvtap: false
        default: true
        }
    }

    /// A line saying what the trace is.
    public var summary: String {
        switch self {
        case .twoVantage: "pcapng, 2 vantage points (bridge + tap), 50 connections, netlink samples"
        case .classicPcap: "classic pcap (libpcap writer), 1 vantage point, snaplen 262144, 50 connections"
        case .pipelined: "classic pcap, 1 vantage point, -P 16: 16 requests per segment"
        case .shortConnections: "classic pcap, 1 vantage point, 3 requests per connection"
        case .clientRecords: "pcapng, lo + the load generator's record of every request"
        case .macvtap: "pcapng, 3 vantage points (client, parent, macvtap), netlink samples"
        }
    }

    /// Writes about `packets` packets of this shape to `path`.
    public func synthesise(path: String, packets: Int) throws -> ShapeSummary {
        switch self {
        case .twoVantage: try TwoVantageShape.synthesise(path: path, packets: packets)
        case .classicPcap: try LoopbackShapes.steady(path: path, packets: packets, perSegment: 1)
        case .pipelined: try LoopbackShapes.steady(path: path, packets: packets, perSegment: 16)
        case .shortConnections: try LoopbackShapes.shortConnections(path: path, packets: packets)
        case .clientRecords: try ClientRecordsShape.synthesise(path: path, packets: packets)
        case .macvtap: try MacvtapShape.synthesise(path: path, packets: packets)
        }
    }
}

/// What a synthesised trace holds: what `netprobe report` must find in it.
public struct ShapeSummary: Sendable, Equatable {
    /// Packet records in the file.
    public var packets: Int
    /// Requests each vantage point must pair, by interface name.
    public var requestsPerVantage: [String: Int]
    /// TCP connections.
    public var connections: Int
    /// The load generator's records (client-records shape only).
    public var clientRecords: Int = 0

    public init(packets: Int, requestsPerVantage: [String: Int], connections: Int, clientRecords: Int = 0) {
        self.packets = packets
        self.requestsPerVantage = requestsPerVantage
        self.connections = connections
        self.clientRecords = clientRecords
    }
}
