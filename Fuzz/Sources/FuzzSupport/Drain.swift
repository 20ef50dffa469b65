import NetprobeCore

/// Reads `reader` to its end or its first error and touches every field of every packet, interface,
/// warning, section and custom block (the first and last byte of each buffer, so AddressSanitizer
/// checks the whole range). Checks the properties `PacketRecord` and `TraceInterface` promise.
public func drain(_ reader: TraceReader) {
    var acc = 0
    var packets = 0
    while true {
        let record: PacketRecord?
        do {
            record = try reader.next()
        } catch let error as TraceError {
            acc &+= Int(truncatingIfNeeded: error.offset) &+ error.message.utf8.count
            break
        } catch {
            fatalError("TraceReader threw a non-TraceError: \(error)")
        }
        guard let p = record else { break }
        packets += 1
        check(p.interface >= 0 && p.interface < reader.interfaces.count,
              "packet \(packets) names interface \(p.interface) of \(reader.interfaces.count)")
        check(p.timestampNs >= 0 && p.timestampNs <= 1 << 62, "packet \(packets) has timestamp \(p.timestampNs) ns")
        check(p.originalLength >= p.data.count,
              "packet \(packets): original length \(p.originalLength) < captured \(p.data.count)")
        acc &+= p.interface &+ Int(truncatingIfNeeded: p.timestampNs) &+ p.originalLength
        acc &+= Int(p.direction.rawValue) &+ Int(truncatingIfNeeded: p.fileOffset)
        if let last = p.data.indices.last { acc &+= Int(p.data[0]) &+ Int(p.data[last]) }
    }
    for i in reader.interfaces {
        acc &+= i.name.utf8.count &+ (i.nameRecorded ? 1 : 0) &+ Int(i.linkType.rawValue) &+ Int(i.snapLength)
        acc &+= (i.description?.utf8.count ?? 0) &+ (i.filter?.utf8.count ?? 0) &+ (i.os?.utf8.count ?? 0)
        for counter in [i.received, i.interfaceDropped, i.osDropped, i.filterAccepted, i.userDelivered] {
            acc &+= Int(truncatingIfNeeded: counter ?? 0)
        }
        acc &+= Int(truncatingIfNeeded: i.dropped ?? 0) // saturates: regressions/trace-isb-drop-counters-overflow
    }
    for w in reader.warnings { acc &+= Int(truncatingIfNeeded: w.offset) &+ w.message.utf8.count }
    for s in reader.sections { acc &+= s.count &+ s.values.reduce(0) { $0 &+ $1.utf8.count } }
    for c in reader.customBlocks { acc &+= Int(c.pen) &+ c.payload.count &+ Int(c.payload.last ?? 0) }
    sink &+= acc &+ packets
}
