import Foundation
import Testing
@testable import NetprobeCore
@testable import NetprobeTrace
@testable import NetprobeAttribution
@testable import NetprobeReport

/// The cross-vantage join: memory bounded by its time window, rows intact through the spill.
@Suite("request join")
struct JoinTests {
    static let server = Endpoint(address: IPAddress(ipv4: 0x0A00_0002), port: 6379)

    static func timing(_ v: Int, client: Endpoint, seq: UInt32, at t: Int64, latency: Int64 = 400_000) -> RequestTiming {
        RequestTiming(vantage: v, connection: 0, client: client, server: server, command: seq % 2 == 0 ? "GET" : "SET",
                      requestSequence: seq, requestFirstByteNs: t, requestLastByteNs: t,
                      responseFirstByteNs: t + latency, responseLastByteNs: t + latency + 1_000, isError: false,
                      requestOffset: seq &- 1001)
    }

    @Test("memory: 150,000 requests over 15 s hold at most the window's worth of rows open")
    func boundedByWindow() {
        let join = RequestJoin(windowNs: 1_000_000_000)
        // 10 k requests/s on 10 connections, each seen at two vantage points 2 us apart.
        let clients = (0..<10).map { Endpoint(address: IPAddress(ipv4: 0x0A00_0001), port: UInt16(40000 + $0)) }
        for i in 0..<150_000 {
            let t = Int64(i) * 100_000
            let seq = UInt32(1001 + (i / 10) * 37)
            join.add(Self.timing(0, client: clients[i % 10], seq: seq, at: t))
            join.add(Self.timing(1, client: clients[i % 10], seq: seq, at: t + 2_000))
        }
        // The window (1 s) holds 10 k rows plus the ones answered within it.
        #expect(join.peakOpenRows <= 10_100)
        #expect(join.peakOpenRows >= 9_000)
        // The spill keeps at most its memory limit in memory; the rest went to its file.
        #expect(join.spillBytesInMemory <= 4 << 20 + 4096)
        join.finish()
        #expect(join.count == 150_000)
        #expect(join.openRowCount == 0)
        #expect(join.duplicateSightings == 0)
        // Every row comes back from the file and the memory part with both sightings intact.
        var rows = 0, bothSeen = 0, wrongHop = 0
        join.forEachRow { r in
            rows += 1
            if let a = r.times(vantage: 0), let b = r.times(vantage: 1) {
                bothSeen += 1
                if b.requestLast - a.requestLast != 2_000 || a.responseFirst - a.requestLast != 400_000 { wrongHop += 1 }
            }
            if r.offset != r.sequence &- 1001 { wrongHop += 1 }
        }
        #expect(rows == 150_000)
        #expect(bothSeen == 150_000)
        #expect(wrongHop == 0)
        #expect(join.spilledBytes == 150_000 * 64) // IPv4, two narrow sightings: 64 bytes a request
    }

    /// 20,000 requests seen at two vantage points (64 bytes a row in the spill) through `join`;
    /// returns the rows the join hands back.
    static func fill(_ join: RequestJoin, requests: Int = 20_000) -> Int {
        let clients = (0..<10).map { Endpoint(address: IPAddress(ipv4: 0x0A00_0001), port: UInt16(40000 + $0)) }
        for i in 0..<requests {
            let t = Int64(i) * 100_000
            let seq = UInt32(1001 + (i / 10) * 37)
            join.add(Self.timing(0, client: clients[i % 10], seq: seq, at: t))
            join.add(Self.timing(1, client: clients[i % 10], seq: seq, at: t + 2_000))
        }
        join.finish()
        var rows = 0
        join.forEachRow { r in if r.times(vantage: 0) != nil && r.times(vantage: 1) != nil { rows += 1 } }
        return rows
    }

    @Test("the spill's file cannot be made: rows stay in memory up to the bound, the rest are counted, not kept")
    func spillFileCannotBeMade() throws {
        let missing = "/nonexistent-netprobe-\(UInt32.random(in: 0 ... .max))/spill"
        let join = RequestJoin(windowNs: 1_000_000_000, spill: SpillBuffer(
            memoryLimit: 64 << 10, fallbackMemoryLimit: 256 << 10, checkpointEvery: 1000, directory: missing))
        let rows = Self.fill(join)
        let problem = try #require(join.spillProblem)
        #expect(problem.step == .create)
        #expect(problem.errno == ENOENT)
        #expect(problem.directory == missing)
        #expect(problem.memoryLimit == 256 << 10)
        // 256 KiB of 64-byte rows are kept and read back; the rest were counted.
        #expect(join.count == (256 << 10) / 64)
        #expect(rows == join.count)
        #expect(problem.rowsDropped == 20_000 - join.count)
        #expect(problem.bytesDropped == problem.rowsDropped * 64)
        #expect(join.spillBytesInMemory <= 256 << 10)
        // The passes cut what was kept, nothing more.
        var cut = 0
        for run in join.rowRuns(4) { join.forEachRow(in: run) { _ in cut += 1 } }
        #expect(cut == join.count)
    }

    @Test("the spill's file fills up (/dev/full): rows already written stay readable, memory stays bounded")
    func spillFileFull() throws {
        // The first 64 KiB go nowhere: /dev/full refuses every write with ENOSPC.
        let join = RequestJoin(windowNs: 1_000_000_000, spill: SpillBuffer(
            memoryLimit: 64 << 10, fallbackMemoryLimit: 128 << 10, directory: "/dev",
            makeFile: { _ in open("/dev/full", O_RDWR | O_CLOEXEC) }))
        let rows = Self.fill(join)
        let problem = try #require(join.spillProblem)
        #expect(problem.step == .write)
        #expect(problem.errno == ENOSPC)
        #expect(join.count == (128 << 10) / 64)
        #expect(rows == join.count)
        #expect(problem.rowsDropped == 20_000 - join.count)
        #expect(join.spillBytesInMemory <= 128 << 10)
    }

    @Test("a spill whose file works has no problem; the directory can be chosen")
    func spillDirectory() throws {
        let directory = NSTemporaryDirectory()
        let join = RequestJoin(windowNs: 1_000_000_000, spillDirectory: directory)
        #expect(Self.fill(join, requests: 100_000) == 100_000) // 6.4 MB: past the 4 MiB in memory
        #expect(join.spillProblem == nil)
        #expect(join.spillBytesInMemory < 4 << 20)
    }

    @Test("a sighting later than the window starts a row of its own; a repeated one is counted")
    func lateAndDuplicate() {
        let join = RequestJoin(windowNs: 1_000_000_000)
        let c = Endpoint(address: IPAddress(ipv4: 0x0A00_0001), port: 40000)
        join.add(Self.timing(0, client: c, seq: 1001, at: 0))
        join.add(Self.timing(0, client: c, seq: 1001, at: 0))
        #expect(join.duplicateSightings == 1)
        // Traffic moves the watermark 3 s on; the first row is final by then.
        join.add(Self.timing(0, client: c, seq: 5001, at: 3_000_000_000))
        join.add(Self.timing(1, client: c, seq: 1001, at: 3_000_000_000))
        join.finish()
        var sightings: [Int] = []
        join.forEachRow { sightings.append($0.sightingCount) }
        #expect(sightings == [1, 1, 1])
    }

    @Test("IPv6 endpoints, rows without a stream offset and times far from the first survive the spill")
    func ipv6RoundTrip() {
        let join = RequestJoin()
        let c = Endpoint(address: IPAddress(ipv6High: 0x2001_0db8_0000_0000, low: 0x0000_0000_0000_0001), port: 50000)
        var t = Self.timing(0, client: c, seq: 77, at: 1_000)
        t.requestOffset = nil
        join.add(t)
        // A blocking command answered 30 s later: its times do not fit the narrow form.
        var late = Self.timing(1, client: c, seq: 77, at: 2_000, latency: 30_000_000_000)
        late.requestOffset = nil
        join.add(late)
        join.finish()
        var seen: [(Endpoint, Endpoint, UInt32?, Int64?, Int64?)] = []
        join.forEachRow { r in
            seen.append((r.client, r.server, r.offset, r.times(vantage: 0)?.responseFirst, r.times(vantage: 1)?.responseLast))
        }
        #expect(seen.count == 1)
        #expect(seen.first?.0 == c)
        #expect(seen.first?.1 == Self.server)
        #expect(seen.first?.2 == nil)
        #expect(seen.first?.3 == 401_000)
        #expect(seen.first?.4 == 30_000_003_000)
    }
    @Test("one vantage point: the same rows in the same order as through the window, none held open or closed early")
    func singleVantage() {
        let clients = (0..<7).map { Endpoint(address: IPAddress(ipv4: 0x0A00_0001), port: UInt16(41000 + $0)) }
        // More requests than the open-row cap, some connections pipelining (completions out of
        // their connections' turn order), timestamps not in add order.
        var timings: [RequestTiming] = []
        for i in 0..<30_000 {
            let seq = UInt32(1001 + (i / 7) * 29)
            timings.append(Self.timing(0, client: clients[i % 7], seq: seq, at: Int64(i) * 1_000 - Int64(i % 5) * 3_000))
        }
        func rows(single: Bool) -> (rows: [String], join: RequestJoin) {
            let join = RequestJoin(windowNs: 500_000_000, maximumOpenRows: 10_000)
            join.singleVantage = single
            for t in timings { join.add(t) }
            join.finish()
            var out: [String] = []
            join.forEachRow { r in
                out.append("\(r.client) \(r.sequence) \(r.command) \(String(describing: r.times(vantage: 0))) \(r.sightingCount) \(String(describing: r.offset))")
            }
            return (out, join)
        }
        let windowed = rows(single: false)
        let single = rows(single: true)
        #expect(single.rows.count == 30_000)
        #expect(single.rows == windowed.rows)
        #expect(windowed.join.rowsClosedEarly > 0)
        #expect(single.join.rowsClosedEarly == 0 && single.join.peakOpenRows == 0)
    }

    @Test("the join thread gives the same rows, in the same order, as joining on the caller's thread")
    func threadMatchesInline() {
        let clients = (0..<7).map { Endpoint(address: IPAddress(ipv4: 0x0A00_0001), port: UInt16(41000 + $0)) }
        // Not a multiple of the batch size, with duplicates and out-of-order sightings mixed in.
        var timings: [RequestTiming] = []
        for i in 0..<(5 * JoinThread.batchSize * JoinThread.maximumQueued + 123) {
            let t = Int64(i) * 50_000
            let seq = UInt32(1001 + (i / 7) * 29)
            timings.append(Self.timing(i % 3 == 0 ? 1 : 0, client: clients[i % 7], seq: seq, at: t))
            if i % 3 != 0 { timings.append(Self.timing(1, client: clients[i % 7], seq: seq, at: t + 1_500)) }
            if i % 97 == 0 { timings.append(Self.timing(0, client: clients[i % 7], seq: seq, at: t)) }
        }
        func rows(threaded: Bool) -> (rows: [String], duplicates: Int) {
            let join = RequestJoin(windowNs: 500_000_000)
            let feeder = JoinThread(join: join, threaded: threaded)
            for t in timings { feeder.add(t) }
            feeder.finish()
            join.finish()
            var out: [String] = []
            join.forEachRow { r in
                out.append("\(r.client) \(r.sequence) \(r.command) \(String(describing: r.times(vantage: 0))) \(String(describing: r.times(vantage: 1)))")
            }
            return (out, join.duplicateSightings)
        }
        let inline = rows(threaded: false)
        let threaded = rows(threaded: true)
        #expect(inline.rows.count > 40_000)
        #expect(threaded.rows == inline.rows)
        #expect(threaded.duplicates == inline.duplicates)
        #expect(inline.duplicates > 0)
    }

    @Test("three and four vantage points, connections that end and come back: the rows of a plain reference join")
    func matchesReferenceJoin() {
        var numbers = SeededNumbers(seed: 0x9E37_79B9_7F4A_7C15)
        func next(_ n: Int) -> Int { numbers.next(n) }
        let window: Int64 = 200_000_000
        // Up to 40 client ports at a time; connections go quiet past the window (their flows are
        // freed) and come back or are replaced by new ones: flow slots and the flow cache are reused.
        var timings: [RequestTiming] = []
        var seqOf = [UInt32](repeating: 1001, count: 80)
        var t: Int64 = 0
        for i in 0..<30_000 {
            t += Int64(20_000 + next(40_000))
            if i % 5_000 == 4_999 { t += 3 * window } // everything quiet: every flow is freed
            // After each quiet spell some connections come back and some are new.
            let port = next(i % 7_000 < 3_500 ? 40 : 12) + (i / 5_000 % 3) * 15
            let client = Endpoint(address: IPAddress(ipv4: 0x0A00_0001), port: UInt16(42000 + port))
            let seq = seqOf[port]
            seqOf[port] = seq &+ UInt32(20 + next(30))
            let vantages = 1 + next(4) // seen at 1 to 4 vantage points, in a shuffled order
            var order = Array(0..<4)
            for k in stride(from: 3, to: 0, by: -1) { order.swapAt(k, next(k + 1)) }
            for (k, v) in order.prefix(vantages).enumerated() {
                timings.append(Self.timing(v, client: client, seq: seq, at: t + Int64(k) * 3_000 + Int64(next(2_000)),
                                           latency: Int64(100_000 + next(300_000))))
                if next(50) == 0 { timings.append(timings[timings.count - 1]) } // a repeated sighting
            }
        }

        // Sightings of neighbouring requests interleave, some out of order (as files from several
        // interfaces do): rows are then found and inserted in the middle of their flow.
        let jitter = timings.map { $0.requestLastByteNs + Int64(next(100_000)) }
        timings = timings.indices.sorted { (jitter[$0], $0) < (jitter[$1], $1) }.map { timings[$0] }
        let join = RequestJoin(windowNs: window)
        for x in timings { join.add(x) }
        join.finish()
        func describe(_ client: Endpoint, _ seq: UInt32, _ command: String, _ times: [Int: (Int64, Int64, Int64)]) -> String {
            "\(client) \(seq) \(command) " + times.keys.sorted().map { "\($0):\(times[$0]!)" }.joined(separator: ",")
        }
        var got: [String] = []
        join.forEachRow { r in
            var times: [Int: (Int64, Int64, Int64)] = [:]
            for v in 0..<4 { if let x = r.times(vantage: v) { times[v] = (x.requestLast, x.responseFirst, x.responseLast) } }
            #expect(times.count == r.sightingCount)
            got.append(describe(r.client, r.sequence, join.command(r.command), times))
        }

        // The reference: every open row in a dictionary and a list in order of first sighting;
        // the oldest rows leave once the newest reply is a window past them.
        struct Row { var client: Endpoint; var seq: UInt32; var command: String; var first: Int64; var times: [Int: (Int64, Int64, Int64)] }
        var rows: [Row] = []
        var start = 0
        var openByKey: [String: Int] = [:]
        var expected: [String] = []
        var duplicates = 0
        var watermark = Int64.min
        for x in timings {
            let key = "\(x.client) \(x.requestSequence)"
            if let k = openByKey[key] {
                if rows[k].times[x.vantage] != nil { duplicates += 1 } else {
                    rows[k].times[x.vantage] = (x.requestLastByteNs, x.responseFirstByteNs, x.responseLastByteNs)
                }
            } else {
                openByKey[key] = rows.count
                rows.append(Row(client: x.client, seq: x.requestSequence, command: x.command, first: x.requestLastByteNs,
                                times: [x.vantage: (x.requestLastByteNs, x.responseFirstByteNs, x.responseLastByteNs)]))
            }
            if x.responseLastByteNs > watermark {
                watermark = x.responseLastByteNs
                while start < rows.count && rows[start].first < watermark - window {
                    let r = rows[start]
                    expected.append(describe(r.client, r.seq, r.command, r.times))
                    openByKey["\(r.client) \(r.seq)"] = nil
                    start += 1
                }
            }
        }
        for r in rows[start...] { expected.append(describe(r.client, r.seq, r.command, r.times)) }

        #expect(expected.count > 25_000)
        #expect(got.count == expected.count)
        #expect(got == expected)
        #expect(join.duplicateSightings == duplicates)
        #expect(duplicates > 100)
    }

    @Test("above the open-row cap rows close before their window ends: memory stays at the cap, and the report says so")
    func openRowCap() {
        let join = RequestJoin(windowNs: 1_000_000_000, maximumOpenRows: 1_000)
        let c = Endpoint(address: IPAddress(ipv4: 0x0A00_0001), port: 40000)
        // 20,000 requests 10 us apart (100,000 a second: 100,000 rows in a 1 s window), each seen
        // at vantage 1 right after vantage 0; request 0's second sighting comes 5,000 requests late.
        for i in 0..<20_000 {
            let seq = UInt32(1001 + i * 20)
            let t = Int64(i) * 10_000
            join.add(Self.timing(0, client: c, seq: seq, at: t))
            if i > 0 { join.add(Self.timing(1, client: c, seq: seq, at: t + 2_000)) }
            if i == 5_000 { join.add(Self.timing(1, client: c, seq: 1001, at: 2_000)) }
        }
        #expect(join.peakOpenRows <= 1_000)
        #expect(join.rowsClosedEarly > 18_000)
        join.finish()
        var both = 0, single = 0
        join.forEachRow { r in if r.sightingCount == 2 { both += 1 } else { single += 1 } }
        #expect(both == 19_999)
        #expect(single == 2) // request 0 at vantage 0, and its late sighting at vantage 1
        let (_, _, details) = AttributionText.describe(Attribution.compute(join, inputs: AttributionInputs(vantages: [("virbr0", .bridge), ("vnet0", .tap)])))
        #expect(details.notes.contains { $0.contains("too high to hold") && $0.contains("at most 1000") })
    }
}
