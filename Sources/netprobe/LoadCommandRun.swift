import ArgumentParser
import Dispatch
import Foundation
import NetprobeCore
import NetprobeHarness
import NetprobeLoad

extension Netprobe.LoadCommand {
    func run() throws {
        try checkOutput(output, inputs: [], what: "the summary")
        try checkOutput(jsonOut, inputs: [], what: "the JSON summary")
        let generator: LoadGenerator
        let writer: ClientRecordWriter?
        do {
            generator = try LoadGenerator(configuration: try loadConfiguration())
            writer = try timestampsOut.map { try ClientRecordWriter(path: $0) }
        } catch {
            printError("netprobe: \(error)")
            throw ExitCode(1)
        }
        let interrupt = Interrupt(generator)
        defer { interrupt.cancel() }

        let progress = ProgressLine(enabled: !quiet && isatty(STDERR_FILENO) == 1)
        let result: LoadResult
        do {
            result = try generator.run(
                onConnected: { connections in connections.forEach { writer?.add($0) } },
                onRequest: writer.map { w in { w.add($0) } },
                progress: progress.enabled ? { progress.show($0) } : nil)
        } catch {
            progress.clear()
            printError("netprobe: \(error)")
            throw ExitCode(1)
        }
        progress.clear()

        do {
            try writer?.finish()
        } catch {
            printError("netprobe: \(error)")
            throw ExitCode(1)
        }
        let policy = reportOutputPolicy(inputs: [])
        if let jsonOut { try writeOutput(try jsonText(result), to: jsonOut, policy: policy, what: "the JSON summary") }
        switch format {
        case .text: try writeOutput(LoadTextReport.render(result), to: output, policy: policy, what: "the summary")
        case .json: try writeOutput(try jsonText(result), to: output, policy: policy, what: "the summary")
        }
        if result.errorReplies > 0 || result.connectionErrors > 0 || result.unanswered > 0 {
            throw ExitCode(2)
        }
    }
}

/// The first Ctrl-C asks the run to stop (the summary still prints); a second one exits at once.
private final class Interrupt {
    private let source: any DispatchSourceSignal

    init(_ generator: LoadGenerator) {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        let seen = Counter()
        source.setEventHandler {
            if seen.increment() > 1 { _exit(130) }
            FileHandle.standardError.write(Data("\nnetprobe: stopping (Ctrl-C again to quit now)\n".utf8))
            generator.stop()
        }
        source.resume()
    }

    func cancel() {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }

    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func increment() -> Int { lock.withLock { value += 1; return value } }
    }
}

/// memtier's live line on standard error: rewritten in place, only on a terminal.
private struct ProgressLine {
    let enabled: Bool

    func show(_ p: LoadProgress) {
        var line = "\r[\(TextReport.fmt(p.elapsedSeconds, 1)) s] \(Int(p.fraction * 100))% "
        line += "\(p.requests) requests, \(TextReport.fmt(p.currentRequestsPerSecond, 0)) req/s "
        line += "(avg \(TextReport.fmt(p.averageRequestsPerSecond, 0)))"
        if let p50 = p.p50Us { line += ", p50 \(TextReport.fmt(p50, 1)) us" }
        if p.errorReplies + p.connectionErrors > 0 {
            line += ", \(p.errorReplies) error replies, \(p.connectionErrors) failed connections"
        }
        FileHandle.standardError.write(Data((line + "\u{1B}[K").utf8))
    }

    func clear() {
        if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
