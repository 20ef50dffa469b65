import Foundation
import NetprobeCore
import NetprobeSystem

/// Samples netlink counters of every vantage interface on its own thread, at a fixed interval.
final class NetlinkSampler: @unchecked Sendable {
    private let vantages: [CaptureVantage]
    private let intervalNs: Int64
    private let lock = NSLock()
    private var pending: [NetlinkSample] = []
    private var running = false
    private var thread: JoinableThread?
    /// One netlink reader per namespace (nil key: netprobe's own namespace).
    private var readers: [(namespace: String?, stats: NetlinkStats, interfaces: [String])] = []
    private(set) var notes: [String] = []

    init(vantages: [CaptureVantage], intervalNs: Int64) {
        self.vantages = vantages
        self.intervalNs = intervalNs
    }

    /// Opens the netlink sockets (in each vantage's namespace) and starts sampling.
    func start() throws {
        var byNamespace: [String?: [String]] = [:]
        for v in vantages { byNamespace[v.namespace, default: []].append(v.interface) }
        for (ns, interfaces) in byNamespace.sorted(by: { ($0.key ?? "") < ($1.key ?? "") }) {
            let stats = try NetworkNamespace.withNamespace(ns) { try NetlinkStats() }
            readers.append((ns, stats, interfaces))
        }
        running = true
        sampleOnce()
        thread = try JoinableThread(name: "netprobe-netlink") { [self] in
            var next = realtimeNanoseconds() + intervalNs
            while isRunning {
                let wait = next - realtimeNanoseconds()
                if wait > 0 { usleep(useconds_t(min(wait / 1000, 1_000_000))) }
                if realtimeNanoseconds() >= next {
                    sampleOnce()
                    next += intervalNs
                    if next < realtimeNanoseconds() { next = realtimeNanoseconds() + intervalNs } // fell behind
                }
            }
        }
    }

    private var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    private func sampleOnce() {
        var got: [NetlinkSample] = []
        var problems: [String] = []
        for r in readers {
            do {
                try r.stats.refresh()
            } catch {
                problems.append("\(error)")
                continue
            }
            let now = realtimeNanoseconds()
            for i in r.interfaces {
                if let s = r.stats.sample(i, timeNs: now) { got.append(s) }
            }
        }
        lock.lock()
        pending += got
        if notes.count < 5 { notes += problems.prefix(5 - notes.count) }
        lock.unlock()
    }

    /// The samples taken since the last call.
    func take() -> [NetlinkSample] {
        lock.lock()
        defer { lock.unlock() }
        let out = pending
        pending.removeAll(keepingCapacity: true)
        return out
    }

    /// Takes a last sample, stops the thread, returns what was not taken yet.
    func stop() -> [NetlinkSample] {
        lock.lock()
        let wasRunning = running
        running = false
        lock.unlock()
        if wasRunning, let t = thread {
            t.join()
            thread = nil
            sampleOnce()
        }
        return take()
    }
}
