import NetprobeModel
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// CPUs online when the process started: the pipeline runs threads only when there are two or more.
package let onlineCPUs = sysconf(Int32(_SC_NPROCESSORS_ONLN))

/// `body(k, items[k])` for every item: the first on this thread, the others on threads of their
/// own (on this thread too when none can be started). The results come back in item order.
package func eachInParallel<Item, R>(_ items: [Item], _ body: @escaping (Int, Item) -> R) -> [R] {
    let slots = items.map { _ in ParallelResult<R>() }
    var threads: [pthread_t] = []
    for k in items.indices.dropFirst() {
        if let t = startThread({ slots[k].result = body(k, items[k]) }) { threads.append(t) } else { slots[k].result = body(k, items[k]) }
    }
    if !items.isEmpty { slots[0].result = body(0, items[0]) }
    for t in threads { pthread_join(t, nil) }
    return slots.map { $0.result! }
}

/// Where one of `eachInParallel`'s threads leaves its result.
private final class ParallelResult<R>: @unchecked Sendable { var result: R? }

/// Runs `body` on a new POSIX thread (the pipeline's helpers: `ReadAhead`, `JoinThread`). Returns
/// the thread to join, or nil when the system refuses one: the caller then does the work itself.
func startThread(_ body: @escaping () -> Void) -> pthread_t? {
    final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }
    var t = pthread_t()
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    guard pthread_create(&t, nil, { context in
        Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().body()
        return nil
    }, context) == 0 else {
        Unmanaged<Box>.fromOpaque(context).release()
        return nil
    }
    return t
}

/// A first-in first-out queue between two threads, bounded: `send` waits while it holds
/// `capacity` elements, `receive` while it is empty. After `close()`, `send` refuses (false) and
/// `receive` hands out what is left, then nil. The pipeline's threads meet only here.
final class BoundedQueue<Element>: @unchecked Sendable {
    let capacity: Int
    private var elements: [Element] = []
    private var head = 0
    private var closed = false
    // Allocated: a pthread mutex must not move, and `&property` promises no fixed address.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
    }

    /// Adds `e` once there is room; false (and `e` dropped) when the queue is closed.
    @discardableResult
    func send(_ e: Element) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while elements.count - head >= capacity && !closed { pthread_cond_wait(changed, mutex) }
        if closed { return false }
        elements.append(e)
        pthread_cond_broadcast(changed)
        return true
    }

    /// The oldest element, waiting for one; nil once the queue is closed and empty.
    func receive() -> Element? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while head == elements.count && !closed { pthread_cond_wait(changed, mutex) }
        guard head < elements.count else { return nil }
        let e = elements[head]
        head += 1
        if head == elements.count {
            elements.removeAll(keepingCapacity: true)
            head = 0
        }
        pthread_cond_broadcast(changed)
        return e
    }

    func close() {
        pthread_mutex_lock(mutex)
        closed = true
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
    }
}
