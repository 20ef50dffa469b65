#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
