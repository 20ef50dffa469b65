import NetprobeModel
import Foundation

/// netprobe's own data inside a pcapng trace: run metadata, netlink samples, Redis INFO snapshots.
/// (The load generator's records are binary blocks of their own: `ClientRecordBlock`.)
///
/// Each item's payload is the four bytes `NPRB`, then one JSON object with a `kind` field. It
/// travels as custom options under netprobe's Private Enterprise Number in a Section Header or
/// Interface Statistics Block (`MetadataCarriage`); traces written before that have each item as
/// a pcapng Custom Block (type 0x00000BAD) whose data is the same payload. The `NPRB` magic tells
/// netprobe's items from anybody else's under the same PEN (a placeholder: IANA's documentation
/// number).
public enum NetprobeBlock: Sendable, Equatable {
    case run(RunMetadata)
    case netlink(NetlinkSample)
    case redisInfo(RedisInfoSnapshot)
    case vantageNote(VantageNote)
    case clientRequests(ClientRequests)

    /// The PEN netprobe writes (`MetadataCarriage.enterpriseNumber`: a placeholder).
    public static let enterpriseNumber: UInt32 = MetadataCarriage.enterpriseNumber
    public static let magic: [UInt8] = Array("NPRB".utf8)

    private struct Envelope: Codable { var kind: String }

    /// The item's payload (what follows the PEN).
    public func payload() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json: Data
        switch self {
        case let .run(m): json = try encoder.encode(Tagged(kind: "run", value: m))
        case let .netlink(s): json = try encoder.encode(Tagged(kind: "netlink", value: s))
        case let .redisInfo(r): json = try encoder.encode(Tagged(kind: "redis-info", value: r))
        case let .vantageNote(n): json = try encoder.encode(Tagged(kind: "vantage-note", value: n))
        case let .clientRequests(c): json = try encoder.encode(Tagged(kind: "client-requests", value: c))
        }
        return Self.magic + Array(json)
    }

    /// Decodes an item's payload; nil when it is not one of netprobe's JSON blocks (or of a
    /// kind this version does not know: newer traces stay readable). The load generator's records
    /// are binary blocks of their own (`ClientRecordBlock`); older traces have them as JSON
    /// `client-requests` blocks, decoded here.
    public static func decode(enterpriseNumber pen: UInt32, payload: [UInt8]) -> NetprobeBlock? {
        guard MetadataCarriage.isNetprobe(enterpriseNumber: pen), payload.count > 4, Array(payload[0..<4]) == magic else { return nil }
        // A Custom Block's data is padded to 4 bytes with zeros: where the JSON ends.
        var end = payload.count
        while end > 4 && payload[end - 1] == 0 { end -= 1 }
        let json = Data(payload[4..<end])
        let decoder = JSONDecoder()
        guard let envelope = try? decoder.decode(Envelope.self, from: json) else { return nil }
        switch envelope.kind {
        case "run": return (try? decoder.decode(Tagged<RunMetadata>.self, from: json)).map { .run($0.value) }
        case "netlink": return (try? decoder.decode(Tagged<NetlinkSample>.self, from: json)).map { .netlink($0.value) }
        case "redis-info": return (try? decoder.decode(Tagged<RedisInfoSnapshot>.self, from: json)).map { .redisInfo($0.value) }
        case "vantage-note": return (try? decoder.decode(Tagged<VantageNote>.self, from: json)).map { .vantageNote($0.value) }
        case "client-requests": return (try? decoder.decode(Tagged<ClientRequests>.self, from: json)).map { .clientRequests($0.value) }
        default: return nil
        }
    }

    /// A `client-requests` block as `netprobe capture` wrote it before the records went binary
    /// (`{"kind":"client-requests",...`, keys sorted), decoded by `decode`; nil for anything else,
    /// which `decode` still reads. `report` takes these blocks as the trace is read, so that their
    /// payloads are not kept.
    public static func decodeClientRequests(enterpriseNumber pen: UInt32, payload: UnsafeRawBufferPointer) -> ClientRequests? {
        guard MetadataCarriage.isNetprobe(enterpriseNumber: pen), payload.starts(with: clientRequestsPrefix),
              case let .clientRequests(c)? = decode(enterpriseNumber: pen, payload: Array(payload)) else { return nil }
        return c
    }

    private static let clientRequestsPrefix = magic + Array(#"{"kind":"client-requests","#.utf8)

    /// The time the item refers to (CLOCK_REALTIME ns): a sample's, a note's, INFO's, the run's
    /// start, the first request sent; nil for records without one.
    public var timeNs: Int64? {
        switch self {
        case let .run(m): m.startedNs
        case let .netlink(s): s.timeNs
        case let .redisInfo(r): r.timeNs
        case let .vantageNote(n): n.timeNs
        case let .clientRequests(c): c.sendNs.first
        }
    }

    /// `{"kind": ..., "value": {...}}`
    private struct Tagged<T: Codable>: Codable {
        var kind: String
        var value: T
    }
}

/// What was captured, where and how: written at the start of a capture, and again at its end
/// with `loadOutcome` when a load command ran (readers take the last).
public struct RunMetadata: Codable, Sendable, Equatable {
    public struct Vantage: Codable, Sendable, Equatable {
        public var interface: String
        /// bridge, tap, macvtap, parent, client, host, veth, other
        public var role: String
        public var namespace: String?
        public init(interface: String, role: String, namespace: String?) {
            self.interface = interface
            self.role = role
            self.namespace = namespace
        }
    }

    public var netprobeVersion: String
    public var startedNs: Int64
    public var hostKernel: String
    public var hostname: String
    /// bridge, macvtap, vhost-net, veth, host, or nil when unknown.
    public var setup: String?
    public var vantages: [Vantage]
    public var filter: String
    public var snapLength: Int
    public var vm: String?
    public var libvirtURI: String?
    /// The domain's live XML (with --vm).
    public var domainXML: String?
    /// "kvm" / "tcg" when known (a lab VM).
    public var hypervisor: String?
    public var redisAddress: String?
    /// Where `redisAddress` came from: a `RedisAddressSource` raw value (a string, so that a
    /// reader meeting a source it does not know still reads the run); nil in older traces.
    public var redisAddressSource: String?
    /// The load command run during the capture, if any (credentials redacted).
    public var loadCommand: [String]?
    public var notes: [String]
    /// How the load command ended (in the block written at the end of the capture).
    public var loadOutcome: LoadOutcome?

    /// How the load command ended, and whether the capture cut it short.
    public struct LoadOutcome: Codable, Sendable, Equatable {
        /// Its exit status (128 + the signal's number when a signal ended it); nil when unknown.
        public var exitStatus: Int32?
        /// True when it was still running when the capture stopped, and netprobe ended it.
        public var endedByCapture: Bool
        /// Why the capture stopped ("duration reached", "signal 2", "load command exited" ...).
        public var captureStop: String
        /// The capture's --duration, if it had one.
        public var durationNs: Int64?

        public init(exitStatus: Int32?, endedByCapture: Bool, captureStop: String, durationNs: Int64?) {
            self.exitStatus = exitStatus
            self.endedByCapture = endedByCapture
            self.captureStop = captureStop
            self.durationNs = durationNs
        }

        /// One sentence for people: the exit status and, when the capture ended the load, that
        /// it was cut short and why (so an exit status of 143 is not read as a failure).
        public var summary: String {
            let status = exitStatus.map { "exit status \($0)" } ?? "exit status unknown"
            guard endedByCapture else { return status }
            let why: String
            if captureStop == "duration reached", let d = durationNs {
                let seconds = Double(d) / 1e9
                why = "the capture's --duration of \(seconds == seconds.rounded() ? "\(Int64(seconds))" : "\(seconds)") s ran out"
            } else {
                why = "the capture stopped (\(captureStop))"
            }
            return "\(status): cut short: it was still running when \(why), and netprobe ended it (SIGTERM); "
                + "its own results cover only part of its run"
        }
    }

    public init(netprobeVersion: String, startedNs: Int64, hostKernel: String, hostname: String, setup: String?,
                vantages: [Vantage], filter: String, snapLength: Int, vm: String? = nil, libvirtURI: String? = nil,
                domainXML: String? = nil, hypervisor: String? = nil, redisAddress: String? = nil,
                redisAddressSource: String? = nil, loadCommand: [String]? = nil, notes: [String] = [], loadOutcome: LoadOutcome? = nil) {
        self.netprobeVersion = netprobeVersion
        self.startedNs = startedNs
        self.hostKernel = hostKernel
        self.hostname = hostname
        self.setup = setup
        self.vantages = vantages
        self.filter = filter
        self.snapLength = snapLength
        self.vm = vm
        self.libvirtURI = libvirtURI
        self.domainXML = domainXML
        self.hypervisor = hypervisor
        self.redisAddress = redisAddress
        self.redisAddressSource = redisAddressSource
        self.loadCommand = loadCommand
        self.notes = notes
        self.loadOutcome = loadOutcome
    }
}

/// A link's 64-bit counters as netlink reports them (the host device's view: on a tap, what the
/// guest sends is rx, what it receives is tx).
public struct LinkCounters: Codable, Sendable, Equatable {
    public var rxPackets: UInt64
    public var rxBytes: UInt64
    public var rxErrors: UInt64
    public var rxDropped: UInt64
    public var txPackets: UInt64
    public var txBytes: UInt64
    public var txErrors: UInt64
    public var txDropped: UInt64
    public init(rxPackets: UInt64, rxBytes: UInt64, rxErrors: UInt64, rxDropped: UInt64,
                txPackets: UInt64, txBytes: UInt64, txErrors: UInt64, txDropped: UInt64) {
        self.rxPackets = rxPackets
        self.rxBytes = rxBytes
        self.rxErrors = rxErrors
        self.rxDropped = rxDropped
        self.txPackets = txPackets
        self.txBytes = txBytes
        self.txErrors = txErrors
        self.txDropped = txDropped
    }
}

/// The root qdisc's statistics.
public struct QdiscCounters: Codable, Sendable, Equatable {
    /// The qdisc type (pfifo_fast, fq_codel, noqueue, tbf ...).
    public var kind: String
    /// Bytes queued now, packets queued now.
    public var backlog: UInt64
    public var qlen: UInt64
    public var drops: UInt64
    public var overlimits: UInt64
    public var requeues: UInt64
    public init(kind: String, backlog: UInt64, qlen: UInt64, drops: UInt64, overlimits: UInt64, requeues: UInt64) {
        self.kind = kind
        self.backlog = backlog
        self.qlen = qlen
        self.drops = drops
        self.overlimits = overlimits
        self.requeues = requeues
    }
}

/// One netlink reading of one interface.
public struct NetlinkSample: Codable, Sendable, Equatable {
    /// CLOCK_REALTIME nanoseconds: the packets' clock.
    public var timeNs: Int64
    public var interface: String
    public var link: LinkCounters?
    public var qdisc: QdiscCounters?
    public init(timeNs: Int64, interface: String, link: LinkCounters?, qdisc: QdiscCounters?) {
        self.timeNs = timeNs
        self.interface = interface
        self.link = link
        self.qdisc = qdisc
    }
}

/// Redis's `INFO commandstats` and `INFO latencystats` text, taken before or after the load.
public struct RedisInfoSnapshot: Codable, Sendable, Equatable {
    public var phase: String
    public var timeNs: Int64
    public var address: String
    public var commandstats: String
    /// Empty when the Redis has no latencystats (before 7.0: it answers the unknown section with
    /// nothing).
    public var latencystats: String
    /// `redis_version` from `INFO server` (only that line is kept); nil in traces made before it
    /// was recorded, or when the Redis did not say.
    public var redisVersion: String?
    public init(phase: String, timeNs: Int64, address: String, commandstats: String, latencystats: String,
                redisVersion: String? = nil) {
        self.phase = phase
        self.timeNs = timeNs
        self.address = address
        self.commandstats = commandstats
        self.latencystats = latencystats
        self.redisVersion = redisVersion
    }
}

/// A remark about one vantage point during capture (it disappeared, its capture failed ...).
public struct VantageNote: Codable, Sendable, Equatable {
    public var timeNs: Int64
    public var interface: String
    public var note: String
    public init(timeNs: Int64, interface: String, note: String) {
        self.timeNs = timeNs
        self.interface = interface
        self.note = note
    }
}

/// The load generator's own view of its requests on one connection (the `client` vantage point):
/// when it sent each request and when it had the reply, on CLOCK_REALTIME like the packets.
/// Requests are matched to packets by connection and stream offset.
///
/// The JSON form of traces written before the records went into the trace in their binary form
/// (`ClientRecordBlock`): still read, no longer written by `netprobe capture`.
public struct ClientRequests: Codable, Sendable, Equatable {
    /// "address:port" of the client socket and of the server.
    public var client: String
    public var server: String
    /// Bytes sent on the connection before each request (offset 0 = sequence number ISN + 1).
    public var requestOffsets: [UInt64]
    public var commands: [String]
    /// Just before the send(2) carrying the request's last byte; just after the recv(2) returning
    /// the reply's last byte.
    public var sendNs: [Int64]
    public var receiveNs: [Int64]

    public init(client: String, server: String, requestOffsets: [UInt64], commands: [String], sendNs: [Int64], receiveNs: [Int64]) {
        self.client = client
        self.server = server
        self.requestOffsets = requestOffsets
        self.commands = commands
        self.sendNs = sendNs
        self.receiveNs = receiveNs
    }
}
