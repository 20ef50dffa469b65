import Synchronization

/// A memtier-style Redis load generator: `connections` TCP connections to one server, each
/// keeping `pipeline` SET/GET requests in flight, driven by one thread.
///
/// Every request is stamped on CLOCK_REALTIME (the clock of packet captures) when it is sent and
/// when its reply is complete, and can be streamed to `onRequest` with its connection and stream
/// offsets, so that a capture can tell the client's share of a request's time from the network's.
///
/// ```swift
/// var configuration = LoadConfiguration(target: LoadTarget(host: "127.0.0.1", port: 6379))
/// configuration.limit = .duration(.seconds(10))
/// let result = try LoadGenerator(configuration: configuration).run()
/// print(result.requestsPerSecond, result.totals.latencyUs.p50 ?? 0)
/// ```
public final class LoadGenerator: Sendable {
    public let configuration: LoadConfiguration
    private let stopRequested = Atomic<Bool>(false)

    /// Checks the configuration; throws `LoadError.invalidConfiguration` listing every problem.
    public init(configuration: LoadConfiguration) throws(LoadError) {
        let problems = configuration.problems()
        guard problems.isEmpty else { throw .invalidConfiguration(problems) }
        self.configuration = configuration
    }

    /// Asks a running (or about to run) `run` to stop: no new requests are sent, replies in flight
    /// are waited for up to the drain timeout, and `run` returns its result. Safe from any thread
    /// (for example a SIGINT handler's dispatch queue).
    public func stop() {
        stopRequested.store(true, ordering: .relaxed)
    }

    /// Connects every connection, then sends load until the limit, `stop()`, or every connection
    /// failed, and returns the summary. Runs on the calling thread.
    ///
    /// - Parameters:
    ///   - onConnected: the connections, once all are open and before the first request.
    ///   - onRequest: every answered request, in reply order, on the calling thread. Keep it cheap:
    ///     it runs inside the measurement loop.
    ///   - progress: about twice a second.
    /// - Throws: `LoadError.connect` when a connection cannot be opened (refused, unreachable,
    ///   timed out: the message names the target), `.resolve`, `.system`.
    public func run(onConnected: ([ClientConnection]) -> Void = { _ in },
                    onRequest: ((ClientRequestRecord) -> Void)? = nil,
                    progress: ((LoadProgress) -> Void)? = nil) throws(LoadError) -> LoadResult {
        defer { stopRequested.store(false, ordering: .relaxed) }
        let encoder = RequestEncoder(keyPrefix: configuration.keyPrefix, keySpace: configuration.keySpace,
                                     dataSize: configuration.dataSize)
        let connections = try connect(maximumRequestLength: encoder.maximumLength)
        onConnected(connections.map(\.info))
        let loop = LoadRun(configuration: configuration, connections: connections, encoder: encoder,
                               onRequest: onRequest, progress: progress,
                               isStopRequested: { [self] in stopRequested.load(ordering: .relaxed) })
        return try loop.run()
    }

    /// Opens every connection. The first tries each address the target resolves to; the others
    /// use the address that worked, so the whole run talks to one server address.
    private func connect(maximumRequestLength: Int) throws(LoadError) -> [LoadConnection] {
        let target = configuration.target
        let timeout = configuration.connectTimeout.nanoseconds
        var candidates = try SocketAddress.resolve(target)
        var connections: [LoadConnection] = []
        connections.reserveCapacity(configuration.connections)
        for index in 0..<configuration.connections {
            var lastError: LoadError?
            var opened: TCPSocket?
            for address in candidates {
                do {
                    opened = try TCPSocket(connectingTo: address, target: target, timeoutNs: timeout)
                    candidates = [address]
                    break
                } catch {
                    lastError = error
                }
            }
            guard let socket = opened else { throw lastError! }
            connections.append(LoadConnection(
                socket: socket, index: index, pipeline: configuration.pipeline,
                maximumRequestLength: maximumRequestLength, connectedNs: LoadClock.realtimeNs()))
        }
        return connections
    }
}
