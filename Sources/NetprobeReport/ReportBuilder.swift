import NetprobeModel
import NetprobeTrace
import NetprobeAttribution
import CNetprobeSystem

/// Hands the memory that reading and joining freed back to the system before the attribution
/// allocates its own: glibc keeps freed chunks of its arenas (the reading threads' batches) and
/// would otherwise add them to the peak.
func releaseFreedMemory() {
    _ = CNetprobeSystem_malloc_trim()
}

/// Reads a trace file and builds its report: the whole of `netprobe report` minus the printing.
public enum ReportBuilder {
    /// Analyses `path`. Throws only when the file cannot be opened or is not a trace at all; damage
    /// later in the file is recorded in the report (`trace.error`) after everything before it.
    /// `portFromTrace`: the trace decides which ports are Redis (`RedisPortChoice`): the port a
    /// netprobe capture recorded, else the default port when Redis requests are seen on it, else
    /// the ports whose connections look like Redis (the trace is then read a second time, on
    /// them); the report says which and why (`Report.redisPorts`). Callers pass false when the
    /// user named the ports (`options.serverPorts`): no detection then.
    public static func build(path: String, options: AnalysisOptions = AnalysisOptions(), redisInfo: String? = nil,
                             portFromTrace: Bool = true,
                             onRequest: @escaping (RequestTiming) -> Void = { _ in }) throws -> (Report, TraceAnalysis) {
        var options = options
        let recorded = portFromTrace ? recordedRedis(path: path) : nil
        if let recorded, !options.serverPorts.contains(recorded.port) { options.serverPorts.insert(recorded.port) }
        var (report, analysis) = try build(reader: TraceReader(path: path), options: options, redisInfo: redisInfo, onRequest: onRequest)
        if let recorded, recorded.port != HostPort.redisPort {
            report.capture?.notes.append("port \(recorded.port) analysed as Redis: the capture recorded Redis at \(recorded) (--port names the ports instead)")
        }
        // Only the default port gives way to detected ones: ports a caller set are named ones.
        let source: RedisPortChoice.Source = recorded != nil ? .recorded
            : !portFromTrace || options.serverPorts != [HostPort.redisPort] ? .named : .defaultPort
        var choice = RedisPortChoice.after(analysing: options.serverPorts, source: source,
                                           sawRequests: analysis.vantages.contains { $0.requests > 0 },
                                           evidence: analysis.portEvidence)
        let readOnce = path == "-"
        if choice.source == .detected {
            if readOnce {
                choice = RedisPortChoice(ports: Array(options.serverPorts), source: .defaultPort, evidence: choice.evidence)
            } else {
                // Redis is elsewhere: read the trace again, on the ports found. Nothing was paired
                // in the first reading (no request on the default port), so `onRequest` has
                // seen nothing yet.
                options.serverPorts = Set(choice.ports)
                (report, analysis) = try build(reader: TraceReader(path: path), options: options, redisInfo: redisInfo,
                                               onRequest: onRequest)
            }
        }
        report.redisPorts = RedisPortsSummary(choice, recorded: recorded, readOnce: readOnce)
        return (report, analysis)
    }

    /// The Redis address a netprobe capture recorded (its `run` block, written before the first
    /// packet); nil for other traces, standard input, or a file that cannot be read.
    public static func recordedRedis(path: String) -> HostPort? {
        guard path != "-", let reader = try? TraceReader(path: path) else { return nil }
        _ = try? reader.next() // the blocks before the first packet
        for c in reader.customBlocks {
            if case let .run(metadata)? = NetprobeBlock.decode(enterpriseNumber: c.pen, payload: c.payload),
               let address = metadata.redisAddress {
                return HostPort(parsing: address)
            }
        }
        return nil
    }

    /// The same for an opened reader (a trace in memory: `TraceReader(bytes:)`).
    public static func build(reader: TraceReader, options: AnalysisOptions = AnalysisOptions(), redisInfo: String? = nil,
                             onRequest: @escaping (RequestTiming) -> Void = { _ in }) -> (Report, TraceAnalysis) {
        let path = reader.path
        // The load generator's records (one per request: most of a long trace's custom blocks) go
        // into their compact table as they are read, on the reading thread; their payloads are
        // never kept. The table is read only after that thread has finished.
        let client = ClientRecordsBox()
        reader.onCustomBlock = { pen, payload in
            if ClientRecordBlock.isClientRecords(enterpriseNumber: pen, payload: payload) {
                let before = client.records.count
                guard client.records.add(block: payload) else { return false }
                client.requests += client.records.count - before
            } else if pen == NetprobeBlock.enterpriseNumber, payload.starts(with: KernelEventBatch.magic) {
                client.kernel.add(batch: payload) // the kernel's events: followed per skb, not kept
            } else if let r = NetprobeBlock.decodeClientRequests(enterpriseNumber: pen, payload: payload) {
                client.records.add(r) // an older trace's JSON records
                client.requests += r.sendNs.count
            } else {
                return false
            }
            return true
        }
        defer { reader.onCustomBlock = nil }
        let join = RequestJoin()
        // A classic pcap has one interface, so one vantage point: nothing to join.
        join.singleVantage = reader.format == .pcap
        let joining = JoinThread(join: join)
        // With a second CPU, reading runs on a thread of its own too (ReadAhead) and the join on
        // another (JoinThread): the analysis's thread only decodes and pairs.
        let analyzer = TraceAnalyzer(options: options)
        let sink = { (t: RequestTiming) in
            joining.add(t)
            onRequest(t)
        }
        let analysis: TraceAnalysis
        if onlineCPUs > 1 {
            let ahead = ReadAhead(reader)
            analysis = analyzer.analyze(ahead, onRequest: sink)
            ahead.finish()
        } else {
            analysis = analyzer.analyze(reader, onRequest: sink)
        }
        joining.finish()
        releaseFreedMemory()
        // The other custom blocks (and any JSON client records written otherwise than netprobe does).
        var blocks: [NetprobeBlock] = []
        for c in reader.customBlocks {
            switch NetprobeBlock.decode(enterpriseNumber: c.pen, payload: c.payload) {
            case let .clientRequests(r)?:
                client.records.add(r)
                client.requests += r.sendNs.count
            case let b?: blocks.append(b)
            case nil: break
            }
        }
        reader.dropCustomBlocks()
        var context = CaptureContext(blocks: blocks)
        context.clientRequests = client.requests
        var report = Report(analysis: analysis, file: path, format: reader.format.rawValue, sections: reader.sections,
                            context: context)
        // netprobe traces name each interface's role in if_description; show it in the listing.
        if let roles = report.capture?.roles {
            for i in report.trace.vantagePoints.indices where report.trace.vantagePoints[i].description == nil {
                report.trace.vantagePoints[i].description = roles[report.trace.vantagePoints[i].name]
            }
        }
        attribute(&report, analysis: analysis, join: join, blocks: blocks, client: client.records, kernel: client.kernel,
                  redisInfo: redisInfo)
        return (report, analysis)
    }
}

/// The client records `build` collects while the trace is read (filled on the reading thread).
private final class ClientRecordsBox: @unchecked Sendable {
    var records = ClientRecords()
    var requests = 0
    var kernel = KernelEventTracks()
}

extension ReportBuilder {
    /// Adds segments, verdict and attribution details to `report`. `blocks` are netprobe's custom
    /// blocks but the load generator's records, which come as `client`.
    static func attribute(_ report: inout Report, analysis: TraceAnalysis, join: RequestJoin, blocks: [NetprobeBlock],
                          client: ClientRecords, kernel: KernelEventTracks = KernelEventTracks(), redisInfo: String?) {
        let roles = report.capture?.roles ?? [:]
        var inputs = AttributionInputs(vantages: analysis.vantages.map { v in
            // The role the capture recorded, else the interface's description when it names a
            // role (netprobe's if_description), else a guess from the name.
            let described = v.interfaces.first.flatMap { analysis.interfaces[$0].description }.flatMap(VantageRole.init(rawValue:))
            let role = roles[v.name].map { VantageRole(rawValue: $0) ?? .other } ?? described.flatMap { $0 == .other ? nil : $0 }
                ?? VantageRole.guess(interface: v.name)
            return (v.name, role)
        })
        inputs.client = client
        // The guest's device, and where the backend's queue is filled: a tap's own transmit; a
        // macvtap's parent link, whose receive handler queues the frame.
        let path = AttributionPath(vantages: inputs.vantages.map { ($0.name, $0.role) })
        if let inner = path.inner, kernel.knows(inner.interface) {
            let queue = inner.role == .macvtap ? path.hops.first { $0.role == .parent }?.interface : inner.interface
            inputs.kernelHops = kernel.hops(device: inner.interface, queueDevice: queue ?? inner.interface)
        }
        for b in blocks {
            switch b {
            case let .netlink(s): inputs.netlink[s.interface, default: []].append(s)
            default: break
            }
        }
        if let redisInfo {
            for (name, stat) in RedisInfo.commandStats(redisInfo) where stat.calls > 0 {
                inputs.redisUsecPerCall[name] = Double(stat.usec) / Double(stat.calls)
            }
            inputs.redisInfoSource = .file
        } else if let commands = report.capture?.redisCommands, !commands.isEmpty {
            for c in commands { inputs.redisUsecPerCall[c.command] = c.usecPerCall }
            inputs.redisInfoSource = .captureDelta
        }
        let (segments, verdict, details) = AttributionText.describe(Attribution.compute(join, inputs: inputs))
        report.segments = segments
        report.verdict = verdict
        report.attribution = details
        if let damage = kernel.damage {
            report.attribution?.notes.append("a kernel event batch is damaged (\(damage)): the events before the damage in it are used")
        }
        let caveats = Caveats.of(report)
        report.verdict?.caveats = caveats
        if let latency = report.capture?.redisLatencyPercentilesUs, !latency.isEmpty, redisInfo == nil {
            let commands = latency.keys.sorted().prefix(6).map { name -> String in
                let p = latency[name]!
                return "\(name) " + p.keys.sorted().map { "\($0) \(TextReport.fmt(p[$0]!, 1)) us" }.joined(separator: ", ")
            }
            report.verdict?.evidence.append("Redis's own execution percentiles (INFO latencystats, since Redis started, not only this run): " + commands.joined(separator: "; "))
        }
    }
}
