#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetprobeSystem

/// Why a load run could not start (or had to stop as a whole). Problems of single requests or
/// single connections during a run are counted in `LoadResult` instead.
public enum LoadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The configuration is not usable; the messages say why.
    case invalidConfiguration([String])
    /// The target's host name did not resolve.
    case resolve(target: String, message: String)
    /// A connection to the target could not be opened (errno: ECONNREFUSED, EHOSTUNREACH, ...).
    case connect(target: String, address: String, errno: Errno)
    /// A system call the run depends on failed (epoll, timerfd).
    case system(SystemCallError)

    public var description: String {
        switch self {
        case let .invalidConfiguration(problems):
            return "invalid load configuration: " + problems.joined(separator: "; ")
        case let .resolve(target, message):
            return "cannot resolve the target \(target): \(message)"
        case let .connect(target, address, code):
            let via = address == target ? "" : " (\(address))"
            var text = "cannot connect to \(target)\(via): \(code.message)"
            switch code {
            case .connectionRefused: text += ": is Redis listening on that address and port?"
            case .noRouteToHost, .networkUnreachable: text += ": no route to that address from here"
            case .timedOut: text += ": no answer within the connect timeout"
            default: break
            }
            return text
        case let .system(error):
            return error.description
        }
    }
}
