import NetprobeModel
import NetprobeTrace

/// The load generator's records, per connection in offset order: 20 bytes a request (a
/// dictionary of every request took ~120 and a cache miss per lookup; the attribution looks each
/// request up in two or three passes). A record added twice for the same key: the last one counts.
public struct ClientRecords: Sendable {
    private struct Connection: Hashable, Sendable {
        var client: Endpoint
        var server: Endpoint
        /// One keyed word of both endpoints whole (`FlowHash`), instead of the six of their fields.
        func hash(into hasher: inout Hasher) { hasher.combine(FlowHash.process(client, server)) }
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
        append(table(Connection(client: key.client, server: key.server)), offset: key.offset, sendNs: sendNs, receiveNs: receiveNs)
    }

    /// Adds the records of one block in their binary form (`ClientRecordFormat`: the payload of a
    /// client-records custom block after the PEN), straight from its bytes. Returns false, adding
    /// nothing, when `block` is not such a block (or of a version this netprobe does not read).
    @discardableResult
    public mutating func add(block: UnsafeRawBufferPointer) -> Bool {
        // The block's connection numbers -> tables, as the block declares them.
        var tableOf: [Int] = []
        guard let reading = ClientRecordFormat.readBlock(block, connection: { c in
            let key = Connection(client: Endpoint(address: IPAddress(c.client), port: c.clientPort),
                                 server: Endpoint(address: IPAddress(c.server), port: c.serverPort))
            let k = Int(c.index)
            if k >= tableOf.count { tableOf.append(contentsOf: repeatElement(-1, count: k + 1 - tableOf.count)) }
            tableOf[k] = self.table(key)
        }, request: { r in
            // Offsets are matched in 32 bits, as TCP sequence numbers are.
            self.append(tableOf[Int(r.connection)], offset: UInt32(truncatingIfNeeded: r.requestOffset),
                           sendNs: r.sendNs, receiveNs: r.receiveNs)
        }) else { return false }
        skippedEntries += reading.undeclaredRequests + (reading.trailingBytes > 0 ? 1 : 0)
        return true
    }

    /// Entries of binary blocks that could not be taken: requests of a connection their block did
    /// not declare, and damaged block ends.
    public private(set) var skippedEntries = 0

    /// The table of connection `c`, made when new.
    private mutating func table(_ c: Connection) -> Int {
        if let known = index[c] { return known }
        let t = tables.count
        index[c] = t
        tables.append(Table())
        return t
    }

    private mutating func append(_ t: Int, offset: UInt32, sendNs: Int64, receiveNs: Int64) {
        if let last = tables[t].offsets.last, offset <= last { tables[t].sorted = false }
        tables[t].offsets.append(offset)
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
        hasher.combine(FlowHash.process(client, server, UInt64(offset)))
    }
}
