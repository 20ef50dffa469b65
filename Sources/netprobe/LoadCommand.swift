import ArgumentParser
import Foundation
import NetprobeCore
import NetprobeLoad

extension LoadTarget: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

extension CommandRatio: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

extension Netprobe {
    /// `netprobe load`: the built-in Redis load generator. Its options follow redis-benchmark's
    /// (-h HOST -p PORT -c -n -P -d) and memtier_benchmark's (--ratio, --key-prefix); help is on
    /// --help only, as -h is the host.
    struct LoadCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "load",
            abstract: "Send SET/GET load to a Redis server and report throughput and latency.",
            usage: "netprobe load (-h HOST [-p PORT] | --target HOST:PORT) [<options>]",
            discussion: HelpText.discussion(
                """
                A memtier_benchmark-style load generator: -c connections to the server, each \
                keeping -P requests in flight, all driven by one thread. Commands follow the \
                SET:GET ratio; keys are drawn uniformly from the key space.

                The server is -h HOST -p PORT, as in redis-benchmark (help is --help only), or \
                --target HOST:PORT. -c counts connections in total, as redis-benchmark's -c \
                counts clients; memtier_benchmark's -c counts clients per thread, and netprobe \
                load has one thread, so memtier's -c N -t 1 is the same load.

                Every request is stamped on CLOCK_REALTIME, the clock packet captures use: just \
                before the send(2) carrying its last byte, and just after the recv(2) returning \
                its reply's last byte. Latency is the difference. --timestamps-out keeps every \
                request's stamps, connection and TCP stream offsets (see ClientRecordFormat), so \
                that a capture of the same run can separate the client's share of the time.

                Ctrl-C stops sending, waits briefly for replies in flight and prints the summary.
                """,
                examples: [
                    "netprobe load -h 127.0.0.1 -p 6379 -c 50 -n 100000",
                    "netprobe load --target 10.0.0.2:6379 -c 50 -P 16 --duration 1m30s",
                    "netprobe load --target [::1]:6379 --rate 20000 --timestamps-out run.npts",
                    "netprobe load -h 10.77.0.2 --format json -o load.json",
                ],
                exitStatus: [
                    (0, "the run finished and every request was answered"),
                    (1, "it could not start (a bad target, a refused connection) or an output file could not be written"),
                    (2, "it ran, but requests failed: error replies, failed connections or unanswered requests (the summary counts them)"),
                    (130, "a second Ctrl-C ended it at once (the first stops sending and prints the summary)"),
                ]),
            helpNames: [.long])

        @Option(help: ArgumentHelp("The Redis server: HOST:PORT, [IPV6]:PORT, or HOST (port 6379).", valueName: "HOST:PORT"))
        var target: LoadTarget?

        @Option(name: [.customShort("h"), .long], help: ArgumentHelp("The Redis server's host (as redis-benchmark -h).", valueName: "HOST"))
        var host: String?

        /// memtier_benchmark's spelling of -h.
        @Option(name: [.customShort("s"), .customLong("server")], help: ArgumentHelp("memtier's spelling of -h.", valueName: "HOST", visibility: .hidden))
        var server: String?

        @Option(name: [.customShort("p"), .long], parsing: .unconditional, help: ArgumentHelp(
            "The Redis server's port, with -h (default 6379).", valueName: "PORT"))
        var port: Int?

        @Option(name: [.customShort("c"), .long], parsing: .unconditional, help: ArgumentHelp(
            "TCP connections in total, all served by one thread (redis-benchmark's -c; memtier's -c with -t 1; default: 10).", valueName: "N"))
        var connections: Int?

        /// memtier_benchmark's long spelling of -c.
        @Option(name: .customLong("clients"), parsing: .unconditional, help: ArgumentHelp("memtier's spelling of -c.", valueName: "N", visibility: .hidden))
        var clients: Int?

        @Option(name: [.customShort("P"), .long], parsing: .unconditional, help: ArgumentHelp("Requests in flight per connection.", valueName: "P"))
        var pipeline = 1

        @Option(name: [.customShort("n"), .long], parsing: .unconditional, help: ArgumentHelp(
            "Requests in total over all connections (default 100000 unless --duration is given).", valueName: "N"))
        var requests: Int?

        @Option(parsing: .unconditional, help: ArgumentHelp("Run for this long instead: 500ms, 10s, 1m30s.", valueName: "TIME"))
        var duration: DurationArgument?

        /// memtier_benchmark's spelling of --duration (seconds; any duration works).
        @Option(name: .customLong("test-time"), parsing: .unconditional, help: ArgumentHelp("memtier's spelling of --duration.", valueName: "TIME", visibility: .hidden))
        var testTime: DurationArgument?

        @Option(parsing: .unconditional, help: ArgumentHelp("SETs to GETs, e.g. 1:10 (one SET, then ten GETs, repeated).", valueName: "SET:GET"))
        var ratio = CommandRatio(set: 1, get: 10)

        @Option(name: [.customShort("d"), .long], parsing: .unconditional, help: ArgumentHelp("Bytes in each SET's value.", valueName: "B"))
        var dataSize = 32

        @Option(parsing: .unconditional, help: ArgumentHelp("Distinct keys, drawn uniformly: key:0000 ... key:9999 for 10000.", valueName: "K"))
        var keySpace = 10_000

        @Option(help: ArgumentHelp("Prefix of every key.", valueName: "PREFIX"))
        var keyPrefix = "key:"

        @Option(parsing: .unconditional, help: ArgumentHelp(
            "Requests per second over all connections (paced, to 1 ms); without it, as fast as replies come.", valueName: "R"))
        var rate: Double?

        @Option(help: "Output format: text (a table for people) or json (for scripts).")
        var format: OutputFormat = .text

        @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp(
            "Write the summary (in --format) to FILE instead of standard output.", valueName: "FILE"))
        var output: String?

        /// The old way to get JSON in a file: also writes the JSON summary, whatever --format says.
        @Option(help: ArgumentHelp("Also write the JSON summary to FILE (old; see -o).", valueName: "FILE", visibility: .hidden))
        var jsonOut: String?

        @Option(help: ArgumentHelp("Write every request's timestamps, connection and stream offsets to this file (binary, 48 bytes a request).", valueName: "FILE"))
        var timestampsOut: String?

        @Flag(name: [.customLong("quiet"), .customLong("no-progress")], help: "No progress line on standard error, even on a terminal.")
        var quiet = false

        func validate() throws {
            _ = try redisServer()
            try ArgumentCheck.range(try ArgumentCheck.either(connections, "-c/--connections", old: clients, "--clients"),
                                    1...LoadConfiguration.maximumConnections, "-c/--connections")
            try ArgumentCheck.range(pipeline, 1...LoadConfiguration.maximumPipeline, "-P/--pipeline")
            try ArgumentCheck.range(requests, 1...Int.max, "-n/--requests")
            _ = try duration?.checked("--duration")
            _ = try testTime?.checked("--test-time")
            let time = try ArgumentCheck.either(duration, "--duration", old: testTime, "--test-time")
            if requests != nil && time != nil { throw ValidationError("Give -n/--requests or --duration, not both.") }
            try ArgumentCheck.range(dataSize, 0...LoadConfiguration.maximumDataSize, "-d/--data-size")
            try ArgumentCheck.range(keySpace, 1...1_000_000_000_000, "--key-space")
            try ArgumentCheck.positive(rate, "--rate")
            let problems = try loadConfiguration().problems()
            if let first = problems.first { throw ValidationError(first.prefix(1).uppercased() + first.dropFirst() + ".") }
        }

        /// The server from --target, or from -h/-s and -p.
        func redisServer() throws -> LoadTarget {
            try ArgumentCheck.range(port, 1...65_535, "-p/--port")
            let name = try ArgumentCheck.either(host, "-h/--host", old: server, "-s/--server")
            switch (target, name) {
            case let (target?, nil):
                if port != nil { throw ValidationError("--target already names the port: give --target HOST:PORT, or -h HOST -p PORT.") }
                return target
            case let (nil, name?):
                guard let parsed = LoadTarget(parsing: name) else { throw ValidationError("-h takes a host name or address, got '\(name)'") }
                if parsed.port != HostPort.redisPort && port != nil { throw ValidationError("Give the port once: -h HOST -p PORT.") }
                return LoadTarget(host: parsed.host, port: port.map { UInt16($0) } ?? parsed.port)
            case (_?, _?):
                throw ValidationError("Give the server once: --target HOST:PORT, or -h HOST -p PORT.")
            case (nil, nil):
                throw ValidationError("Name the Redis server: -h HOST [-p PORT] (as redis-benchmark), or --target HOST:PORT.")
            }
        }

        func loadConfiguration() throws -> LoadConfiguration {
            var c = LoadConfiguration(target: try redisServer())
            c.connections = connections ?? clients ?? 10
            c.pipeline = pipeline
            if let time = duration ?? testTime {
                c.limit = .duration(try time.checked("--duration").duration)
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
    }
}
