import Glibc
import NetprobeCore

/// The kernel events of a capture: a `KernelEventRecorder` on the capture's interfaces, its events
/// written into the trace as `KernelEventBatch`es while the capture runs (so a capture stopped
/// early keeps what was recorded), and what limited them said in the capture's notes.
///
/// Recorded only where they can show something the packets cannot: a guest's device (tap or
/// macvtap) among the interfaces, whose queue the virtual NIC's backend reads. Elsewhere (loopback,
/// veth) they would cost the traffic time and add nothing to the report.
final class KernelEventStore {
    private let recorder: KernelEventRecorder
    private var lastFlushNs: Int64 = 0
    private(set) var events = 0

    /// How often the events are written out.
    static let flushIntervalNs: Int64 = 100_000_000

    private init(_ recorder: KernelEventRecorder) { self.recorder = recorder }

    /// Starts recording `kinds` on `vantages`; nil with a note when there is nothing to record or
    /// the host cannot (no tracefs, no permission, a kernel without the tracepoints).
    static func start(vantages: [CaptureVantage], kinds: [KernelEventKind]) -> (KernelEventStore?, note: String?) {
        let guestRoles: Set<String> = [VantageRole.tap.rawValue, VantageRole.macvtap.rawValue]
        guard vantages.contains(where: { guestRoles.contains($0.role) }) else {
            return (nil, "kernel events not recorded: no tap or macvtap among the interfaces (they show the virtual NIC backend's queue, which this path does not have)")
        }
        // The scheduler's events need the backend's threads: the processes holding the devices.
        var backend: [Int32] = []
        var note: String?
        if kinds.contains(where: \.isScheduler) {
            for v in vantages where guestRoles.contains(v.role) {
                let macvtapIndex = v.role == VantageRole.macvtap.rawValue
                    ? (try? NetworkNamespace.withNamespace(v.namespace) { if_nametoindex(v.interface) }).flatMap { $0 == 0 ? nil : $0 }
                    : nil
                backend += TapReaders.pids(holding: v.interface, macvtapIndex: macvtapIndex)
            }
            backend = Array(Set(backend)).sorted()
            if backend.isEmpty {
                note = "kernel events: no process holds \(vantages.filter { guestRoles.contains($0.role) }.map(\.interface).joined(separator: ", ")) open, so the scheduler's events of the backend were not recorded (the report cannot tell a stopped backend from a busy one)"
            }
        }
        do {
            let recorder = try KernelEventRecorder(
                interfaces: vantages.map { KernelEventInterface(name: $0.interface, namespace: $0.namespace) },
                kinds: kinds, scheduled: backend)
            try recorder.start()
            return (KernelEventStore(recorder), note)
        } catch {
            return (nil, "kernel events not recorded (the vnic-backend segment will be unresolved): \(error)")
        }
    }

    /// Writes the events collected so far, at most every `flushIntervalNs` unless `force`.
    func flush(now: Int64, force: Bool = false, write: ([UInt8]) throws -> Void) throws {
        guard force || now - lastFlushNs >= Self.flushIntervalNs else { return }
        lastFlushNs = now
        try store(recorder.drain(), write)
    }

    /// Stops recording, writes the rest; returns what the capture's notes should say.
    func finish(write: ([UInt8]) throws -> Void) throws -> [String] {
        try store(recorder.stop(), write)
        let s = recorder.statistics
        var notes = ["kernel events: \(events) recorded on \(recorder.interfaces.map(\.name).joined(separator: ", ")) (\(recorder.kinds.map(\.description).joined(separator: ", ")))"]
        if s.lostSamples > 0 { notes.append("kernel events: the kernel lost \(s.lostSamples) samples (rings full): some requests have no backend wait") }
        if s.undrainedDiscarded > 0 { notes.append("kernel events: \(s.undrainedDiscarded) discarded (not written out in time)") }
        // The offset is measured to about a microsecond: smaller "steps" are that reading's noise.
        if abs(s.clockStepNs) >= 1_000 { notes.append("kernel events: the wall clock stepped by \(s.clockStepNs) ns during the capture: events after the step may be off by that much") }
        return notes
    }

    private func store(_ batch: [KernelEvent], _ write: ([UInt8]) throws -> Void) throws {
        guard !batch.isEmpty else { return }
        events += batch.count
        // An item of the trace holds at most 15 MiB: 100,000 events take about 2.5 MB.
        var start = 0
        while start < batch.count {
            let end = min(batch.count, start + 100_000)
            try write(try KernelEventBatch.encode(Array(batch[start..<end])))
            start = end
        }
    }
}
