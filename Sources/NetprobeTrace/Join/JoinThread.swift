import NetprobeModel
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
package final class JoinThread: @unchecked Sendable {
    let join: RequestJoin
    static let batchSize = 1024
    static let maximumQueued = 8

    private var batch: [RequestTiming] = []
    private let queue = BoundedQueue<[RequestTiming]>(capacity: maximumQueued)
    private var thread: pthread_t?

    package init(join: RequestJoin, threaded: Bool = onlineCPUs > 1) {
        self.join = join
        batch.reserveCapacity(Self.batchSize)
        guard threaded else { return }
        // The thread holds `self` until it ends; without one, `add` joins inline.
        thread = startThread { self.run() }
    }

    package func add(_ t: RequestTiming) {
        guard thread != nil else {
            join.add(t)
            return
        }
        batch.append(t)
        if batch.count >= Self.batchSize { send() }
    }

    /// Hands on what is still batched and waits until the join thread has added everything.
    package func finish() {
        guard let t = thread else { return }
        send()
        queue.close()
        pthread_join(t, nil)
        thread = nil
    }

    private func send() {
        guard !batch.isEmpty else { return }
        queue.send(batch)
        batch = []
        batch.reserveCapacity(Self.batchSize)
    }

    private func run() {
        while let next = queue.receive() {
            for t in next { join.add(t) }
        }
    }
}
