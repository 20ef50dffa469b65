import ArgumentParser

/// The `netprobe` command: finds where the time goes when Redis runs inside a virtual machine.
@main
struct Netprobe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netprobe",
        abstract: "Find where Redis request time goes when the server runs inside a VM.",
        discussion: """
            netprobe reads packet captures (tcpdump pcap, dumpcap/Wireshark pcapng, or its own \
            multi-interface pcapng), pairs every Redis request with its response at each capture \
            point (vantage point), and reports the latency seen at each.

            Examples:
              netprobe report trace.pcapng
              netprobe report -r trace.pcap --format json
              netprobe report trace.pcapng --vantage vnet0 --port 6380
            """,
        version: NetprobeVersionInfo.text,
        subcommands: [ExperimentCommand.self, ReportCommand.self, SelftestCommand.self, CompareCommand.self, CaptureCommand.self, StatsCommand.self, VMsCommand.self, LabCommand.self, LoadCommand.self, VersionCommand.self])
}
