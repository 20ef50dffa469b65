import Foundation
import NetprobeCapture
import NetprobeCore
import NetprobeLab
import NetprobeSystem

/// Which load generator drives Redis.
public enum LoadTool: String, CaseIterable, Sendable, Codable {
    /// `netprobe load` (its per-request stamps become the client vantage point).
    case builtin
    case redisBenchmark = "redis-benchmark"
    /// memtier_benchmark, when installed.
    case memtier
}

/// The load of a run: which tool, how many connections, how deep the pipeline.
public struct LoadSpec: Sendable, Equatable {
    public var tool: LoadTool
    public var connections: Int
    public var pipeline: Int

    public init(tool: LoadTool = .builtin, connections: Int, pipeline: Int = 1) {
        self.tool = tool
        self.connections = connections
        self.pipeline = pipeline
    }

    /// Why the tool cannot run on this host, or nil.
    public var unavailableReason: String? {
        if tool == .memtier && ChildProcess.find("memtier_benchmark") == nil {
            return "memtier_benchmark is not installed on this host"
        }
        return nil
    }

    /// The load command against `target` (HOST:PORT) for about `seconds`.
    public func command(target: String, seconds: Double, netprobe: String) -> [String] {
        let address = HostPort(parsing: target)
        let host = address?.host ?? target, port = String(address?.port ?? HostPort.redisPort)
        switch tool {
        case .builtin:
            return [netprobe, "load", "--target", target, "--connections", "\(connections)", "--pipeline", "\(pipeline)",
                    "--duration", "\(Int(max(1, seconds * 1000)))ms", "--ratio", "1:1", "--quiet"]
        case .redisBenchmark:
            // redis-benchmark runs a request count, not a time: size it for about `seconds`.
            let n = max(1000, Int(seconds * 4000))
            return ["redis-benchmark", "-h", host, "-p", port, "-c", "\(connections)", "-P", "\(pipeline)",
                    "-n", "\(n)", "-t", "set,get", "-q"]
        case .memtier:
            return ["memtier_benchmark", "-s", host, "-p", port, "-c", "\(connections)", "-t", "1",
                    "--pipeline=\(pipeline)", "--test-time=\(Int(max(1, seconds)))", "--hide-histogram"]
        }
    }
}

/// Why a step of a lab run failed.
public enum LabRunError: Error, CustomStringConvertible {
    /// `netprobe capture` could not be started.
    case captureNotStarted(ChildProcessError)
    /// It ran and failed; `logTail` is the end of its log, `trace` what it may have written.
    case captureFailed(name: String, status: ExitStatus, logTail: String, trace: String)
    /// The trace could not be reported on.
    case report(name: String, trace: String, underlying: any Error)
    /// A stop signal arrived.
    case interrupted
    /// The lab lacks what the run needs.
    case lab(String)

    public var description: String {
        switch self {
        case .captureNotStarted(let e): return "capture could not start: \(e)"
        case let .captureFailed(name, status, tail, _): return "capture \(name) exited with status \(status.code): \(tail)"
        case let .report(_, _, e): return "report: \(e)"
        case .interrupted: return "interrupted"
        case .lab(let text): return text
        }
    }
}

/// One lab run, the sequence the experiment and the selftest share: lab up, warm-up, captures
/// under load (`netprobe capture -- LOAD` as a child of this binary), a report of each, lab down.
public final class LabRun {
    public let name: String
    public let setup: LabSetup
    /// Where traces, reports and capture logs go.
    public let directory: String
    public let load: LoadSpec
    /// The netprobe binary the captures and the built-in load run.
    public let netprobe: String
    private let say: (String) -> Void
    /// The lab, once up.
    public private(set) var state: LabState?
    /// The guest the lab boots (`lab up --guest` and its options): the built-in one by default.
    public var guest = LabGuestOptions()
    /// The kernel events its captures record (`capture --kernel-events`).
    public var kernelEvents: KernelEventSelection = .essential

    public init(name: String, setup: LabSetup, directory: String, load: LoadSpec, netprobe: String = NetprobeExecutable.path,
                say: @escaping (String) -> Void) {
        self.name = name
        self.setup = setup
        self.directory = directory
        self.load = load
        self.netprobe = netprobe
        self.say = say
    }

    /// Brings the lab up (`Lab.up`); when that fails, removes what it made and throws the lab's error.
    @discardableResult
    public func up() throws -> LabState {
        say("lab up")
        do {
            let s = try Lab.up(LabOptions(name: name, setup: setup, guest: setup.hasGuest ? guest : LabGuestOptions()), progress: { _ in })
            state = s
            return s
        } catch {
            _ = try? Lab.down(name)
            throw error
        }
    }

    /// Tests: a lab run over a state made by hand (no lab is brought up).
    func setStateForTesting(_ s: LabState) { state = s }

    /// Removes the lab (idempotent).
    public func down() {
        say("lab down")
        _ = try? Lab.down(name)
        state = nil
    }

    /// Runs `body` between `up` and `down`; the lab is removed whatever happens.
    public func withLab<R>(_ body: (LabState) throws -> R) throws -> R {
        let s = try up()
        defer { down() }
        return try body(s)
    }

    /// Runs the load for `seconds`, uncaptured, so that Redis, the guest and the caches are warm.
    public func warmUp(seconds: Double) {
        guard let state else { return }
        let argv = ["ip", "netns", "exec", state.namespace] + load.command(target: state.redisAddress, seconds: seconds, netprobe: netprobe)
        if let child = try? ChildProcess(argv, stdout: .discard, stderr: .discard) {
            child.wait(orStopAfter: seconds + 30)
        }
    }

    /// What a capture left: the trace and its report (also written as `<name>.json`).
    public struct Captured: Sendable {
        public var trace: String
        public var report: Report
    }

    /// The lab's vantage points in its own namespace (where capture runs), with their roles.
    public var localVantages: [LabState.Vantage] {
        guard let state else { return [] }
        return state.vantages.filter { $0.namespace == state.namespace }
    }

    /// The capture request for `name`: the vantages in the lab's namespace, Redis INFO from the
    /// lab's Redis, the load for `seconds` after `--`, stopping by itself at the latest 2 minutes after that.
    public func captureRequest(_ name: String, seconds: Double, vantages: [LabState.Vantage]? = nil, filter: String? = nil) -> CaptureRequest {
        var r = CaptureRequest()
        guard let state else { return r }
        r.namespace = state.namespace
        r.output = "\(directory)/\(name).pcapng"
        r.redis = state.redisAddress
        r.duration = .seconds(Int64(seconds) + 120)
        r.quiet = true
        for v in vantages ?? localVantages {
            r.interfaces.append(v.interface)
            r.roles.append(.init(interface: v.interface, role: v.role.rawValue))
        }
        r.filter = filter
        r.kernelEvents = kernelEvents
        r.load = load.command(target: state.redisAddress, seconds: seconds, netprobe: netprobe)
        return r
    }

    /// Captures `name` under the load for `seconds` (`netprobe capture` as a child, its output in
    /// `<name>.capture.log`), then reports on the trace. A stop signal ends the capture and throws `.interrupted`.
    public func capture(_ name: String, seconds: Double, vantages: [LabState.Vantage]? = nil, filter: String? = nil) throws(LabRunError) -> Captured {
        guard state != nil else { throw .lab("the lab is not up") }
        let request = captureRequest(name, seconds: seconds, vantages: vantages, filter: filter)
        let log = "\(directory)/\(name).capture.log"
        let logFD: FileDescriptor
        do {
            logFD = try FileDescriptor.open(log, .writeOnly, options: [.create, .truncate], permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch let e as Errno {
            throw .captureNotStarted(.cannotStart(command: "netprobe capture (log \(log))", errno: e))
        } catch {
            throw .lab("cannot create \(log): \(error)")
        }
        defer { try? logFD.close() }
        let child: ChildProcess
        do {
            child = try ChildProcess([netprobe] + request.arguments, stdout: .descriptor(logFD), stderr: .descriptor(logFD))
        } catch {
            throw .captureNotStarted(error)
        }
        let limit = Date().addingTimeInterval(seconds + 180)
        var status: ExitStatus?
        while status == nil {
            if StopSignals.stopRequested || Date() > limit {
                status = child.stop(grace: 10)
                break
            }
            status = child.wait(timeout: 0.2)
        }
        if StopSignals.stopRequested { throw .interrupted }
        guard let status, status.succeeded else {
            let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: " | ") ?? ""
            throw .captureFailed(name: name, status: status ?? .exited(-1), logTail: tail, trace: request.output)
        }
        do {
            let (report, _) = try ReportBuilder.build(path: request.output)
            try Data(try JSONOutput.encode(report).utf8).write(to: URL(fileURLWithPath: "\(directory)/\(name).json"))
            return Captured(trace: request.output, report: report)
        } catch {
            throw .report(name: name, trace: request.output, underlying: error)
        }
    }
}
