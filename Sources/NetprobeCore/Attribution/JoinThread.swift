#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Feeds a `RequestJoin` on a thread of its own, so that joining overlaps with reading and
/// analysing the trace (on this 2-CPU machine `report` then takes the longer of the two, not their
/// sum).
///
/// The analyser's thread calls `add` for every request, in order; they travel in batches of
/// `batchSize` through a queue of at most `maximumQueued` batches (the analyser waits when it is
/// full: memory stays bounded) and the join thread adds them in the same order, so the result is
/// exactly that of calling `join.add` directly. `finish()` waits for the thread.
/// With one CPU there is nothing to overlap: everything runs on the caller's thread.
final class JoinThread: @unchecked Sendable {
    let join: RequestJoin
    static let batchSize = 1024
    static let maximumQueued = 8

    private var batch: [RequestTiming] = []
    // Shared between the two threads, under `mutex`.
    private var queue: [[RequestTiming]] = []
    private var closed = false
    // Allocated: a pthread mutex must not move, and `&property` promises no fixed address.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var thread: pthread_t?

    init(join: RequestJoin, threaded: Bool = sysconf(Int32(_SC_NPROCESSORS_ONLN)) > 1) {
        self.join = join
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
        batch.reserveCapacity(Self.batchSize)
        guard threaded else { return }
        // The thread holds `self` until it ends; without one, `add` joins inline.
        thread = startThread { self.run() }
    }

    func add(_ t: RequestTiming) {
        guard thread != nil else {
            join.add(t)
            return
        }
        batch.append(t)
        if batch.count >= Self.batchSize { send() }
    }

    /// Hands on what is still batched and waits until the join thread has added everything.
    func finish() {
        if let t = thread {
            send()
            pthread_mutex_lock(mutex)
            closed = true
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(mutex)
            pthread_join(t, nil)
            thread = nil
        }
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
    }

    private func send() {
        guard !batch.isEmpty else { return }
        let full = batch
        batch = []
        batch.reserveCapacity(Self.batchSize)
        pthread_mutex_lock(mutex)
        while queue.count >= Self.maximumQueued { pthread_cond_wait(changed, mutex) }
        queue.append(full)
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
    }

    private func run() {
        while true {
            pthread_mutex_lock(mutex)
            while queue.isEmpty && !closed { pthread_cond_wait(changed, mutex) }
            if queue.isEmpty && closed {
                pthread_mutex_unlock(mutex)
                return
            }
            let next = queue.removeFirst()
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(mutex)
            for t in next { join.add(t) }
        }
    }
}
