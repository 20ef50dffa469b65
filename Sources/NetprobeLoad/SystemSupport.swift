#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetprobeSystem

/// The two clocks a run reads.
///
/// Request timestamps use CLOCK_REALTIME, the clock libpcap stamps packets with, so a request's
/// send and receive times line up with its packets in a capture. Pacing and the run's duration use
/// CLOCK_MONOTONIC, which wall-clock adjustments do not move. Both are vDSO calls: no system call.
enum LoadClock {
    /// Nanoseconds since the Unix epoch (clock_gettime(CLOCK_REALTIME)).
    @inline(__always)
    static func realtimeNs() -> Int64 { read(CLOCK_REALTIME) }

    /// Nanoseconds since an arbitrary start (clock_gettime(CLOCK_MONOTONIC)).
    @inline(__always)
    static func monotonicNs() -> Int64 { read(CLOCK_MONOTONIC) }

    @inline(__always)
    private static func read(_ clock: clockid_t) -> Int64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
    }
}

/// poll(2) over a fixed set of descriptors (the run's connections), one slot each.
///
/// Swift's Glibc module does not import <sys/epoll.h> or <sys/timerfd.h>, and NetprobeLoad has no
/// C shim; for the tens of connections of a load run poll(2) costs about the same as epoll.
final class Poller {
    private let slots: UnsafeMutablePointer<pollfd>
    let count: Int

    init(descriptors: [Int32]) {
        count = descriptors.count
        slots = UnsafeMutablePointer<pollfd>.allocate(capacity: max(count, 1))
        for (i, fd) in descriptors.enumerated() {
            slots[i] = pollfd(fd: fd, events: Self.readable, revents: 0)
        }
    }

    deinit { slots.deallocate() }

    /// Watches slot `i` for writability too (while its socket's send buffer is full), or stops.
    @inline(__always)
    func watchWritable(_ i: Int, _ on: Bool) {
        slots[i].events = on ? Self.readable | Self.writable : Self.readable
    }

    /// Stops watching slot `i` for good (poll ignores negative descriptors).
    func remove(_ i: Int) { slots[i].fd = -1 }

    /// poll(2); returns how many slots have events (0 on timeout or a signal).
    @inline(__always)
    func wait(timeoutMs: Int32) throws(SystemCallError) -> Int {
        let n = poll(slots, nfds_t(count), timeoutMs)
        if n >= 0 { return Int(n) }
        if errno == EINTR { return 0 }
        throw SystemCallError.current("poll")
    }

    /// The events of slot `i` from the last `wait`.
    @inline(__always)
    func events(_ i: Int) -> Int16 { slots[i].revents }

    static let readable = Int16(POLLIN)
    static let writable = Int16(POLLOUT)
    static let failed = Int16(POLLERR) | Int16(POLLHUP)
}
