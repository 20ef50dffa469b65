/// Identifies one request on the wire: the same at every vantage point on its path (no NAT).
public struct RequestKey: Hashable, Sendable {
    public var client: Endpoint
    public var server: Endpoint
    public var sequence: UInt32
}

/// Every paired request, with its times at each vantage point, joined on `RequestKey`.
///
/// Compact: one dictionary entry per request and three integers per request and vantage point.
public final class RequestJoin {
    private(set) var index: [RequestKey: Int] = [:]
    private(set) var keys: [RequestKey] = []
    private(set) var commands: [UInt16] = []
    /// Per vantage point: (requestLast, responseFirst, responseLast) per request row.
    private var times: [[Int64]] = []
    private(set) var offsets: [UInt32?] = []
    private(set) var commandNames: [String] = []
    private var commandIds: [String: UInt16] = [:]
    static let absent = Int64.min

    public init() {}

    public var count: Int { keys.count }
    public var vantageCount: Int { times.count }

    /// Adds one vantage point's view of a request.
    public func add(_ t: RequestTiming) {
        while times.count <= t.vantage { times.append([Int64](repeating: Self.absent, count: 3 * keys.count)) }
        let key = RequestKey(client: t.client, server: t.server, sequence: t.requestSequence)
        let row: Int
        if let existing = index[key] {
            row = existing
        } else {
            row = keys.count
            index[key] = row
            keys.append(key)
            commands.append(commandId(t.command))
            offsets.append(t.requestOffset)
            for v in times.indices { times[v].append(contentsOf: repeatElement(Self.absent, count: 3)) }
        }
        times[t.vantage][3 * row] = t.requestLastByteNs
        times[t.vantage][3 * row + 1] = t.responseFirstByteNs
        times[t.vantage][3 * row + 2] = t.responseLastByteNs
        if offsets[row] == nil { offsets[row] = t.requestOffset }
    }

    private func commandId(_ name: String) -> UInt16 {
        if let id = commandIds[name] { return id }
        let id = UInt16(truncatingIfNeeded: commandNames.count)
        commandNames.append(name)
        commandIds[name] = id
        return id
    }

    /// The request's times at vantage `v`, or nil when it was not paired there.
    func times(row: Int, vantage v: Int) -> (requestLast: Int64, responseFirst: Int64, responseLast: Int64)? {
        guard v < times.count else { return nil }
        let a = times[v][3 * row]
        guard a != Self.absent else { return nil }
        return (a, times[v][3 * row + 1], times[v][3 * row + 2])
    }

    func command(row: Int) -> String { commandNames[Int(commands[row])] }
}
