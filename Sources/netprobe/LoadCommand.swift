import ArgumentParser
import Dispatch
import Foundation
import NetprobeCore
import NetprobeHarness
import NetprobeLoad

extension LoadTarget: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

extension CommandRatio: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

extension Netprobe {
    /// `netprobe load --target HOST:PORT`: the built-in Redis load generator.
    struct LoadCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "load",
            abstract: "Send SET/GET load to a Redis server and report throughput and latency.",
            discussion: """
                A memtier_benchmark-style load generator: CONNECTIONS TCP connections to the \
                target, each keeping PIPELINE requests in flight, all driven by one thread. Commands \
                follow the SET:GET ratio; keys are drawn uniformly from the key space.

                Every request is stamped on CLOCK_REALTIME, the clock packet captures use: just \
                before the send(2) carrying its last byte, and just after the recv(2) returning \
                its reply's last byte. Latency is the difference. --timestamps-out keeps every \
                request's stamps, connection and TCP stream offsets (see ClientRecordFormat), so \
                that a capture of the same run can separate the client's share of the time.

                Ctrl-C stops sending, waits briefly for replies in flight and prints the summary.

                Examples:
                  netprobe load --target 127.0.0.1:6379
                  netprobe load --target 10.0.0.2:6379 -c 50 -P 16 --duration 30s
                  netprobe load --target [::1]:6379 --rate 20000 --timestamps-out run.npts

                Exit status: 0 the run finished; 1 it could not start (bad target, refused \
                connection); 2 it ran but requests failed (error replies, failed connections or \
                unanswered requests).
                """)

        @Option(help: ArgumentHelp("The Redis server: HOST:PORT, [IPV6]:PORT, or HOST (port 6379).", valueName: "HOST:PORT"))
        var target: LoadTarget

        @Option(name: [.customShort("c"), .long], help: ArgumentHelp("TCP connections, all served by one thread.", valueName: "N"))
        var connections = 10

        @Option(name: [.customShort("P"), .long], help: ArgumentHelp("Requests in flight per connection.", valueName: "P"))
        var pipeline = 1

        @Option(name: [.customShort("n"), .long], help: ArgumentHelp(
            "Requests in total over all connections (default 100000 unless --duration is given).", valueName: "N"))
        var requests: Int?

        @Option(help: ArgumentHelp("Run for this long instead: 10s, 500ms, 2m.", valueName: "D"))
        var duration: String?

        @Option(help: ArgumentHelp("SETs to GETs, e.g. 1:10 (one SET, then ten GETs, repeated).", valueName: "SET:GET"))
        var ratio = CommandRatio(set: 1, get: 10)

        @Option(name: [.customShort("d"), .long], help: ArgumentHelp("Bytes in each SET's value.", valueName: "B"))
        var dataSize = 32

        @Option(help: ArgumentHelp("Distinct keys, drawn uniformly: key:0000 ... key:9999 for 10000.", valueName: "K"))
        var keySpace = 10_000

        @Option(help: ArgumentHelp("Prefix of every key.", valueName: "PREFIX"))
        var keyPrefix = "key:"

        @Option(help: ArgumentHelp(
            "Requests per second over all connections (paced, to 1 ms); without it, as fast as replies come.",
            valueName: "R"))
        var rate: Double?

        @Option(help: "Output format: text (a table for people) or json (for scripts).")
        var format: OutputFormat = .text

        @Option(help: ArgumentHelp("Also write the JSON summary to this file.", valueName: "FILE"))
        var jsonOut: String?

        @Option(help: ArgumentHelp("Write every request's timestamps, connection and stream offsets to this file (binary, 48 bytes a request).", valueName: "FILE"))
        var timestampsOut: String?

        @Flag(help: "No progress line on standard error, even on a terminal.")
        var quiet = false

        func validate() throws {
            if requests != nil && duration != nil {
                throw ValidationError("Give --requests or --duration, not both.")
            }
            if let duration, LoadLimit.parseDuration(duration) == nil {
                throw ValidationError("--duration '\(duration)' is not a duration: write 10s, 500ms, 2m or 1h.")
            }
            let problems = try loadConfiguration().problems()
            if let first = problems.first { throw ValidationError(first.prefix(1).uppercased() + first.dropFirst() + ".") }
        }

        func loadConfiguration() throws -> LoadConfiguration {
            var c = LoadConfiguration(target: target)
            c.connections = connections
            c.pipeline = pipeline
            if let duration, let d = LoadLimit.parseDuration(duration) {
                c.limit = .duration(d)
            } else {
                c.limit = .requests(requests ?? 100_000)
            }
            c.ratio = ratio
            c.dataSize = dataSize
            c.keySpace = keySpace
            c.keyPrefix = keyPrefix
            c.rate = rate
            return c
        }

        func run() throws {
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
                if let jsonOut {
                    try Data((try JSONOutput.encode(result) + "\n").utf8).write(to: URL(fileURLWithPath: jsonOut))
                }
            } catch {
                printError("netprobe: \(error)")
                throw ExitCode(1)
            }
            switch format {
            case .text: print(LoadTextReport.render(result), terminator: "")
            case .json: print(try JSONOutput.encode(result))
            }
            if result.errorReplies > 0 || result.connectionErrors > 0 || result.unanswered > 0 {
                throw ExitCode(2)
            }
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
