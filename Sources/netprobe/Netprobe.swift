import ArgumentParser

/// The `netprobe` command: finds where the time goes when Redis runs inside a virtual machine.
@main
struct Netprobe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netprobe",
        abstract: "Find where Redis request time goes when the server runs inside a VM.",
        discussion: HelpText.discussion(
            """
            netprobe reads packet captures (tcpdump pcap, dumpcap/Wireshark pcapng, or its own \
            multi-interface pcapng), pairs every Redis request with its response at each capture \
            point (vantage point), and reports the latency seen at each.

            The options follow the tools you know: -i, -w (packets), -r, -f, -s, -B as in \
            tcpdump; -c/--connect URI as in virsh; -h HOST -p PORT -c CONNECTIONS -n -P -d as in \
            redis-benchmark; -o/--output FILE for any other output; --format text|json everywhere \
            (and html for report and compare); durations as 500ms, 10s or 1m30s.
            """,
            examples: [
                "netprobe lab up",
                "netprobe capture -i lo --duration 10s -w run.pcapng",
                "netprobe report run.pcapng",
                "netprobe report -r trace.pcap --format json -o report.json",
                "netprobe compare host.pcapng bridge.pcapng --format html -o cmp.html",
                "netprobe experiment",
            ],
            exitStatus: [
                (0, "success"),
                (1, "the command failed: the message on standard error says why (each command's --help lists its other statuses)"),
            ]),
        version: NetprobeVersionInfo.text,
        subcommands: [ExperimentCommand.self, ReportCommand.self, SelftestCommand.self, CompareCommand.self, CaptureCommand.self,
                      StatsCommand.self, VMsCommand.self, LabCommand.self, LoadCommand.self, VersionCommand.self,
                      ReferenceCommand.self])
}
