#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetprobeCore
import NetprobeSystem

/// One run's event loop: a single thread, poll(2) over every connection.
///
/// A connection is refilled as soon as replies free its pipeline slots: the new requests are
/// written in the same turn of the loop that read the replies (one recv, one send, no extra
/// poll round trip). POLLOUT is watched only while the kernel's send buffer is full.
/// With a rate, request n is due `n / rate` seconds after the start; the loop wakes at the
/// millisecond a request falls due (poll's resolution), so it leaves at most 1 ms late.
/// Nothing is allocated per request: requests are encoded into each connection's buffer, replies
/// are read into one shared buffer and counted by the RESP decoder.
final class LoadRun {
    private let configuration: LoadConfiguration
    private let connections: [LoadConnection]
    private let encoder: RequestEncoder
    private var keys: KeyGenerator
    private let poller: Poller
    private let onRequest: ((ClientRequestRecord) -> Void)?
    private let progress: ((LoadProgress) -> Void)?
    private let isStopRequested: () -> Bool

    private let readBuffer: UnsafeMutableRawPointer
    private let readCapacity = 1 << 16

    /// Requests sent (or queued) so far and the most the run may send.
    private var issued = 0
    private let requestLimit: Int
    private var inFlight = 0
    private var answered = 0
    private var unanswered = 0
    private var openConnections: Int
    private var connectionErrors = 0
    private var errorReplies = [0, 0, 0]

    private var setLatency = LatencyRecorder()
    private var getLatency = LatencyRecorder()
    private var allLatency = LatencyRecorder()

    private var stopReason: LoadResult.StopReason?
    private var drainDeadline: Int64 = .max
    private var startMonotonic: Int64 = 0
    private var startRealtime: Int64 = 0
    private var lastReplyRealtime: Int64 = 0
    /// Nanoseconds between paced requests; 0 runs closed-loop.
    private let pacingIntervalNs: Double
    /// Monotonic time the next paced request is due, while one is waiting for it.
    private var nextDue = Int64.max
    private var rotation = 0

    init(configuration: LoadConfiguration, connections: [LoadConnection], encoder: RequestEncoder,
         onRequest: ((ClientRequestRecord) -> Void)?, progress: ((LoadProgress) -> Void)?,
         isStopRequested: @escaping () -> Bool) {
        self.configuration = configuration
        self.connections = connections
        self.encoder = encoder
        self.onRequest = onRequest
        self.progress = progress
        self.isStopRequested = isStopRequested
        keys = KeyGenerator(seed: configuration.seed, keySpace: configuration.keySpace)
        openConnections = connections.count
        if case let .requests(n) = configuration.limit { requestLimit = n } else { requestLimit = .max }
        poller = Poller(descriptors: connections.map(\.fd))
        pacingIntervalNs = configuration.rate.map { 1e9 / $0 } ?? 0
        readBuffer = UnsafeMutableRawPointer.allocate(byteCount: readCapacity, alignment: 16)
    }

    deinit { readBuffer.deallocate() }

    func run() throws(LoadError) -> LoadResult {
        startMonotonic = LoadClock.monotonicNs()
        startRealtime = LoadClock.realtimeNs()
        var deadline = Int64.max
        if case let .duration(d) = configuration.limit { deadline = startMonotonic + d.nanoseconds }
        let progressInterval: Int64 = 500_000_000
        var nextProgress = progress == nil ? Int64.max : startMonotonic + progressInterval
        var lastProgress = (time: startMonotonic, answered: 0)

        for c in connections { fill(c) }
        while true {
            let now = LoadClock.monotonicNs()
            if stopReason == nil {
                if isStopRequested() {
                    beginStopping(.interrupted, now: now)
                } else if now >= deadline {
                    beginStopping(.durationReached, now: now)
                }
            }
            if inFlight == 0 && (stopReason != nil || issued >= requestLimit) { break }
            if openConnections == 0 || now >= drainDeadline { break }
            if now >= nextProgress {
                report(now: now, since: lastProgress, deadline: deadline)
                lastProgress = (now, answered)
                nextProgress = now + progressInterval
            }

            if now >= nextDue { pacedRequestsDue() }

            var waitNs = min(Int64(50_000_000), nextProgress - now, drainDeadline - now)
            if stopReason == nil { waitNs = min(waitNs, deadline - now, nextDue - now) }
            let timeoutMs = Int32(clamping: max(0, (waitNs + 999_999) / 1_000_000))
            var ready: Int
            do {
                ready = try poller.wait(timeoutMs: timeoutMs)
            } catch {
                throw .system(error)
            }
            var i = 0
            while ready > 0 && i < connections.count {
                let flags = poller.events(i)
                if flags != 0 {
                    ready -= 1
                    let c = connections[i]
                    if flags & (Poller.readable | Poller.failed) != 0 { readReplies(c) }
                    if flags & Poller.writable != 0 && c.failure == nil { flush(c) }
                }
                i += 1
            }
        }
        if stopReason == nil {
            stopReason = openConnections == 0 && (issued < requestLimit || inFlight > 0) ? .connectionsFailed : .requestsDone
        }
        unanswered += inFlight
        return result()
    }

    private func beginStopping(_ reason: LoadResult.StopReason, now: Int64) {
        stopReason = reason
        drainDeadline = now + configuration.drainTimeout.nanoseconds
    }

    // MARK: Sending

    /// Queues requests while the connection has room (and pacing allows), then sends them.
    @inline(__always)
    private func fill(_ c: LoadConnection) {
        guard stopReason == nil, c.failure == nil else { return }
        while c.hasRoom && issued < requestLimit {
            if pacingIntervalNs > 0 {
                let due = startMonotonic + Int64(Double(issued) * pacingIntervalNs)
                if due > LoadClock.monotonicNs() {
                    nextDue = due
                    break
                }
            }
            c.enqueue(configuration.ratio.command(forRequest: issued), key: keys.next(), encoder: encoder)
            issued += 1
            inFlight += 1
        }
        if c.hasUnsentBytes && !c.watchingWritable { flush(c) }
    }

    /// Sends what is queued; watches EPOLLOUT while the kernel cannot take it all.
    @inline(__always)
    private func flush(_ c: LoadConnection) {
        let code = c.sendQueued()
        if code != 0 {
            fail(c, "send failed: \(Errno(rawValue: code).message)")
            return
        }
        let blocked = c.hasUnsentBytes
        if blocked != c.watchingWritable {
            poller.watchWritable(c.info.index, blocked)
            c.watchingWritable = blocked
        }
    }

    /// Paced requests fell due: connections with free slots take them, the least recently
    /// served first (a rotating start), until the next one is not yet due.
    private func pacedRequestsDue() {
        nextDue = .max
        let n = connections.count
        for k in 0..<n {
            let c = connections[(rotation + k) % n]
            if c.hasRoom { fill(c) }
            if nextDue != .max { break }
        }
        rotation = (rotation + 1) % n
    }

    // MARK: Receiving

    /// One recv(2); every reply completed by these bytes answers the oldest in-flight request.
    @inline(__always)
    private func readReplies(_ c: LoadConnection) {
        let n = recv(c.fd, readBuffer, readCapacity, 0)
        if n <= 0 {
            if n == 0 {
                fail(c, "the server closed the connection")
            } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                fail(c, "receive failed: \(Errno(rawValue: errno).message)")
            }
            return
        }
        let receivedNs = LoadClock.realtimeNs()
        let chunkOffset = c.bytesReceived
        c.bytesReceived += UInt64(n)
        var unexpected = false
        let chunk = StreamChunk.data(UnsafeRawBufferPointer(start: readBuffer, count: n),
                                     sequence: UInt32(truncatingIfNeeded: chunkOffset), timestampNs: receivedNs)
        let valid = c.decoder.feed(chunk) { reply in
            if !complete(c, reply, chunkOffset: chunkOffset) { unexpected = true }
        }
        if !valid {
            fail(c, "the server's replies are not valid RESP: \(c.decoder.failure.map { "\($0)" } ?? "?")")
        } else if unexpected {
            fail(c, "a reply arrived for no request (the server may have refused the client)")
        } else {
            fill(c)
        }
    }

    /// Pairs a reply with the oldest request of its connection and records the latency.
    @inline(__always)
    private func complete(_ c: LoadConnection, _ reply: RESPMessage, chunkOffset: UInt64) -> Bool {
        guard let request = c.completeOldest() else { return false }
        inFlight -= 1
        answered += 1
        let latency = reply.lastByteNs - request.sendNs
        switch request.command {
        case .set: setLatency.record(latency)
        case .get: getLatency.record(latency)
        }
        allLatency.record(latency)
        if reply.isError { errorReplies[Int(request.command.rawValue)] += 1 }
        lastReplyRealtime = reply.lastByteNs
        if let onRequest {
            // The decoder tracks 32-bit sequence numbers; widen the reply's start back to 64 bits.
            let back = Int64(Int32(bitPattern: reply.sequence &- UInt32(truncatingIfNeeded: chunkOffset)))
            onRequest(ClientRequestRecord(
                connection: c.info.index, client: c.info.client, server: c.info.server,
                command: request.command, isErrorReply: reply.isError, requestOffset: request.offset,
                requestLength: request.length, replyOffset: UInt64(Int64(chunkOffset) + back),
                sendNs: request.sendNs, receiveNs: reply.lastByteNs))
        }
        return true
    }

    private func fail(_ c: LoadConnection, _ reason: String) {
        guard c.failure == nil else { return }
        c.failure = reason
        connectionErrors += 1
        openConnections -= 1
        let lost = c.abandonInFlight()
        inFlight -= lost
        unanswered += lost
        poller.remove(c.info.index)
    }

    // MARK: Reporting

    private func report(now: Int64, since last: (time: Int64, answered: Int), deadline: Int64) {
        guard let progress else { return }
        let elapsed = Double(now - startMonotonic) / 1e9
        var fraction: Double
        if requestLimit != .max {
            fraction = Double(answered) / Double(requestLimit)
        } else {
            fraction = Double(now - startMonotonic) / Double(max(deadline - startMonotonic, 1))
        }
        fraction = min(max(fraction, 0), 1)
        progress(LoadProgress(
            elapsedSeconds: elapsed, requests: answered, fraction: fraction,
            currentRequestsPerSecond: Double(answered - last.answered) / max(Double(now - last.time) / 1e9, 1e-9),
            averageRequestsPerSecond: Double(answered) / max(elapsed, 1e-9),
            errorReplies: errorReplies.reduce(0, +), connectionErrors: connectionErrors,
            p50Us: allLatency.valueNs(atPercentile: 50).map { Double($0) / 1000 }))
    }

    private func result() -> LoadResult {
        let end = lastReplyRealtime > 0 ? lastReplyRealtime : LoadClock.realtimeNs()
        let elapsed = max(Double(end - startRealtime) / 1e9, 1e-9)
        func row(_ name: String, _ h: LatencyRecorder, errors: Int) -> LoadCommandSummary {
            LoadCommandSummary(command: name, requests: h.count, requestsPerSecond: Double(h.count) / elapsed,
                               errorReplies: errors, latencyUs: LoadLatency(h))
        }
        var commands: [LoadCommandSummary] = []
        let ratio = configuration.ratio
        if ratio.set > 0 { commands.append(row("SET", setLatency, errors: errorReplies[1])) }
        if ratio.get > 0 { commands.append(row("GET", getLatency, errors: errorReplies[2])) }
        let c = configuration
        var settings = LoadResult.Settings(
            target: c.target.description, connections: c.connections, pipeline: c.pipeline, requests: nil,
            durationSeconds: nil, ratio: c.ratio.description, dataSize: c.dataSize, keySpace: c.keySpace,
            keyPrefix: c.keyPrefix, rate: c.rate)
        switch c.limit {
        case let .requests(n): settings.requests = n
        case let .duration(d): settings.durationSeconds = Double(d.nanoseconds) / 1e9
        }
        return LoadResult(
            settings: settings,
            connections: connections.map {
                .init(index: $0.info.index, client: $0.info.client.description,
                      server: $0.info.server.description, failure: $0.failure)
            },
            startNs: startRealtime, endNs: end, elapsedSeconds: elapsed, stopReason: stopReason ?? .requestsDone,
            requests: answered, requestsPerSecond: Double(answered) / elapsed, unanswered: unanswered,
            errorReplies: errorReplies.reduce(0, +), connectionErrors: connectionErrors,
            bytesSent: connections.reduce(0) { $0 + $1.bytesSent },
            bytesReceived: connections.reduce(0) { $0 + $1.bytesReceived },
            commands: commands, totals: row("TOTAL", allLatency, errors: errorReplies.reduce(0, +)))
    }
}
