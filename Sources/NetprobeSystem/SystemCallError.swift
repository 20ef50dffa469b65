#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// A failed system call: its name and errno, as swift-system's typed `Errno`.
///
/// The one error type for a C call that returns -1 and sets errno (`systemCall` throws it).
/// Compare `errno` with the constants (`.connectionRefused`, `.interrupted`) rather than with its text.
public struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was called, with what matters to a reader ("open /run/netprobe/lab/.x.lock", "poll").
    public var call: String
    public var errno: Errno

    public init(_ call: String, errno: Errno) {
        self.call = call
        self.errno = errno
    }

    /// The error for the calling thread's current errno.
    public static func current(_ call: String) -> SystemCallError {
        SystemCallError(call, errno: Errno(rawValue: Glibc.errno))
    }

    public var description: String { "\(call) failed: \(errno.message)" }
}

extension Errno {
    /// strerror(3)'s text, lower-cased as in the rest of netprobe's messages ("connection refused").
    public var message: String {
        let text = String(cString: strerror(rawValue))
        guard let first = text.first else { return "errno \(rawValue)" }
        return first.lowercased() + text.dropFirst()
    }
}

/// Runs a C call that returns -1 and sets errno on failure, retrying it on EINTR: the one place
/// that does so. `name` is evaluated only on failure.
@inline(__always)
public func systemCall<T: FixedWidthInteger>(_ name: @autoclosure () -> String, _ body: () -> T) throws(SystemCallError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = Glibc.errno
        if code != EINTR { throw SystemCallError(name(), errno: Errno(rawValue: code)) }
    }
}
