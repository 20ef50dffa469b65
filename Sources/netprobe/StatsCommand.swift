import ArgumentParser
import Foundation
import NetprobeCapture
import NetprobeCore

extension Netprobe {
    /// `netprobe stats`: the netlink view of interfaces, live, as rates per second.
    struct StatsCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stats",
            abstract: "Show link and qdisc counters of interfaces live, per second (netlink).",
            discussion: """
                What `ip -s link` and `tc -s qdisc` show, as rates: packets and bytes per second \
                each way, drops and errors per second, and the root qdisc's backlog (now), drops \
                and overlimits per second. On a tap the directions are the host device's: what \
                the guest sends is rx. A slow guest shows up as tap tx_dropped (the tun queue \
                overflows) while the qdisc stays empty.

                Example: netprobe stats -i virbr0 -i vnet0 --netns np-netprobe --interval 1s
                """)

        @Option(name: .customShort("i"), help: ArgumentHelp("An interface; repeat for several.", valueName: "IFACE"))
        var interfaces: [String] = []

        @Option(help: ArgumentHelp("Time between lines (1s, 500ms).", valueName: "TIME"))
        var interval: TimeSpan = TimeSpan(nanoseconds: 1_000_000_000)

        @Option(help: ArgumentHelp("Stop after this many intervals.", valueName: "N"))
        var count: Int?

        @Option(help: ArgumentHelp("The network namespace of the interfaces.", valueName: "NAME"))
        var netns: String?

        func validate() throws {
            if interfaces.isEmpty { throw ValidationError("Name at least one interface with -i.") }
            if let count, count < 1 { throw ValidationError("--count must be at least 1.") }
        }

        func run() throws {
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
                usleep(useconds_t(interval.nanoseconds / 1000))
                do { try stats.refresh() } catch {
                    printError("netprobe stats: \(error)")
                    throw ExitCode(1)
                }
                var table = StatsTable()
                for i in interfaces {
                    guard let now = stats.sample(i, timeNs: realtimeNanoseconds()), let before = previous[i] else {
                        table.gone(i)
                        continue
                    }
                    table.add(before, now)
                    previous[i] = now
                }
                FileHandle.standardOutput.write(Data(table.render().utf8))
                printed += 1
            }
        }
    }
}

/// One block of `stats` output.
struct StatsTable {
    private var rows: [[String]] = [["IFACE", "RX pkt/s", "RX MB/s", "RX drop/s", "TX pkt/s", "TX MB/s", "TX drop/s", "ERR/s", "QDISC", "BACKLOG B", "QLEN", "Q drop/s", "OVERLIM/s"]]

    mutating func gone(_ name: String) { rows.append([name, "(gone)"]) }

    mutating func add(_ a: NetlinkSample, _ b: NetlinkSample) {
        let dt = max(Double(b.timeNs - a.timeNs) / 1e9, 1e-9)
        func rate(_ x: UInt64?, _ y: UInt64?) -> String {
            guard let x, let y else { return "-" }
            return TextReport.fmt(Double(y &- x) / dt, 0)
        }
        func mb(_ x: UInt64?, _ y: UInt64?) -> String {
            guard let x, let y else { return "-" }
            return TextReport.fmt(Double(y &- x) / dt / 1e6, 2)
        }
        let la = a.link, lb = b.link
        let errors = (lb.map { $0.rxErrors + $0.txErrors }, la.map { $0.rxErrors + $0.txErrors })
        rows.append([
            b.interface, rate(la?.rxPackets, lb?.rxPackets), mb(la?.rxBytes, lb?.rxBytes), rate(la?.rxDropped, lb?.rxDropped),
            rate(la?.txPackets, lb?.txPackets), mb(la?.txBytes, lb?.txBytes), rate(la?.txDropped, lb?.txDropped),
            rate(errors.1, errors.0), b.qdisc?.kind ?? "none", b.qdisc.map { "\($0.backlog)" } ?? "-",
            b.qdisc.map { "\($0.qlen)" } ?? "-", rate(a.qdisc?.drops, b.qdisc?.drops), rate(a.qdisc?.overlimits, b.qdisc?.overlimits),
        ])
    }

    func render() -> String {
        var widths = [Int](repeating: 0, count: rows[0].count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in
            r.enumerated().map { i, c in i == 0 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[i] - c.count) + c }
                .joined(separator: "  ")
        }.joined(separator: "\n") + "\n\n"
    }
}
