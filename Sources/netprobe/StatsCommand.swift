import ArgumentParser
import Foundation
import NetprobeCapture
import NetprobeCore
import NetprobeHarness

extension Netprobe {
    /// `netprobe stats`: the netlink view of interfaces, live, as rates per second.
    struct StatsCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stats",
            abstract: "Show link and qdisc counters of interfaces live, per second (netlink).",
            discussion: HelpText.discussion(
                """
                What `ip -s link` and `tc -s qdisc` show, as rates: packets and bytes per second \
                each way, drops and errors per second, and the root qdisc's backlog (now), drops \
                and overlimits per second. On a tap the directions are the host device's: what \
                the guest sends is rx. A slow guest shows up as tap tx_dropped (the tun queue \
                overflows) while the qdisc stays empty.

                --format json prints one JSON object a line per interval (JSON Lines), rates per \
                second in bytes and packets, so that a script can read the stream as it comes.
                """,
                examples: [
                    "netprobe stats -i virbr0 -i vnet0 --netns np-netprobe",
                    "netprobe stats -i vnet0 --interval 500ms --count 20",
                    "netprobe stats -i eth0 --count 60 --format json > eth0.jsonl",
                ],
                exitStatus: [
                    (0, "it printed --count intervals (without --count it runs until Ctrl-C)"),
                    (1, "an interface or the namespace was not found, or netlink failed; the message says which"),
                ]))

        @Option(name: .customShort("i"), help: ArgumentHelp("An interface; repeat for several.", valueName: "IFACE"))
        var interfaces: [String] = []

        @Option(parsing: .unconditional, help: ArgumentHelp("Time between lines (500ms, 1s, 1m30s).", valueName: "TIME"))
        var interval = DurationArgument(.seconds(1))

        @Option(parsing: .unconditional, help: ArgumentHelp("Stop after this many intervals.", valueName: "N"))
        var count: Int?

        @Option(help: "Output format: text (a table per interval) or json (one object a line per interval).")
        var format: OutputFormat = .text

        @Option(help: ArgumentHelp("The network namespace of the interfaces.", valueName: "NAME"))
        var netns: String?

        func validate() throws {
            if interfaces.isEmpty { throw ValidationError("Name at least one interface with -i.") }
            try ArgumentCheck.range(count, 1...Int.max, "--count")
            _ = try interval.checked("--interval")
        }

        func run() throws {
            let interval = try interval.checked("--interval")
            let stats: NetlinkStats
            do {
                stats = try NetworkNamespace.withNamespace(netns) { try NetlinkStats() }
                try stats.refresh()
            } catch {
                printError("netprobe stats: \(error)")
                throw ExitCode(1)
            }
            var previous: [String: NetlinkSample] = [:]
            for i in interfaces {
                guard let s = stats.sample(i, timeNs: realtimeNanoseconds()) else {
                    printError("netprobe stats: no interface named \(i)\(netns.map { " in namespace \($0)" } ?? "") (ip link)")
                    throw ExitCode(1)
                }
                previous[i] = s
            }
            var printed = 0
            while count.map({ printed < $0 }) ?? true {
                Thread.sleep(forTimeInterval: interval.seconds) // usleep(3) takes at most 71 minutes
                do { try stats.refresh() } catch {
                    printError("netprobe stats: \(error)")
                    throw ExitCode(1)
                }
                var rows: [StatsRow] = []
                for i in interfaces {
                    guard let now = stats.sample(i, timeNs: realtimeNanoseconds()), let before = previous[i] else {
                        rows.append(StatsRow(gone: i))
                        continue
                    }
                    rows.append(StatsRow(from: before, to: now))
                    previous[i] = now
                }
                switch format {
                case .text: try writeOutput(StatsTable.render(rows), to: nil, policy: .replaceRegularFile, what: "the counters")
                case .json:
                    let line = try JSONOutput.encodeLine(StatsInterval(timeNs: realtimeNanoseconds(), interfaces: rows))
                    try writeOutput(line + "\n", to: nil, policy: .replaceRegularFile, what: "the counters")
                }
                printed += 1
            }
        }
    }
}
