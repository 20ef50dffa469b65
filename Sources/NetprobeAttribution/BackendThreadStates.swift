import NetprobeTrace

/// What a thread was doing, as the scheduler's events tell it.
public enum ThreadState: String, Sendable, CaseIterable, Codable {
    /// On a CPU.
    case running
    /// Ready to run but not on a CPU: preempted, or throttled by a CPU quota, or woken and not yet
    /// given a CPU. A thread that waits here is starved.
    case runnable
    /// Stopped (SIGSTOP, a debugger): it cannot run until it is continued.
    case stopped
    /// Asleep: waiting for something (a file descriptor, a lock, I/O) and not woken.
    case asleep

    /// The state sched_switch's `prev_state` leaves a thread in: the kernel reports the task
    /// state index as one bit (0x1 S, 0x2 D, 0x4 T, 0x8 t, 0x10 X, 0x20 Z, 0x40 P, 0x80 I); no
    /// bit in the low byte is "R", still runnable (the 0x100 bit marks a preemption).
    public init(prevState: UInt32) {
        let bits = prevState & 0xFF
        if bits == 0 {
            self = .runnable
        } else if bits & 0x0C != 0 {
            self = .stopped
        } else {
            self = .asleep
        }
    }
}

/// Time a thread spent in each state over some intervals (nanoseconds), and how much of those
/// intervals the events did not cover (before the thread's first scheduler event).
public struct ThreadStateTimes: Sendable, Equatable, Codable {
    public var runningNs: Int64 = 0
    public var runnableNs: Int64 = 0
    public var stoppedNs: Int64 = 0
    public var asleepNs: Int64 = 0
    public var unknownNs: Int64 = 0

    public init() {}

    public subscript(state: ThreadState) -> Int64 {
        get {
            switch state {
            case .running: runningNs
            case .runnable: runnableNs
            case .stopped: stoppedNs
            case .asleep: asleepNs
            }
        }
        set {
            switch state {
            case .running: runningNs = newValue
            case .runnable: runnableNs = newValue
            case .stopped: stoppedNs = newValue
            case .asleep: asleepNs = newValue
            }
        }
    }

    /// The time the events cover (every state but unknown).
    public var knownNs: Int64 { runningNs &+ runnableNs &+ stoppedNs &+ asleepNs }

    /// Each state's share of the known time; nil when none is known.
    public func share(_ state: ThreadState) -> Double? {
        knownNs > 0 ? Double(self[state]) / Double(knownNs) : nil
    }

    mutating func add(_ o: ThreadStateTimes) {
        runningNs = LatencyRecorder.saturatingSum(runningNs, o.runningNs)
        runnableNs = LatencyRecorder.saturatingSum(runnableNs, o.runnableNs)
        stoppedNs = LatencyRecorder.saturatingSum(stoppedNs, o.stoppedNs)
        asleepNs = LatencyRecorder.saturatingSum(asleepNs, o.asleepNs)
        unknownNs = LatencyRecorder.saturatingSum(unknownNs, o.unknownNs)
    }
}

/// One thread's states over time, from its sched_switch and sched_wakeup events, in time order.
struct ThreadTimeline: Sendable {
    /// From `atNs[k]` on (until the next change), the thread was in `states[k]`.
    private(set) var atNs: [Int64] = []
    private(set) var states: [ThreadState] = []

    /// A change at `ns` (events in time order). A wakeup does not make a running thread runnable.
    mutating func change(to state: ThreadState, at ns: Int64, wakeup: Bool = false) {
        if wakeup, states.last == .running { return }
        if let last = states.last, last == state { return }
        atNs.append(ns)
        states.append(state)
    }

    /// The time in each state over [from, to]; before the first event, unknown.
    func times(from: Int64, to: Int64) -> ThreadStateTimes {
        var t = ThreadStateTimes()
        guard to > from else { return t }
        // The last change at or before `from`.
        var lo = 0, hi = atNs.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if atNs[mid] <= from { lo = mid + 1 } else { hi = mid }
        }
        var k = lo - 1
        var start = from
        if k < 0 {
            let firstKnown = atNs.first.map { min($0, to) } ?? to
            t.unknownNs = firstKnown - from
            start = firstKnown
            k = 0
        }
        while start < to && k < states.count {
            let end = k + 1 < atNs.count ? min(atNs[k + 1], to) : to
            if end > start { t[states[k]] = t[states[k]] &+ (end - start) }
            start = max(start, end)
            k += 1
        }
        return t
    }
}
