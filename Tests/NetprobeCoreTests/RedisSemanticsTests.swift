import Foundation
import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeReport

/// Issue 16, items 11, 12, 13 and 15, on real captures of a real Redis 7
/// (`traces/tools/make-resp-semantics.sh`: `resp-semantics.pcap` on port 6379,
/// `resp-semantics-7399.pcap` on port 7399 beside HTTP and a "+OK" greeter). What netprobe pairs
/// must be what the client saw: the expectation is derived from the client's own log
/// (`traces/logs/*.client.json`) by `ClientLog`, which reads the replies the client received with
/// a RESP reader of its own, not netprobe's.
let respSemanticsTrace = tracesDirectory + "/resp-semantics.pcap"
let respSemantics7399Trace = tracesDirectory + "/resp-semantics-7399.pcap"

@Suite("Redis reply rules on real captures")
struct RedisSemanticsTests {
    /// What one connection of the client log expects: each request, and whether it was answered.
    struct ExpectedConnection {
        var name: String
        var requests: [(command: String, answered: Bool)]
        var paired: [String] { requests.filter(\.answered).map(\.command) }
    }

    /// The client's log, read independently of netprobe's decoder.
    enum ClientLog {
        /// Container commands whose name includes their subcommand (as INFO commandstats names them).
        static let containers: Set<String> = ["CLIENT", "DEBUG", "CONFIG"]

        static func read(_ path: String) throws -> [ExpectedConnection] {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let cases = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
            return try cases.map { c in
                let exchanges = try #require(c["exchanges"] as? [[String: String]])
                return ExpectedConnection(name: c["connection"] as? String ?? "?", requests: exchanges.compactMap { e in
                    let sent = e["sent"] ?? ""
                    let words = sent.split(separator: " ").map { $0.uppercased() }
                    guard let first = words.first, first.allSatisfy(\.isLetter), !sent.contains("\r\n") else { return nil } // not Redis (HTTP)
                    let command = containers.contains(first) && words.count > 1 ? first + " " + words[1] : first
                    return (command, Frames.replies(in: Array((e["received"] ?? "").utf8)) > 0)
                })
            }
        }
    }

    /// A minimal RESP2/RESP3 reader for the test's oracle: counts the top-level frames of a byte
    /// string that are replies (not pushes, not published messages, not attributes).
    enum Frames {
        static func replies(in b: [UInt8]) -> Int {
            var i = 0
            var n = 0
            while i < b.count {
                let (first, isPush, next) = frame(b, i)
                i = next
                let kind = first.map { String(decoding: $0, as: UTF8.self) }
                let message = ["message", "pmessage", "smessage"].contains(kind ?? "")
                if isPush ? ["subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe"].contains(kind ?? "")
                    : !message {
                    n += 1
                }
            }
            return n
        }

        /// The frame at `i`: its first element when it is an aggregate of bulk strings, whether it
        /// is a push, and where the next frame starts (attributes are skipped with the frame they
        /// annotate).
        static func frame(_ b: [UInt8], _ i: Int) -> (first: [UInt8]?, isPush: Bool, next: Int) {
            let lineEnd = (i..<b.count).first { b[$0] == 0x0A }!
            let header = String(decoding: b[(i + 1)..<(lineEnd - 1)], as: UTF8.self)
            var j = lineEnd + 1
            switch b[i] {
            case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
                let n = Int(header)!
                return (n < 0 ? nil : Array(b[j..<(j + n)]), false, n < 0 ? j : j + n + 2)
            case UInt8(ascii: "*"), UInt8(ascii: ">"), UInt8(ascii: "~"), UInt8(ascii: "%"), UInt8(ascii: "|"):
                let pairs = b[i] == UInt8(ascii: "%") || b[i] == UInt8(ascii: "|")
                let count = max(Int(header)!, 0) * (pairs ? 2 : 1)
                var first: [UInt8]?
                for k in 0..<count {
                    let element = frame(b, j)
                    if k == 0 { first = element.first }
                    j = element.next
                }
                if b[i] == UInt8(ascii: "|") { return frame(b, j) } // the value it annotates
                return (first, b[i] == UInt8(ascii: ">"), j)
            default:
                return (nil, false, j)
            }
        }
    }

    static let semantics = respSemanticsTrace
    static let otherPort = respSemantics7399Trace

    /// The trace analysed as `report` does: its analysis, report and paired requests.
    static func analyse(_ path: String, ports: Set<UInt16>? = nil) throws -> (TraceAnalysis, Report, [RequestTiming]) {
        var options = AnalysisOptions()
        if let ports { options.serverPorts = ports }
        let timings = Box()
        let (report, analysis) = try ReportBuilder.build(path: path, options: options, portFromTrace: ports == nil) { timings.all.append($0) }
        return (analysis, report, timings.all)
    }

    final class Box: @unchecked Sendable { var all: [RequestTiming] = [] }

    /// The paired commands of each connection, in request order, by connection number.
    static func pairedByConnection(_ t: [RequestTiming]) -> [Int: [String]] {
        Dictionary(grouping: t, by: \.connection).mapValues { $0.sorted { $0.requestFirstByteNs < $1.requestFirstByteNs }.map(\.command) }
    }

    /// Whether one connection paired exactly `expected`'s answered requests, in order (connections
    /// are numbered in the order the capture saw them, not the log's).
    static func pairedAsLogged(_ expected: ExpectedConnection, in paired: [Int: [String]]) -> Bool {
        paired.values.contains(expected.paired)
    }

    @Test("the oracle reads the client's log: 25 Redis requests, 20 answered, the HTTP request none",
          arguments: [respSemanticsTrace, respSemantics7399Trace])
    func oracle(trace: String) throws {
        let log = try ClientLog.read(Self.logPath(trace))
        #expect(log.map(\.name) == ["client-reply", "pubsub-resp2", "pubsub-resp3", "publisher", "attributes", "http"])
        #expect(log.map(\.requests.count) == [9, 5, 5, 3, 3, 0])
        #expect(log.map(\.paired.count) == [4, 5, 5, 3, 3, 0])
    }

    @Test("item 11: HTTP sent to the Redis port is not RESP: no GET, HOST: or ACCEPT: request counted, one stream said not to be RESP",
          arguments: [respSemanticsTrace, respSemantics7399Trace])
    func httpIsNotRESP(trace: String) throws {
        let (analysis, _, _) = try Self.analyse(trace)
        let v = try #require(analysis.vantages.first)
        let log = try ClientLog.read(Self.logPath(trace))
        #expect(v.requests == log.map(\.requests.count).reduce(0, +))
        #expect(v.requestsByCommand["GET"] == log.flatMap(\.requests).filter { $0.command == "GET" }.count)
        #expect(v.requestsByCommand.keys.allSatisfy { $0.allSatisfy { $0.isLetter || $0 == " " } })
        #expect(v.desynchronisedStreams == 1)
        #expect(v.desyncExamples.count == 1)
        #expect(v.desyncExamples.first?.contains("not RESP: an HTTP request line") == true)
    }

    @Test("item 12: CLIENT REPLY SKIP / OFF / ON: the answered requests pair, the five the protocol leaves unanswered are counted as such",
          arguments: [respSemanticsTrace, respSemantics7399Trace])
    func clientReply(trace: String) throws {
        let (analysis, report, timings) = try Self.analyse(trace)
        let expected = try #require(try ClientLog.read(Self.logPath(trace)).first { $0.name == "client-reply" })
        #expect(expected.paired == ["SET", "GET", "CLIENT REPLY", "GET"])
        let paired = Self.pairedByConnection(timings)
        #expect(Self.pairedAsLogged(expected, in: paired), "\(paired)")
        let v = try #require(analysis.vantages.first)
        #expect(v.requestsWithoutReply == expected.requests.filter { !$0.answered }.count)
        #expect(v.unpaired.isEmpty)
        #expect(report.vantages[0].requestsWithoutReply == 5)
        #expect(report.vantages[0].unpairedByReason.isEmpty)
    }

    @Test("item 13: pub/sub in RESP2 and RESP3: SUBSCRIBE, PING, UNSUBSCRIBE, RESET and what follows pair; messages are not replies",
          arguments: [respSemanticsTrace, respSemantics7399Trace])
    func pubSub(trace: String) throws {
        let (analysis, _, timings) = try Self.analyse(trace)
        let log = try ClientLog.read(Self.logPath(trace))
        let paired = Self.pairedByConnection(timings)
        for name in ["pubsub-resp2", "pubsub-resp3", "publisher", "attributes"] {
            let expected = try #require(log.first { $0.name == name })
            #expect(expected.requests.allSatisfy { $0.answered }, "\(name)")
            #expect(Self.pairedAsLogged(expected, in: paired), "\(name): \(paired)")
        }
        let v = try #require(analysis.vantages.first)
        #expect(v.pushes == 3) // two messages in RESP2, one push in RESP3
        #expect(v.unexpectedResponses == 0)
        // Each pair's reply is the one the client read for it: after its request, before the next.
        for (_, requests) in Dictionary(grouping: timings, by: \.connection) {
            let ordered = requests.sorted { $0.requestFirstByteNs < $1.requestFirstByteNs }
            for (a, b) in zip(ordered, ordered.dropFirst()) {
                #expect(a.responseFirstByteNs > a.requestLastByteNs && a.responseLastByteNs < b.requestFirstByteNs)
            }
        }
    }

    @Test("item 15: Redis on port 7399 is found by content, said so in text and JSON; HTTP and a +OK greeter are not taken for Redis")
    func otherPort() throws {
        let (analysis, report, timings) = try Self.analyse(Self.otherPort)
        let ports = try #require(report.redisPorts)
        #expect(ports.ports == [7399])
        #expect(ports.chosenBy == "detected")
        #expect(ports.reasons.count == 1 && ports.reasons[0].hasPrefix("port 7399: client streams begin with RESP arrays"))
        #expect(ports.notes.isEmpty)
        let log = try ClientLog.read(Self.logPath(Self.otherPort))
        #expect(Set(Self.pairedByConnection(timings).values) == Set(log.map(\.paired).filter { !$0.isEmpty }))
        #expect(Set(timings.map(\.server.port)) == [7399])
        // The other ports' first bytes were read and judged not to be Redis.
        let evidence = analysis.portEvidence
        #expect(evidence[8080]?.looksLikeRedis == false && evidence[8080]?.notRESP == 1)
        #expect(evidence[1100]?.looksLikeRedis == false && evidence[1100]?.notRESP == 1)
        let text = TextReport.render(report)
        #expect(text.contains("Redis port (detected by content): port 7399: client streams begin with RESP arrays"))
        let json = String(decoding: try JSONEncoder().encode(report), as: UTF8.self)
        #expect(json.contains("\"chosenBy\":\"detected\""))
    }

    @Test("item 15: --port overrides detection (no detection then), and names the port that looks like Redis")
    func portOverrides() throws {
        let (analysis, report, timings) = try Self.analyse(Self.otherPort, ports: [6379])
        #expect(timings.isEmpty && analysis.vantages[0].requests == 0)
        let ports = try #require(report.redisPorts)
        #expect(ports.ports == [6379] && ports.chosenBy == "named")
        #expect(ports.notes.count == 1 && ports.notes[0].contains("port 7399 also looks like Redis"))
        let (_, named, pairs) = try Self.analyse(Self.otherPort, ports: [7399])
        #expect(named.redisPorts?.chosenBy == "named")
        #expect(pairs.count == 20)
    }

    @Test("item 15: with Redis requests on 6379, 6379 is kept and the reports of the traces with it say nothing of ports")
    func defaultKept() throws {
        let (_, report, timings) = try Self.analyse(Self.semantics)
        #expect(report.redisPorts == nil)
        #expect(timings.count == 20)
    }

    static func logPath(_ trace: String) -> String {
        tracesDirectory + "/logs/" + URL(fileURLWithPath: trace).deletingPathExtension().lastPathComponent + ".client.json"
    }
}
