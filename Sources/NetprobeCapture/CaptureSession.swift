import CNetprobeShims
import Foundation
import NetprobeCore
import NetprobeSystem

/// One capture point of a capture: an interface, its role on the path (bridge, tap, macvtap,
/// parent, client, host, veth, other), its network namespace (nil: netprobe's own). The same
/// record is stored in the trace's run metadata.
public typealias CaptureVantage = RunMetadata.Vantage

/// Everything a capture needs to know.
public struct CaptureConfiguration: Sendable {
    public var vantages: [CaptureVantage]
    public var settings = LiveCaptureSettings()
    public var output: String
    /// Stop after this long (nil: on signal or when the load command exits).
    public var durationNs: Int64?
    /// Redis to ask for INFO before and after, and the namespace it is reachable from.
    public var redisAddress: String?
    public var redisNamespace: String?
    /// Where `redisAddress` came from (stored in the run block, said in the summary).
    public var redisAddressSource: RedisAddressSource?
    /// The password for Redis's INFO (AUTH), if it needs one. Used only for that: never stored in
    /// the trace nor printed.
    public var redisPassword: String?
    /// A command to run during the capture (redis-benchmark, memtier_benchmark, netprobe load).
    public var loadCommand: [String]?
    public var loadNamespace: String?
    /// How often to read netlink counters.
    public var sampleIntervalNs: Int64 = 100_000_000
    public var setup: String?
    public var vm: String?
    public var libvirtURI: String?
    public var domainXML: String?
    public var hypervisor: String?
    /// Kernel tracepoints to record beside the packets where a tap or macvtap is captured (the
    /// virtual NIC backend's queue and the reply's hop); nil: none.
    public var kernelEvents: [KernelEventKind]? = KernelEventKind.essential
    /// Show a live progress line on stderr (when it is a terminal).
    public var progress = false
    /// Called once the load has finished: more of netprobe's data to store (the load generator's
    /// own request records), handed to `write` one item's payload (`MetadataCarriage`) at a time.
    public var finalBlocks: (@Sendable (_ write: ([UInt8]) throws -> Void) throws -> Void)?
    /// The file `finalBlocks` reads (the load generator's records), named when they could not be
    /// stored: it is then kept, not removed.
    public var loadRecordsPath: String?

    public init(vantages: [CaptureVantage], output: String) {
        self.vantages = vantages
        self.output = output
    }
}

/// What a capture did, per vantage point.
public struct CaptureSummary: Sendable {
    public struct Vantage: Sendable {
        public var interface: String
        public var role: String
        public var written: UInt64
        public var received: UInt64?
        public var dropped: UInt64?
        public var ended: String?
        /// How many times `received` counts each packet (2 on loopback when the kernel could not
        /// be told to leave out the outgoing copies; see `LiveCapture.receivedCopiesPerPacket`).
        public var receivedCopiesPerPacket: UInt64 = 1
    }
    public var output: String
    public var bytes: Int64
    public var durationNs: Int64
    public var vantages: [Vantage]
    public var netlinkSamples: Int
    public var redisInfo: [String]
    /// The Redis asked for INFO, and where its address came from (nil: none was asked).
    public var redisAddress: String?
    public var redisAddressSource: RedisAddressSource?
    public var loadExitStatus: Int32?
    /// How the load command ended, and whether the capture cut it short (nil without one).
    public var loadOutcome: RunMetadata.LoadOutcome?
    public var stopReason: String
    public var notes: [String]
}

/// Captures several interfaces at once into one pcapng, with netlink samples and Redis INFO.
///
/// All handles are read by one thread with poll(2); the netlink sampler runs on its own thread.
/// Every block is complete when written, and the file is closed properly on every way out:
/// duration, load exit, SIGINT/SIGTERM/SIGHUP, or an error (the error is reported after the file
/// is finished). netprobe's own data goes where pcapng readers do not list it as frames
/// (`MetadataCarriage`): the run description in the Section Header Block, everything else in
/// Interface Statistics Blocks as it arrives; the file is flushed at least every second, so a
/// capture killed with SIGKILL keeps all but its last second.
public final class CaptureSession {
    public let configuration: CaptureConfiguration

    public init(configuration: CaptureConfiguration) {
        self.configuration = configuration
    }

    private final class VantageState {
        let vantage: CaptureVantage
        let capture: LiveCapture
        let index: UInt32
        var written: UInt64 = 0
        var ended: String?
        var lastStats: (received: UInt64, dropped: UInt64, interfaceDropped: UInt64)?
        init(vantage: CaptureVantage, capture: LiveCapture, index: UInt32) {
            self.vantage = vantage
            self.capture = capture
            self.index = index
        }
    }

    public func run() throws -> CaptureSummary {
        let c = configuration
        let missing = Capabilities.missingForCapture()
        if !missing.isEmpty {
            throw CaptureError("capturing needs \(missing.joined(separator: " and ")) (run netprobe as root, or grant them: setcap cap_net_raw,cap_net_admin+eip $(which netprobe))")
        }
        CNetprobe_install_stop_signals()
        // A -w path that will be refused is refused before anything starts (checked again when
        // the file is created).
        do { try OutputFile.check(path: c.output, policy: PcapngFileWriter.policy) } catch {
            throw CaptureError("will not write the trace to \(error)")
        }
        let started = realtimeNanoseconds()

        // Redis's INFO before the capture starts, so the question itself is not in the trace.
        var notes: [String] = []
        func snapshot(_ phase: String) -> RedisInfoSnapshot? {
            guard let address = c.redisAddress else { return nil }
            do {
                return try NetworkNamespace.withNamespace(c.redisNamespace) {
                    try RedisClient(address: address).infoSnapshot(phase: phase, password: c.redisPassword)
                }
            } catch {
                notes.append("Redis INFO \(phase) the run from \(address) failed: \(error)")
                return nil
            }
        }
        let before = snapshot("before")

        // Open every handle first: a wrong interface fails before the file is created.
        var states: [VantageState] = []
        for (i, v) in c.vantages.enumerated() {
            let capture = try NetworkNamespace.withNamespace(v.namespace) {
                try LiveCapture(interface: v.interface, settings: c.settings)
            }
            states.append(VantageState(vantage: v, capture: capture, index: UInt32(i)))
        }
        for s in states { if let w = s.capture.activationWarning { notes.append("\(s.vantage.interface): \(w)") } }

        let writer = try PcapngFileWriter(path: c.output)
        var uts = utsname()
        uname(&uts)
        let machine = withUnsafeBytes(of: &uts.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let kernel = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let sysname = withUnsafeBytes(of: &uts.sysname) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let hostname = withUnsafeBytes(of: &uts.nodename) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let metadata = RunMetadata(
            netprobeVersion: NetprobeVersion.string, startedNs: started, hostKernel: "\(sysname) \(kernel)",
            hostname: hostname, setup: c.setup,
            vantages: c.vantages,
            filter: c.settings.filter, snapLength: Int(c.settings.snapLength), vm: c.vm, libvirtURI: c.libvirtURI,
            domainXML: c.domainXML, hypervisor: c.hypervisor, redisAddress: c.redisAddress,
            redisAddressSource: c.redisAddressSource?.rawValue, loadCommand: c.loadCommand.map(CommandRedaction.redact), notes: [])
        // The run description goes into the Section Header Block (editcap and mergecap keep its
        // options), unless it is too large for one (then into an ISB below).
        let runPayload = try NetprobeBlock.run(metadata).payload()
        let runInHeader = runPayload.count <= MetadataCarriage.sectionHeaderLimit
        let runOptions = runInHeader ? try MetadataCarriage.options(for: runPayload, swapped: writer.encoder.swapped) : []
        try writer.append { e, out in
            e.appendSectionHeader(to: &out, options: [
                .init(1, string: MetadataCarriage.fileComment),
                .init(2, string: machine), .init(3, string: "\(sysname) \(kernel)"),
                .init(4, string: "netprobe \(NetprobeVersion.string)"),
            ] + runOptions)
        }
        for s in states {
            try writer.append { e, out in
                e.appendInterfaceDescription(
                    to: &out, linkType: LinkType(rawValue: s.capture.linkType),
                    snapLength: UInt32(c.settings.snapLength), name: s.vantage.interface,
                    description: s.vantage.role, tsResolution: 9, filter: c.settings.filter,
                    os: "\(sysname) \(kernel)")
            }
        }

        // Everything after this point finishes the file, whatever happens.
        var redisInfo: [String] = []
        var failure: Error?
        var stopReason = "stopped"
        var loadStatus: Int32?
        let sampler = NetlinkSampler(vantages: c.vantages, intervalNs: c.sampleIntervalNs)
        var samples = 0
        /// Stores one of netprobe's items now, on the interface it is about (0: the whole run),
        /// stamped with the time it names unless told.
        func store(_ block: NetprobeBlock, interface: UInt32 = 0, timeNs: Int64? = nil) throws {
            try writer.appendNetprobeData(try block.payload(), interface: interface,
                                          timeNs: timeNs ?? block.timeNs ?? realtimeNanoseconds())
        }
        /// A netlink sample goes with its interface's statistics.
        func storeSample(_ sample: NetlinkSample) throws {
            let index = states.first { $0.vantage.interface == sample.interface }?.index ?? 0
            try store(.netlink(sample), interface: index)
            samples += 1
        }
        /// Kernel events: batches as they are drained, each stamped with the drain's time.
        var kernelEvents: KernelEventStore?
        func storeEvents(_ batch: [UInt8]) throws { try writer.appendNetprobeData(batch, timeNs: realtimeNanoseconds()) }
        func storeSnapshot(_ snapshot: RedisInfoSnapshot?) throws {
            guard let snapshot else { return }
            try store(.redisInfo(snapshot))
            redisInfo.append(snapshot.phase)
        }

        var load: ChildProcess?
        do {
            if !runInHeader { try store(.run(metadata), timeNs: started) }
            try sampler.start()
            if let kinds = c.kernelEvents {
                let (store, note) = KernelEventStore.start(vantages: c.vantages, kinds: kinds)
                kernelEvents = store
                if let note { notes.append(note) }
            }
            try storeSnapshot(before)
            // The header, the interfaces and the run on disk before the first packet.
            try writer.flush()
            if let command = c.loadCommand {
                load = try Self.startLoad(command, namespace: c.loadNamespace)
            }
            stopReason = try loop(states: states, writer: writer, sampler: sampler, load: load, started: started,
                                  store: { try store($0, interface: $1) }, storeSample: storeSample) { now in
                try kernelEvents?.flush(now: now, write: storeEvents)
            }
        } catch {
            failure = error
            stopReason = "error"
        }
        // Wind down: the load, the sampler, the last packets, INFO after, statistics.
        var loadOutcome: RunMetadata.LoadOutcome?
        if let load {
            // Still running now means the capture, not the load, decided the end.
            let cutShort = load.isRunning
            load.signal(SIGTERM)
            loadStatus = load.wait(orStopAfter: 10).code
            loadOutcome = .init(exitStatus: loadStatus, endedByCapture: cutShort, captureStop: stopReason, durationNs: c.durationNs)
        }
        for sample in sampler.stop() {
            if failure == nil { do { try storeSample(sample) } catch { failure = error } }
        }
        if let store = kernelEvents {
            do { notes += try store.finish(write: failure == nil ? storeEvents : { _ in }) } catch { failure = error }
        }
        // The kernel's counts first; then take every packet they count, the last ones included.
        // The kernel hands a partly filled block over when its retire timer closes it, and the
        // timer closes only a block that was already current at its previous tick: the last
        // packets can wait up to two timeouts (a capture under ASan once lost 1 of 80,171 to a
        // single wait of one timeout). So: drain until every counted packet is in the file, or
        // two timeouts and a margin have passed.
        for s in states { if let stats = s.capture.statistics() { s.lastStats = stats } }
        if failure == nil {
            // Counted in 10 ms rounds, not against the wall clock (which may jump).
            var rounds = (c.settings.immediate ? 50 : 2 * Int(c.settings.timeoutMs) + 100) / 10
            while failure == nil {
                for s in states where s.ended == nil { do { try drain(s, writer: writer, limit: Int.max) } catch { failure = error } }
                let complete = states.allSatisfy { s in
                    guard s.ended == nil, let st = s.lastStats else { return true }
                    return s.written &* s.capture.receivedCopiesPerPacket &+ st.dropped >= st.received
                }
                if complete || rounds <= 0 { break }
                rounds -= 1
                usleep(10_000)
            }
        }
        let end = realtimeNanoseconds()
        var summaries: [CaptureSummary.Vantage] = []
        for s in states {
            let stats = s.lastStats
            if failure == nil {
                do {
                    try writer.append { e, out in
                        e.appendInterfaceStatistics(
                            to: &out, interface: s.index, ticks: UInt64(end),
                            startTicks: UInt64(started), endTicks: UInt64(end),
                            received: stats?.received, interfaceDropped: stats?.interfaceDropped,
                            osDropped: stats?.dropped, userDelivered: s.written,
                            comment: s.ended.map { "capture ended early: \($0)" })
                    }
                } catch { failure = error }
            }
            summaries.append(.init(interface: s.vantage.interface, role: s.vantage.role, written: s.written,
                                   received: stats?.received, dropped: stats?.dropped, ended: s.ended,
                                   receivedCopiesPerPacket: s.capture.receivedCopiesPerPacket))
        }
        if failure == nil {
            // Redis's INFO after: the capture no longer reads, so these requests are not in it.
            do { try storeSnapshot(snapshot("after")) } catch { failure = error }
            if let loadOutcome {
                // The run's metadata again, now with how the load ended (readers take the last).
                var last = metadata
                last.loadOutcome = loadOutcome
                do { try store(.run(last), timeNs: end) } catch { failure = error }
            }
            if let extra = c.finalBlocks {
                do {
                    try extra { payload in try writer.appendNetprobeData(payload, timeNs: end) }
                } catch {
                    notes.append("could not store the load generator's records: \(error)" + (c.loadRecordsPath.map { "; they are kept in \($0)" } ?? ""))
                }
            }
        }
        do { try writer.close() } catch { if failure == nil { failure = error } }
        if c.progress { FileHandle.standardError.write(Data("\n".utf8)) }
        if let failure { throw failure }
        return CaptureSummary(output: c.output, bytes: writer.size, durationNs: end - started, vantages: summaries,
                              netlinkSamples: samples, redisInfo: redisInfo, redisAddress: c.redisAddress,
                              redisAddressSource: c.redisAddress == nil ? nil : c.redisAddressSource, loadExitStatus: loadStatus,
                              loadOutcome: loadOutcome, stopReason: stopReason, notes: notes + sampler.notes)
    }

    /// Starts the load command, in `namespace` through `ip netns exec` when given.
    static func startLoad(_ command: [String], namespace: String?) throws -> ChildProcess {
        var argv = command
        if let namespace { argv = ["ip", "netns", "exec", namespace] + argv }
        // The load's output is the capture's own (as if run by hand beside it).
        do { return try ChildProcess(argv, stdin: .inherit) } catch {
            throw CaptureError("cannot start the load command \(CommandRedaction.redact(command).joined(separator: " ")): \(error)")
        }
    }

    private func loop(states: [VantageState], writer: PcapngFileWriter, sampler: NetlinkSampler, load: ChildProcess?,
                      started: Int64, store: (NetprobeBlock, UInt32) throws -> Void,
                      storeSample: (NetlinkSample) throws -> Void, everyRound: (Int64) throws -> Void) throws -> String {
        let c = configuration
        var fds = states.map { pollfd(fd: $0.capture.selectableFD, events: Int16(POLLIN), revents: 0) }
        var lastProgress: Int64 = 0
        var lastCounts = states.map { _ in UInt64(0) }
        let showProgress = c.progress && isatty(2) == 1
        while true {
            let signal = CNetprobe_stop_signal()
            if signal != 0 { return "signal \(signal)" }
            let now = realtimeNanoseconds()
            if let d = c.durationNs, now - started >= d { return "duration reached" }
            if let load, !load.isRunning { return "load command exited" }
            if states.allSatisfy({ $0.ended != nil }) { return "every vantage point ended" }

            _ = poll(&fds, nfds_t(fds.count), 50)
            for (i, s) in states.enumerated() where s.ended == nil {
                try drain(s, writer: writer, limit: 100_000)
                if s.ended != nil {
                    fds[i].fd = -1 // poll ignores negative descriptors
                    try store(.vantageNote(VantageNote(timeNs: realtimeNanoseconds(), interface: s.vantage.interface, note: s.ended!)), s.index)
                }
            }
            for sample in sampler.take() { try storeSample(sample) }
            // What is older than a second goes to disk (a SIGKILL keeps it).
            try writer.flushIfDue()
            try everyRound(now)
            if now - lastProgress >= 500_000_000 {
                for s in states where s.ended == nil { if let st = s.capture.statistics() { s.lastStats = st } }
                if showProgress {
                    let dt = lastProgress == 0 ? 0 : Double(now - lastProgress) / 1e9
                    var parts: [String] = []
                    for (i, s) in states.enumerated() {
                        let rate = dt > 0 ? Double(s.written - lastCounts[i]) / dt : 0
                        lastCounts[i] = s.written
                        let drops = s.lastStats.map { "\($0.dropped)" } ?? "?"
                        parts.append("\(s.vantage.interface) \(s.written) pkts \(drops) drop \(Int(rate))/s\(s.ended != nil ? " (ended)" : "")")
                    }
                    let line = "\r\u{1B}[K" + parts.joined(separator: " | ") + " | \(TextReport.fmt(Double(now - started) / 1e9, 1)) s"
                    FileHandle.standardError.write(Data(line.utf8))
                }
                lastProgress = now
            }
        }
    }

    /// Writes every packet waiting on one handle (up to `limit`).
    private func drain(_ s: VantageState, writer: PcapngFileWriter, limit: Int) throws {
        var n = 0
        while n < limit {
            switch s.capture.next() {
            case let .packet(ts, data, original):
                try writer.appendEnhancedPacket(interface: s.index, ticks: UInt64(max(ts, 0)), data: data, originalLength: original)
                s.written += 1
                n += 1
            case .none:
                return
            case let .failed(why):
                if let st = s.capture.statistics() { s.lastStats = st }
                s.ended = why.isEmpty ? "the interface stopped delivering packets" : why
                return
            }
        }
    }
}
