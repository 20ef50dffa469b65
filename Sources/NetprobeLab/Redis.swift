import Foundation
import NetprobeModel

/// Redis as the lab runs and checks it: the host's redis-server for the host and veth setups,
/// and `redis-cli ping` from the client namespace to tell when any Redis (guest or host) answers.
enum RedisProcess {
    /// Starts the host's redis-server inside `namespace`, bound to `bind`, as a daemon with its
    /// pid file and log in the lab's folder. Returns its pid.
    static func start(in namespace: Netns, bind: String, paths: LabPaths) throws -> Int32 {
        try? FileManager.default.removeItem(atPath: paths.redisPidFile)
        let argv = [
            "redis-server", "--bind", bind, "--port", String(LabNetwork.redisPort), "--protected-mode", "no",
            "--save", "", "--appendonly", "no", "--daemonize", "yes",
            "--pidfile", paths.redisPidFile, "--logfile", paths.redisLog, "--dir", paths.directory,
        ]
        try namespace.execChecked(argv, timeout: 30)
        guard let pid = PidFile.wait(paths.redisPidFile, seconds: 10) else {
            throw LabError.processDied(what: "redis-server", detail: "in namespace \(namespace.name) did not stay up", logTail: LogFile.tail(paths.redisLog))
        }
        return pid
    }
}

/// Asks Redis for PONG.
enum RedisPing {
    /// One `redis-cli -h HOST -p PORT ping` from inside `namespace`: nil when PONG came back,
    /// else what went wrong.
    static func once(from namespace: Netns, address: String, timeout: Double = 3) -> String? {
        let (host, port) = split(address)
        do {
            let out = try namespace.exec(["redis-cli", "-h", host, "-p", port, "ping"], timeout: timeout)
            if out.stdout.contains("PONG") { return nil }
            let text = (out.stdout + out.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty ? "redis-cli exit status \(out.status)" : text
        } catch {
            return "\(error)"
        }
    }

    /// Console lines in a guest's error: enough to reach back past Redis's 20-line start banner.
    static let consoleLines = 40

    /// Retries `once` until PONG or `timeout` seconds; meanwhile checks that the processes in
    /// `watch` are alive (a dead QEMU ends the wait at once, with its console in the error) and,
    /// with `watchConsole`, that the guest's console shows no halt (`GuestConsole`): a halted
    /// guest ends the wait at once too. On timeout, `diagnosis` says what to check.
    static func wait(from namespace: Netns, address: String, timeout: Double, watch: [(pid: Int32, what: String)],
                     consoleLog: String?, watchConsole: Bool = false, diagnosis: GuestDiagnosis? = nil) throws {
        let started = Date()
        var lastError = ""
        while true {
            guard let error = once(from: namespace, address: address) else { return }
            lastError = error
            let dead = watch.first { !ProcessTable.isAlive($0.pid) }
            if watchConsole, let consoleLog, let (sign, line) = GuestConsole.halt(in: LogFile.read(consoleLog)) {
                let qemuRunning = watch.contains { $0.what == "qemu" && ProcessTable.isAlive($0.pid) }
                throw LabError.guestHalted(meaning: sign.meaning, line: line, qemuRunning: qemuRunning, consoleLog: consoleLog,
                                           consoleTail: LogFile.tail(consoleLog, lines: consoleLines), checks: diagnosis?.fileNotes ?? [])
            }
            if let process = dead {
                throw LabError.processDied(what: process.what, detail: "(pid \(process.pid)) exited before Redis answered",
                                           logTail: consoleLog.map { LogFile.tail($0) } ?? "")
            }
            if Date().timeIntervalSince(started) > timeout { break }
            usleep(500_000)
        }
        throw LabError.redisNotAnswering(address: address, namespace: namespace.name, seconds: Int(timeout), lastError: lastError,
                                         consoleTail: consoleLog.map { LogFile.tail($0, lines: watchConsole ? consoleLines : 25) } ?? "",
                                         checks: diagnosis?.checks(lastError: lastError) ?? [])
    }

    /// ("10.77.0.2", "6379") from "10.77.0.2:6379".
    static func split(_ address: String) -> (String, String) {
        guard let hp = HostPort(parsing: address) else { return (address, String(LabNetwork.redisPort)) }
        return (hp.host, String(hp.port))
    }
}

/// The end of a log file, for error messages.
enum LogFile {
    static func tail(_ path: String, lines: Int = 25) -> String {
        printable(read(path)).split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `text` without carriage returns, terminal escape sequences (a firmware's screen clearing
    /// and colours) and other control characters but newline and tab: for messages.
    static func printable(_ text: String) -> String {
        var out = ""
        var scalars = text.unicodeScalars.makeIterator()
        while let c = scalars.next() {
            if c == "\u{1B}" {
                // ESC [ parameters final-byte (CSI), or ESC and one character.
                guard let next = scalars.next() else { break }
                if next == "[" {
                    while let p = scalars.next(), !(0x40...0x7E).contains(p.value) {}
                }
                continue
            }
            if c == "\n" || c == "\t" || c.value >= 0x20 && c.value != 0x7F { out.unicodeScalars.append(c) }
        }
        return out
    }

    /// The file's text ("" when it is missing); bytes that are not UTF-8 are replaced, not fatal.
    static func read(_ path: String) -> String {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}
