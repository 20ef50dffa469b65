#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CNetprobeSystem

/// A POSIX thread running a closure, to be joined once. The one way netprobe's capture, lab
/// tooling and fault injectors start a thread of their own (pthread_create / pthread_join).
public final class JoinableThread: @unchecked Sendable {
    private var thread: pthread_t?

    /// Starts `body` on a new thread; throws when the system refuses one (pthread_create's error).
    public init(name: String? = nil, _ body: @escaping () -> Void) throws(SystemCallError) {
        final class Box {
            let name: String?
            let body: () -> Void
            init(_ name: String?, _ body: @escaping () -> Void) {
                self.name = name
                self.body = body
            }
        }
        var t = pthread_t()
        let context = Unmanaged.passRetained(Box(name, body)).toOpaque()
        let rc = pthread_create(&t, nil, { context in
            let box = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
            // Seen in top -H, perf and gdb.
            if let name = box.name { CNetprobeSystem_name_thread(name) }
            box.body()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<AnyObject>.fromOpaque(context).release()
            throw SystemCallError("pthread_create", errno: .init(rawValue: rc))
        }
        thread = t
    }

    /// Waits for the thread to return (pthread_join). Later calls return at once.
    public func join() {
        guard let t = thread else { return }
        thread = nil
        pthread_join(t, nil)
    }

    deinit {
        // A thread nobody joined keeps running; its resources are freed when it ends.
        if let t = thread { pthread_detach(t) }
    }
}
