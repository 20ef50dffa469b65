import Foundation

/// The running netprobe binary: what the harness starts for `netprobe capture` and
/// `netprobe load`, so that children are this very version (the one on PATH may be another, or absent).
public enum NetprobeExecutable {
    /// The target of /proc/self/exe, or how this process was started.
    public static let path: String =
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}
