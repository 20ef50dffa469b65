import Foundation
import NetprobeCapture
import NetprobeCore

/// What `netprobe capture` says at the end: text on standard error (beside the load command's own
/// output), or with --format json one JSON object on standard output.
struct CaptureSummaryOutput: Encodable {
    struct Vantage: Encodable {
        var interface: String
        var role: String
        var packetsWritten: UInt64
        /// Packets the kernel's filter accepted, and those it dropped (null: libpcap did not say).
        var receivedByFilter: UInt64?
        var droppedByKernel: UInt64?
        /// Why capture on this interface ended before the rest (it went away ...); null otherwise.
        var endedEarly: String?

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(interface, forKey: .interface)
            try c.encode(role, forKey: .role)
            try c.encode(packetsWritten, forKey: .packetsWritten)
            try c.encode(receivedByFilter, forKey: .receivedByFilter)
            try c.encode(droppedByKernel, forKey: .droppedByKernel)
            try c.encode(endedEarly, forKey: .endedEarly)
        }

        enum CodingKeys: String, CodingKey { case interface, role, packetsWritten, receivedByFilter, droppedByKernel, endedEarly }
    }

    struct Load: Encodable {
        /// The load command's exit status (128 + signal when a signal ended it); null if unknown.
        var exitStatus: Int32?
        /// True when the capture stopped first and ended the load (SIGTERM): its results are partial.
        var cutShort: Bool
        var summary: String

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(exitStatus, forKey: .exitStatus)
            try c.encode(cutShort, forKey: .cutShort)
            try c.encode(summary, forKey: .summary)
        }

        enum CodingKeys: String, CodingKey { case exitStatus, cutShort, summary }
    }

    var file: String
    var bytes: Int64
    var durationSeconds: Double
    var stopReason: String
    var vantages: [Vantage]
    var netlinkSamples: Int
    /// When Redis INFO was taken ("before", "after").
    var redisInfo: [String]
    /// The Redis asked for INFO, and where its address came from (`RedisAddressSource`'s raw
    /// value: redis-option, load-target, lab, domain-lease, domain-neighbour); absent without one.
    var redisAddress: String?
    var redisAddressSource: String?
    var load: Load?
    var notes: [String]
    /// The source as a type, for the text.
    private var source: RedisAddressSource? { redisAddressSource.flatMap(RedisAddressSource.init(rawValue:)) }
    /// What limits the trace (packets lost), also printed on standard error.
    var warnings: [String]

    init(_ summary: CaptureSummary) {
        file = summary.output
        bytes = summary.bytes
        durationSeconds = Double(summary.durationNs) / 1e9
        stopReason = summary.stopReason
        vantages = summary.vantages.map {
            Vantage(interface: $0.interface, role: $0.role, packetsWritten: $0.written, receivedByFilter: $0.received,
                    droppedByKernel: $0.dropped, endedEarly: $0.ended)
        }
        netlinkSamples = summary.netlinkSamples
        redisInfo = summary.redisInfo
        redisAddress = summary.redisAddress
        redisAddressSource = summary.redisAddressSource?.rawValue
        load = summary.loadOutcome.map { Load(exitStatus: $0.exitStatus, cutShort: $0.endedByCapture, summary: $0.summary) }
        notes = summary.notes
        warnings = []
        for v in summary.vantages where v.ended == nil {
            // On loopback, unless netprobe could keep the outgoing copies out, the kernel puts
            // every packet in the ring twice and counts both; libpcap skips the outgoing copy.
            let copies = v.receivedCopiesPerPacket
            if let received = v.received, let dropped = v.dropped, v.written * copies + dropped < received {
                warnings.append("\(v.interface): \((received - dropped) / copies - v.written) packets the kernel accepted never reached the file")
            }
        }
        if summary.vantages.contains(where: { ($0.dropped ?? 0) > 0 }) {
            warnings.append("the kernel dropped packets: latencies of the lost requests are missing; use a larger -B or a smaller -s")
        }
    }

    /// The summary for people (the warnings are printed apart).
    var text: String {
        var out = "netprobe capture: \(file): \(bytes) bytes in \(TextReport.fmt(durationSeconds, 1)) s (\(stopReason))\n"
        for v in vantages {
            out += "  \(v.interface) (\(v.role)): \(v.packetsWritten) packets written, \(v.receivedByFilter.map(String.init) ?? "?") received by filter, \(v.droppedByKernel.map(String.init) ?? "?") dropped by kernel"
            if let e = v.endedEarly { out += " — ended early: \(e)" }
            out += "\n"
        }
        out += "  netlink samples: \(netlinkSamples); Redis INFO: \(redisInfo.isEmpty ? "none" : redisInfo.joined(separator: " and "))"
        if let redisAddress { out += " from \(redisAddress)" + (source.map { " (address from \($0.words))" } ?? "") }
        out += "\n"
        if let load { out += "  load command: \(load.summary)\n" }
        for n in notes { out += "  note: \(n)\n" }
        return out
    }
}

/// With --format json, standard output carries only the summary: the load command (which inherits
/// the descriptors) writes to standard error instead, until `restore()`.
struct StandardOutputForJSON {
    private let saved: Int32

    init() {
        fflush(nil)
        saved = dup(STDOUT_FILENO)
        if saved >= 0 { dup2(STDERR_FILENO, STDOUT_FILENO) }
    }

    /// Standard output is the caller's again.
    func restore() {
        guard saved >= 0 else { return }
        fflush(nil)
        dup2(saved, STDOUT_FILENO)
        close(saved)
    }
}
