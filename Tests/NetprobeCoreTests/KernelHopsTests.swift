import Testing
import NetprobeModel
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

/// The kernel-event stage on its own: which hops it follows per skb, and how a capture stamp finds
/// its skb. Events are written as the recorder hands them out (time order); the lab test
/// (KernelEventLabTests) checks the same quantities against bpftrace on a real guest.
@Suite("kernel hops")
struct KernelHopsTests {
    static let qemu: Int32 = 4242
    static func ev(_ t: Int64, _ kind: KernelEventKind, _ skb: UInt64, _ dev: String? = nil, pid: Int32 = 0) -> KernelEvent {
        KernelEvent(timeNs: t, kind: kind, cpu: 0, pid: pid, tid: pid, skbaddr: skb, interface: dev, length: 100)
    }

    /// A request: bridge -> vnet0's queue -> QEMU's read; a reply: QEMU's write -> vnet0 -> bridge.
    static func requestAndReply(at t: Int64, wait: Int64, hop: Int64, skb: UInt64) -> [KernelEvent] {
        [ev(t - 3_000, .receiveSkb, skb, "virbr0"),
         ev(t, .devStartXmit, skb, "vnet0"),
         ev(t + wait, .copyToReader, skb, pid: qemu),
         ev(t + 500_000, .receiveSkb, skb + 1, "vnet0", pid: qemu),
         ev(t + 500_000 + hop, .receiveSkb, skb + 1, "virbr0", pid: qemu)]
    }

    @Test func theBackendWaitRunsFromTheTapsTransmitToTheReadersCopy() {
        let hops = KernelHops.build(device: "vnet0", events: Self.requestAndReply(at: 1_000_000, wait: 80_000, hop: 4_000, skb: 0xA0))
        // The capture stamps the frame 1.5 us before the transmit event.
        let b = hops.backendWait(near: 998_500)
        #expect(b?.wait == 80_000)
        #expect(hops.reader == Self.qemu)
        #expect(hops.replyHop(near: 1_500_000) == 4_000)
        // Nothing near a stamp far away: not matched rather than guessed.
        #expect(hops.backendWait(near: 1_000_000 + KernelHops.matchWindowNs + 10_000) == nil)
    }

    @Test func eachStampFindsTheNearestSkbAndReusedAddressesStartAfresh() {
        // Three requests through the same skb address (freed and reused), waits 10, 20, 30 us.
        var events: [KernelEvent] = []
        for (k, wait) in [10_000, 20_000, 30_000].enumerated() {
            events += Self.requestAndReply(at: Int64(k) * 1_000_000 + 1_000_000, wait: Int64(wait), hop: Int64(k + 1) * 1_000, skb: 0xB0)
        }
        let hops = KernelHops.build(device: "vnet0", events: events)
        #expect(hops.backendWait(near: 2_000_100)?.wait == 20_000)
        #expect(hops.backendWait(near: 3_000_000)?.wait == 30_000)
        #expect(hops.replyHop(near: 1_500_000) == 1_000)
        #expect(hops.replyHop(near: 3_500_000) == 3_000)
    }

    @Test func aDroppedSkbHasNoWaitAndOtherDevicesAreNotTheBackend() {
        let events = [Self.ev(1_000, .devStartXmit, 0xC0, "vnet0"), Self.ev(2_000, .drop, 0xC0),
                      Self.ev(3_000, .copyToReader, 0xC0, pid: Self.qemu),
                      // The bridge's own transmit to another port, read by a socket: not vnet0's queue.
                      Self.ev(5_000, .devStartXmit, 0xC1, "veth1"), Self.ev(9_000, .copyToReader, 0xC1, pid: 7),
                      // A reply through vnet0 and the bridge, read by the client: not the backend either.
                      Self.ev(20_000, .receiveSkb, 0xC2, "vnet0", pid: Self.qemu), Self.ev(24_000, .receiveSkb, 0xC2, "virbr0"),
                      Self.ev(30_000, .copyToReader, 0xC2, pid: 7)]
        let hops = KernelHops.build(device: "vnet0", events: events)
        #expect(hops.backendWait(near: 1_000) == nil)
        #expect(hops.backendWait(near: 24_000) == nil)
        #expect(hops.reader == nil)
        #expect(hops.replyHop(near: 20_000) == 4_000)
    }

    @Test func theLongestStretchWithoutTheReadersActivityIsTheSilentPartOfAWait() {
        var events = Self.requestAndReply(at: 1_000_000, wait: 300_000, hop: 2_000, skb: 0xD0)
        // Request 2 waits 300 us while QEMU writes a frame into vnet0 in the middle of the wait.
        events += [Self.ev(2_000_000, .devStartXmit, 0xD5, "vnet0"),
                   Self.ev(2_100_000, .receiveSkb, 0xD6, "vnet0", pid: Self.qemu),
                   Self.ev(2_100_500, .receiveSkb, 0xD6, "virbr0", pid: Self.qemu),
                   Self.ev(2_300_000, .copyToReader, 0xD5, pid: Self.qemu)]
        let hops = KernelHops.build(device: "vnet0", events: events.sorted { $0.timeNs < $1.timeNs })
        // Request 1 waited 300 us with nothing from QEMU: all of it silent.
        #expect(hops.backendWait(near: 1_000_000)?.silent == 300_000)
        // Request 2: QEMU wrote at +100 us, then nothing until its copy at +300 us: 200 us silent.
        #expect(hops.backendWait(near: 2_000_000)?.silent == 200_000)
        #expect(KernelHops.longestGap([5, 10, 95], from: 0, to: 100) == 85)
        #expect(KernelHops.longestGap([], from: 0, to: 100) == 100)
    }

    @Test func aMacvtapsQueueIsFilledByAReceiveOnItsParent() {
        // The request shows only on the parent (the macvtap takes it in the parent's receive handler).
        let events = [Self.ev(2_000, .receiveSkb, 0xE0, "eth0"),
                      Self.ev(50_000, .copyToReader, 0xE0, pid: Self.qemu),
                      // The reply: QEMU's write is a transmit on the macvtap, then the lower device.
                      Self.ev(90_000, .devStartXmit, 0xE1, "macvtap0", pid: Self.qemu),
                      Self.ev(93_000, .devStartXmit, 0xE1, "eth0", pid: Self.qemu)]
        let hops = KernelHops.build(device: "macvtap0", queueDevice: "eth0", events: events)
        #expect(hops.reader == Self.qemu)
        #expect(hops.backendWait(near: 2_500)?.wait == 48_000)
        #expect(hops.replyHop(near: 89_000) == 3_000)
    }

    @Test func batchesAsStoredAreReadAndDamageIsReported() throws {
        var c = KernelEventTracks()
        // As a pcapng custom block stores it: padded to 4 bytes.
        c.add(batch: try KernelEventBatch.encode(Self.requestAndReply(at: 1_000_000, wait: 70_000, hop: 5_000, skb: 0xF0)) + [0, 0, 0])
        #expect(c.events == 5)
        #expect(c.damage == nil)
        #expect(c.hops(device: "vnet0", queueDevice: "vnet0").backendWait(near: 1_000_000)?.wait == 70_000)
        #expect(!c.knows("eth9"))
        var bytes = try KernelEventBatch.encode(Self.requestAndReply(at: 1, wait: 1, hop: 1, skb: 1))
        bytes.removeLast(7)
        c.add(batch: bytes)
        #expect(c.damage != nil)
    }

    @Test func theBackendsWaitLeavesTheGuestStackAndABypassBoundCountsIt() {
        var p = AttributionStageTests.path(command: 0, innerIn: 0, innerOut: 400_000)
        p.requestHop = 10_000
        p.backend = 150_000
        var values = [Int64](repeating: 0, count: SegmentName.allCases.count)
        SegmentSplit.split(p, redis: 50_000, queued: false, forwarding: 0, into: &values)
        #expect(values[SegmentName.vnicBackend.index] == 150_000)
        #expect(values[SegmentName.guestStack.index] == 200_000)
        // A wait longer than the interval it is in cannot push the guest's part below zero.
        p.backend = 390_000
        SegmentSplit.split(p, redis: 50_000, queued: false, forwarding: 0, into: &values)
        #expect(values[SegmentName.vnicBackend.index] == 350_000)
        #expect(values[SegmentName.guestStack.index] == 0)

        let typical = AttributionStageTests.shares([.bridge: 0.1, .tap: 0.0, .vnicBackend: 0.3, .guestStack: 0.4, .redis: 0.2])
        let resolution = SegmentResolution(requests: 100, twoSides: true, tapQueue: false, clientRecords: false,
                                           redisInfo: true, backendMatched: 100)
        let v = VerdictRule.decide(typical: typical, tail: typical, resolution: resolution)
        #expect(v.bypassBound?.segments == [.bridge, .vnicBackend])
        #expect(abs((v.bypassBound?.typical?.share ?? 0) - 0.4) < 1e-9)
        #expect(v.networkIsBottleneck == false)
    }
}

/// The scheduler's events of the backend's thread: what it did while a request waited.
@Suite("backend thread states")
struct BackendThreadStateTests {
    static let qemu = KernelHopsTests.qemu
    static func sw(_ t: Int64, from prev: Int32, state: UInt32, to next: Int32) -> KernelEvent {
        KernelEvent(timeNs: t, kind: .schedSwitch, cpu: 0, pid: prev, tid: prev, skbaddr: 0, targetTid: next, prevState: state)
    }
    static func wake(_ t: Int64, _ tid: Int32) -> KernelEvent {
        KernelEvent(timeNs: t, kind: .schedWakeup, cpu: 1, pid: 0, tid: 0, skbaddr: 0, targetTid: tid)
    }

    @Test("prev_state: no bit in the low byte is runnable (preempted), T and t are stopped, the rest asleep")
    func prevState() {
        #expect(ThreadState(prevState: 0) == .runnable)
        #expect(ThreadState(prevState: 0x100) == .runnable) // R+, preempted
        #expect(ThreadState(prevState: 0x1) == .asleep)
        #expect(ThreadState(prevState: 0x2) == .asleep)
        #expect(ThreadState(prevState: 0x80) == .asleep) // I, idle
        #expect(ThreadState(prevState: 0x4) == .stopped)
        #expect(ThreadState(prevState: 0x8) == .stopped)
    }

    @Test("a timeline integrates each state over an interval; before the first event it is unknown")
    func timeline() {
        var t = ThreadTimeline()
        t.change(to: .asleep, at: 100)
        t.change(to: .runnable, at: 200, wakeup: true)
        t.change(to: .running, at: 250)
        t.change(to: .runnable, at: 260, wakeup: true) // a wakeup of a running thread changes nothing
        t.change(to: .stopped, at: 300)
        t.change(to: .runnable, at: 500, wakeup: true)
        t.change(to: .running, at: 600)
        let all = t.times(from: 50, to: 700)
        #expect(all.unknownNs == 50)
        #expect(all.asleepNs == 100)
        #expect(all.runnableNs == 50 + 100)
        #expect(all.runningNs == 50 + 100)
        #expect(all.stoppedNs == 200)
        #expect(all.knownNs == 600)
        let inside = t.times(from: 320, to: 550)
        #expect(inside.stoppedNs == 180 && inside.runnableNs == 50 && inside.unknownNs == 0)
        #expect(t.times(from: 10, to: 20).unknownNs == 10)
        #expect(t.times(from: 20, to: 10) == ThreadStateTimes())
    }

    @Test("a request that waits while QEMU's reader is stopped, then while it waits for a CPU: the wait's states")
    func waitStates() {
        let reader: Int32 = Self.qemu
        var events: [KernelEvent] = [
            Self.sw(900_000, from: reader, state: 0x1, to: 0), // asleep in poll
        ]
        events.append(KernelHopsTests.ev(1_000_000, .devStartXmit, 0xD0, "vnet0"))
        events.append(Self.wake(1_001_000, reader))
        events.append(Self.sw(1_002_000, from: 0, state: 0, to: reader)) // runs ...
        events.append(Self.sw(1_010_000, from: reader, state: 0x4, to: 0)) // ... and is stopped (SIGSTOP)
        events.append(Self.wake(1_060_000, reader)) // SIGCONT
        events.append(Self.sw(1_070_000, from: 0, state: 0, to: reader))
        events.append(KernelEventBuilder.copy(1_080_000, 0xD0, reader))
        let hops = KernelHops.build(device: "vnet0", events: events)
        let w = hops.backendWait(near: 999_000)
        #expect(w?.wait == 80_000)
        let s = w?.states
        #expect(s?.asleepNs == 1_000)
        #expect(s?.runnableNs == 11_000) // woken 1 us before it ran, and 10 us after SIGCONT
        #expect(s?.runningNs == 18_000) // 8 us before the stop, 10 us before the copy
        #expect(s?.stoppedNs == 50_000)
        #expect(s.map { t in ThreadState.allCases.max { t[$0] < t[$1] } } == .stopped)
        #expect(hops.readerThreads == [reader])
        #expect(hops.hasSchedule)
        // Without the scheduler's events: the wait, and no states.
        let bare = KernelHops.build(device: "vnet0", events: events.filter { !$0.kind.isScheduler })
        #expect(bare.backendWait(near: 999_000)?.wait == 80_000)
        #expect(bare.backendWait(near: 999_000)?.states == nil)
        #expect(!bare.hasSchedule)
    }
}

private enum KernelEventBuilder {
    static func copy(_ t: Int64, _ skb: UInt64, _ tid: Int32) -> KernelEvent {
        KernelEvent(timeNs: t, kind: .copyToReader, cpu: 0, pid: tid, tid: tid, skbaddr: skb, length: 100)
    }
}

@Suite("backend thread in the report")
struct BackendThreadSummaryTests {
    static func times(running: Int64 = 0, runnable: Int64 = 0, stopped: Int64 = 0, asleep: Int64 = 0, unknown: Int64 = 0) -> ThreadStateTimes {
        var t = ThreadStateTimes()
        t.runningNs = running
        t.runnableNs = runnable
        t.stoppedNs = stopped
        t.asleepNs = asleep
        t.unknownNs = unknown
        return t
    }

    @Test("shares of the covered waiting; the slowest 1 %'s state decides, all waits' when the tail has none; none without events")
    func summary() throws {
        var tally = BackendTally()
        tally.matched = 10
        tally.threadStates = Self.times(running: 6_000, runnable: 2_000, stopped: 0, asleep: 2_000, unknown: 5_000)
        tally.tailThreadStates = Self.times(running: 100, stopped: 900)
        let s = try #require(BackendThreadSummary(tally, pid: 7, threads: [7, 9]))
        #expect(s.all.running == 0.6 && s.all.runnable == 0.2 && s.all.asleep == 0.2 && s.all.stopped == 0)
        #expect(s.all.coveredUs == 10 && s.all.uncoveredUs == 5)
        #expect(s.tail?.stopped == 0.9)
        #expect(s.dominant == .stopped)
        tally.tailThreadStates = ThreadStateTimes()
        #expect(BackendThreadSummary(tally, pid: 7, threads: [7])?.dominant == .running)
        tally.threadStates = Self.times(unknown: 5_000)
        #expect(BackendThreadSummary(tally, pid: 7, threads: [7]) == nil)
        #expect(BackendThreadSummary(BackendTally(), pid: 7, threads: [7]) == nil)
        // Each state ends the evidence with its own reading.
        let words = Set(ThreadState.allCases.map(AttributionText.conclusion))
        #expect(words.count == ThreadState.allCases.count)
        #expect(AttributionText.conclusion(.stopped).contains("stopped hypervisor"))
    }
}
