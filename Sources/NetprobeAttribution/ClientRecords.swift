import NetprobeModel
import NetprobeTrace
/// The load generator's records, per connection in offset order: 20 bytes a request (a
/// dictionary of every request took ~120 and a cache miss per lookup; the attribution looks each
/// request up in two or three passes). A record added twice for the same key: the last one counts.
public struct ClientRecords: Sendable {
    private struct Connection: Hashable, Sendable {
        var client: Endpoint
        var server: Endpoint
        func hash(into hasher: inout Hasher) { hasher.combine(client.fingerprint &* 0x9E37_79B9_7F4A_7C15 ^ server.fingerprint) }
    }
    private struct Table: Sendable {
        var offsets: [UInt32] = []
        var send: [Int64] = []
        var receive: [Int64] = []
        var sorted = true
    }
    private var index: [Connection: Int] = [:]
    private var tables: [Table] = []
    public private(set) var count = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    /// Adds the records of one `client-requests` block.
    public mutating func add(_ c: ClientRequests) {
        guard let client = Endpoint(parsing: c.client), let server = Endpoint(parsing: c.server) else { return }
        for i in c.requestOffsets.indices where i < c.sendNs.count && i < c.receiveNs.count {
            add(ClientKey(client: client, server: server, offset: UInt32(truncatingIfNeeded: c.requestOffsets[i])),
                sendNs: c.sendNs[i], receiveNs: c.receiveNs[i])
        }
    }

    public mutating func add(_ key: ClientKey, sendNs: Int64, receiveNs: Int64) {
        let c = Connection(client: key.client, server: key.server)
        let t: Int
        if let known = index[c] {
            t = known
        } else {
            t = tables.count
            index[c] = t
            tables.append(Table())
        }
        if let last = tables[t].offsets.last, key.offset <= last { tables[t].sorted = false }
        tables[t].offsets.append(key.offset)
        tables[t].send.append(sendNs)
        tables[t].receive.append(receiveNs)
        count += 1
    }

    /// Sorts what came out of order (the load generator writes in order; a damaged or merged file
    /// may not) and keeps the last of equal offsets. Lookups need it first.
    public mutating func prepare() {
        for t in tables.indices where !tables[t].sorted {
            let table = tables[t]
            // Stable by offset, then the last of each offset wins (as the dictionary's did).
            let order = table.offsets.indices.sorted { (table.offsets[$0], $0) < (table.offsets[$1], $1) }
            var out = Table()
            for k in order {
                if let last = out.offsets.last, last == table.offsets[k] {
                    out.send[out.send.count - 1] = table.send[k]
                    out.receive[out.receive.count - 1] = table.receive[k]
                } else {
                    out.offsets.append(table.offsets[k])
                    out.send.append(table.send[k])
                    out.receive.append(table.receive[k])
                }
            }
            tables[t] = out
        }
    }

    /// The send and receive times of the request at `key`; `prepare()` must have run.
    public func lookup(_ key: ClientKey) -> (sendNs: Int64, receiveNs: Int64)? {
        guard let t = index[Connection(client: key.client, server: key.server)] else { return nil }
        let offsets = tables[t].offsets
        var lo = 0, hi = offsets.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if offsets[mid] < key.offset { lo = mid + 1 } else { hi = mid }
        }
        guard lo < offsets.count, offsets[lo] == key.offset else { return nil }
        return (tables[t].send[lo], tables[t].receive[lo])
    }
}

/// A request as the load generator knows it: its connection and where it starts in the stream.
public struct ClientKey: Hashable, Sendable {
    public var client: Endpoint
    public var server: Endpoint
    public var offset: UInt32

    public func hash(into hasher: inout Hasher) {
        hasher.combine(client.fingerprint &* 0x9E37_79B9_7F4A_7C15 ^ server.fingerprint ^ UInt64(offset))
    }
}
