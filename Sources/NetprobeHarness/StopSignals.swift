import CNetprobeShims

/// Stop requests (Ctrl-C, SIGTERM, SIGHUP) for the long commands that run children: the
/// experiment and the selftest check it between steps and stop cleanly.
public enum StopSignals {
    /// Installs handlers that only set a flag (CNetprobe_install_stop_signals).
    public static func install() { CNetprobe_install_stop_signals() }
    /// Whether a stop signal has arrived since `install` (CNetprobe_stop_signal).
    public static var stopRequested: Bool { CNetprobe_stop_signal() != 0 }
}
