import Foundation
import NetprobeCore
import Testing
@testable import NetprobeLoad

/// Runs against a real redis-server on 127.0.0.1 (started per test, on a free port). Serialized:
/// the timing checks must not share the two cores with another run.
@Suite("load against a loopback redis-server", .serialized)
struct LiveLoadTests {
    @Test("request count and SET:GET ratio are exact, and Redis counted the same")
    func countsAndRatio() throws {
        let redis = try LoopbackRedis()
        var c = LoadConfiguration(target: redis.target)
        c.connections = 4
        c.limit = .requests(2200)
        c.ratio = CommandRatio(set: 1, get: 10)
        let before = try redis.commandCalls()
        let (result, _, records) = try runCollecting(c)
        let after = try redis.commandCalls()

        #expect(result.requests == 2200)
        #expect(result.commands.map(\.command) == ["SET", "GET"])
        #expect(result.commands.map(\.requests) == [200, 2000])
        #expect(records.filter { $0.command == .set }.count == 200)
        #expect((after["SET"] ?? 0) - (before["SET"] ?? 0) == 200)
        #expect((after["GET"] ?? 0) - (before["GET"] ?? 0) == 2000)
        #expect(result.stopReason == .requestsDone)
        #expect(result.errorReplies == 0 && result.unanswered == 0 && result.connectionErrors == 0)
        #expect(result.totals.latencyUs.count == 2200)
        #expect(result.requestsPerSecond > 0)
    }

    @Test("pipeline 16: every reply is paired, and Redis's commandstats agree")
    func pipelined() throws {
        let redis = try LoopbackRedis()
        var c = LoadConfiguration(target: redis.target)
        c.connections = 3
        c.pipeline = 16
        c.limit = .requests(4800)
        c.ratio = CommandRatio(set: 1, get: 1)
        c.dataSize = 100
        let before = try redis.commandCalls()
        let (result, _, records) = try runCollecting(c)
        let after = try redis.commandCalls()

        #expect(result.requests == 4800 && records.count == 4800)
        #expect(result.errorReplies == 0 && result.unanswered == 0 && result.connectionErrors == 0)
        let calls = ((after["SET"] ?? 0) - (before["SET"] ?? 0)) + ((after["GET"] ?? 0) - (before["GET"] ?? 0))
        #expect(calls == 4800)
        #expect((after["SET"] ?? 0) - (before["SET"] ?? 0) == 2400)
        // Pipelining really happened: some requests were sent before the previous reply came.
        let byConnection = Dictionary(grouping: records, by: \.connection)
        let overlapped = byConnection.values.contains { rs in zip(rs, rs.dropFirst()).contains { $1.sendNs < $0.receiveNs } }
        #expect(overlapped)
    }

    @Test("records: receive >= send, contiguous stream offsets per connection, CLOCK_REALTIME")
    func recordsAreConsistent() throws {
        let redis = try LoopbackRedis()
        var c = LoadConfiguration(target: redis.target)
        c.connections = 5
        c.pipeline = 4
        c.limit = .requests(3000)
        let startedNs = foundationNowNs()
        let (result, connections, records) = try runCollecting(c)
        let endedNs = foundationNowNs()

        #expect(connections.count == 5)
        #expect(Set(connections.map(\.client.port)).count == 5)
        #expect(records.count == 3000)
        for r in records {
            #expect(r.receiveNs >= r.sendNs)
            #expect(r.server == Endpoint(address: IPAddress(ipv4: 0x7F00_0001), port: redis.port))
            #expect(r.client == connections[r.connection].client)
            // On CLOCK_REALTIME: inside the run as Foundation's wall clock saw it (within a second).
            #expect(r.sendNs > startedNs - 1_000_000_000 && r.receiveNs < endedNs + 1_000_000_000)
        }
        for (_, rs) in Dictionary(grouping: records, by: \.connection) {
            #expect(rs.first?.requestOffset == 0 && rs.first?.replyOffset == 0)
            for (a, b) in zip(rs, rs.dropFirst()) {
                #expect(b.requestOffset == a.requestOffset + UInt64(a.requestLength)) // strictly increasing, no gaps
                #expect(b.replyOffset > a.replyOffset)
                #expect(b.sendNs >= a.sendNs)
            }
        }
        let sent = records.reduce(0) { $0 + UInt64($1.requestLength) }
        #expect(sent == result.bytesSent)
        #expect(abs(Double(result.startNs - startedNs)) < 1e9)
    }

    @Test("--duration stops the run by itself, after the duration")
    func durationStops() throws {
        let redis = try LoopbackRedis()
        var c = LoadConfiguration(target: redis.target)
        c.limit = .duration(.milliseconds(600))
        let clock = ContinuousClock()
        let start = clock.now
        let (result, _, records) = try runCollecting(c)
        let took = clock.now - start
        #expect(result.stopReason == .durationReached)
        // What matters is that it stops by itself, and not before the duration: no upper bound in
        // seconds (a loaded 2-CPU machine under sanitizers can stretch any), the stop reason says why.
        #expect(took >= .milliseconds(600), "took \(took)")
        #expect(result.elapsedSeconds >= 0.6, "elapsed \(result.elapsedSeconds)")
        #expect(result.unanswered == 0 && records.count == result.requests && result.requests > 100)
    }

    @Test("stop() from another thread ends a long run promptly, with a summary")
    func stopInterrupts() throws {
        let redis = try LoopbackRedis()
        var c = LoadConfiguration(target: redis.target)
        c.limit = .duration(.seconds(30))
        let generator = try LoadGenerator(configuration: c)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { generator.stop() }
        let result = try generator.run()
        // It was asked for 30 s: the stop reason, not a stopwatch, says stop() ended it.
        #expect(result.stopReason == .interrupted)
        #expect(result.requests > 0 && result.unanswered == 0)
    }

    @Test("--rate paces requests over time")
    func ratePaces() throws {
        let redis = try LoopbackRedis()
        var c = LoadConfiguration(target: redis.target)
        c.connections = 4
        c.limit = .requests(400)
        c.rate = 1000
        let (result, _, records) = try runCollecting(c)
        #expect(result.requests == 400)
        // Pacing holds requests back: 400 at 1000/s cannot take less than about 0.4 s. (How much
        // later a request may leave depends on the machine's load: not checked.)
        #expect(result.elapsedSeconds > 0.35, "elapsed \(result.elapsedSeconds)")
        // Request n leaves no earlier than n ms after the first.
        let sends = records.map(\.sendNs).sorted()
        let first = sends[0]
        for (n, t) in sends.enumerated() {
            #expect(t - first >= Int64(n) * 1_000_000 - 1_000_000, "request \(n) left \(t - first) ns after the first")
        }
    }

    @Test("error replies are counted, per command and in the records")
    func errorReplies() throws {
        let redis = try LoopbackRedis(extraArguments: ["--requirepass", "not-given"])
        var c = LoadConfiguration(target: redis.target)
        c.connections = 2
        c.limit = .requests(110)
        let (result, _, records) = try runCollecting(c)
        #expect(result.requests == 110)
        #expect(result.errorReplies == 110)
        #expect(result.commands.map(\.errorReplies) == [10, 100])
        #expect(records.allSatisfy { $0.isErrorReply })
        #expect(LoadTextReport.render(result).contains("110 error replies"))
    }

    @Test("a refused target fails at once with a message naming it")
    func refused() throws {
        let port = try freeLoopbackPort()
        let c = LoadConfiguration(target: LoadTarget(host: "127.0.0.1", port: port))
        #expect {
            _ = try LoadGenerator(configuration: c).run()
        } throws: { error in
            guard let e = error as? LoadError, case .connect = e else { return false }
            return "\(e)".contains("127.0.0.1:\(port)") && "\(e)".contains("refused")
        }
    }

    @Test("the server going away mid-run is reported as failed connections, not a crash")
    func serverGoesAway() throws {
        let redis = try LoopbackRedis()
        var c = LoadConfiguration(target: redis.target)
        c.connections = 3
        c.limit = .duration(.seconds(20))
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { redis.stop() }
        let result = try LoadGenerator(configuration: c).run()
        // It was asked for 20 s: the stop reason says the lost connections ended it.
        #expect(result.stopReason == .connectionsFailed)
        #expect(result.connectionErrors == 3)
        #expect(result.connections.allSatisfy { $0.failure != nil })
    }

    @Test("the timestamps file round-trips through the reader")
    func timestampsFileRoundTrip() throws {
        let redis = try LoopbackRedis()
        var c = LoadConfiguration(target: redis.target)
        c.connections = 3
        c.pipeline = 2
        c.limit = .requests(1000)
        let path = NSTemporaryDirectory() + "netprobe-load-\(UUID().uuidString).npts"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try ClientRecordWriter(path: path)
        var connections: [ClientConnection] = []
        var records: [ClientRequestRecord] = []
        _ = try LoadGenerator(configuration: c).run(
            onConnected: { cs in
                connections = cs
                cs.forEach(writer.add)
            },
            onRequest: { r in
                records.append(r)
                writer.add(r)
            })
        try writer.finish()

        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int
        #expect(size == ClientRecordFormat.headerLength + ClientRecordFormat.entryLength * (3 + 1000))
        let (readConnections, readRecords) = try ClientRecordReader.readAll(path: path)
        #expect(readConnections == connections)
        #expect(readRecords == records)
    }
}
