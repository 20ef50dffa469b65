import NetprobeModel
/// The analyser's table of open connections: `ConnectionKey` -> `Connection`, looked up once per
/// packet.
///
/// Open addressing with linear probing in a power-of-two array, at most half full; deletion
/// shifts the following entries back, so there are no tombstones. The hash is `FlowHash` with a
/// random key of this table's: every bit of the key (both addresses whole, ports, vantage) goes
/// in with it, so a trace cannot be crafted to make connections collide without knowing it.
/// (Swift's Dictionary hashed every lookup through SipHash, ~10 % of the analysis's time.)
struct FlowTable {
    typealias Key = RESPDissector.ConnectionKey
    /// Keys and connections in parallel arrays: probing reads only keys (plain values), so it
    /// retains nothing; a slot is in use when its connection is not nil.
    private var keys: [Key]
    private var connections: [Connection?]
    private var mask: Int
    private(set) var count = 0
    private let hash = FlowHash()

    init(capacity: Int = 256) {
        var size = 16
        while size < capacity * 2 { size *= 2 }
        let none = Key(vantage: -1, client: Endpoint(address: IPAddress(ipv4: 0), port: 0),
                       server: Endpoint(address: IPAddress(ipv4: 0), port: 0))
        keys = Array(repeating: none, count: size)
        connections = Array(repeating: nil, count: size)
        mask = size - 1
    }

    @inline(__always)
    private func home(_ k: Key) -> Int {
        Int(truncatingIfNeeded: hash(k.client, k.server, UInt64(truncatingIfNeeded: k.vantage))) & mask
    }

    /// The slot holding `k`, or the empty slot where it would go.
    @inline(__always)
    private func probe(_ k: Key) -> (slot: Int, found: Bool) {
        var i = home(k)
        while connections[i] != nil {
            if keys[i] == k { return (i, true) }
            i = (i + 1) & mask
        }
        return (i, false)
    }

    /// The connection of `k` without a retain: valid while it stays in the table.
    @inline(__always)
    func unretained(_ k: Key) -> Unmanaged<Connection>? {
        let (i, found) = probe(k)
        // Read in place: no retain (the parallel array of unretained references this once kept
        // made no difference in swift_retain calls per packet).
        return found ? connections.withUnsafeBufferPointer { $0[i].map { Unmanaged.passUnretained($0) } } : nil
    }

    subscript(k: Key) -> Connection? {
        get {
            let (i, found) = probe(k)
            return found ? connections[i] : nil
        }
        set {
            let (i, found) = probe(k)
            if let c = newValue {
                keys[i] = k
                connections[i] = c
                if !found {
                    count += 1
                    if count * 2 > keys.count { grow() }
                }
            } else if found {
                remove(at: i)
            }
        }
    }

    /// Empties slot `i` and moves back the entries of its probe run that would no longer be found.
    private mutating func remove(at slot: Int) {
        var hole = slot
        connections[hole] = nil
        count -= 1
        var i = (hole + 1) & mask
        while connections[i] != nil {
            let h = home(keys[i])
            // The entry may fill the hole unless its home lies in the cyclic range (hole, i].
            let stays = hole <= i ? (h > hole && h <= i) : (h > hole || h <= i)
            if !stays {
                keys[hole] = keys[i]
                connections[hole] = connections[i]
                connections[i] = nil
                hole = i
            }
            i = (i + 1) & mask
        }
    }

    private mutating func grow() {
        let oldKeys = keys, oldConnections = connections
        keys = Array(repeating: oldKeys[0], count: oldKeys.count * 2)
        connections = Array(repeating: nil, count: oldKeys.count * 2)
        mask = keys.count - 1
        for (k, c) in zip(oldKeys, oldConnections) {
            guard let c else { continue }
            var i = home(k)
            while connections[i] != nil { i = (i + 1) & mask }
            keys[i] = k
            connections[i] = c
        }
    }

    /// Every entry (a copy: the table may be changed while the result is walked).
    var entries: [(key: Key, connection: Connection)] {
        zip(keys, connections).compactMap { k, c in c.map { (k, $0) } }
    }

    mutating func removeAll() {
        for i in connections.indices { connections[i] = nil }
        count = 0
    }
}
