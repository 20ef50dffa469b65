import NetprobeCore

/// Turns one tracepoint's raw record (perf's PERF_SAMPLE_RAW bytes) into a `KernelEvent`, with
/// the field offsets of its tracefs format: nothing here is hard-coded but the field names.
///
/// Validates once at construction (the fields it needs exist with the sizes it reads); `decode`
/// then checks only that the record is long enough, and allocates nothing for a known device name.
struct TracepointRecordDecoder {
    let kind: KernelEventKind
    let id: UInt16
    /// The skb's address (nil for the scheduler's events, which are about threads).
    private let skbaddr: TracepointField?
    /// sched_switch: prev_pid, prev_state, next_pid; sched_wakeup: pid (as `target`).
    private let prevPid: TracepointField?
    private let prevState: TracepointField?
    private let target: TracepointField?
    private let name: TracepointField?
    private let length: TracepointField?
    private let ifindex: TracepointField?
    private let returnCode: TracepointField?
    private let reason: TracepointField?
    private let reasonNames: [UInt64: String]
    /// The record's minimum length: the end of the last fixed field read.
    private let minimumLength: Int
    /// Device names known in advance, as bytes, with the String to hand out (no allocation).
    private let knownNames: [(bytes: [UInt8], name: String)]

    init(kind: KernelEventKind, format: TracepointFormat, knownNames: [String]) throws(KernelEventRecorderError) {
        func need(_ field: String, sizes: Set<Int>) throws(KernelEventRecorderError) -> TracepointField {
            guard let f = format[field: field] else {
                throw .badFormat(kind.description, "the format has no field \(field)")
            }
            guard sizes.contains(f.size) else {
                throw .badFormat(kind.description, "field \(field) is \(f.size) bytes, expected \(sizes.sorted().map(String.init).joined(separator: " or "))")
            }
            return f
        }
        self.kind = kind
        guard let id = UInt16(exactly: format.id) else {
            throw .badFormat(kind.description, "id \(format.id) does not fit common_type (16 bits)")
        }
        self.id = id
        let common = try need("common_type", sizes: [2])
        guard common.offset == 0 else { throw .badFormat(kind.description, "common_type is not at offset 0") }
        skbaddr = kind.isScheduler ? nil : try need("skbaddr", sizes: [8])
        switch kind {
        case .schedSwitch:
            prevPid = try need("prev_pid", sizes: [4])
            // A long on 64-bit kernels; the states are in its low bits (read little-endian).
            prevState = try need("prev_state", sizes: [4, 8])
            target = try need("next_pid", sizes: [4])
        case .schedWakeup:
            prevPid = nil
            prevState = nil
            target = try need("pid", sizes: [4])
        default:
            prevPid = nil
            prevState = nil
            target = nil
        }
        if kind.namesDevice {
            let n = try need("name", sizes: [4])
            guard n.isDataLocation else { throw .badFormat(kind.description, "field name is not a __data_loc string") }
            name = n
        } else {
            name = nil
        }
        switch kind {
        case .qdiscDequeue, .drop, .schedSwitch, .schedWakeup: length = nil
        default: length = try need("len", sizes: [4])
        }
        ifindex = kind == .qdiscDequeue ? try need("ifindex", sizes: [4]) : nil
        returnCode = kind == .devXmit ? try need("rc", sizes: [4]) : nil
        if kind == .drop {
            reason = try need("reason", sizes: [4])
            reasonNames = format.symbols(of: "reason")
        } else {
            reason = nil
            reasonNames = [:]
        }
        minimumLength = [skbaddr, name, length, ifindex, returnCode, reason, prevPid, prevState, target].compactMap { $0 }.map { $0.offset + $0.size }.max() ?? 0
        self.knownNames = knownNames.map { (Array($0.utf8), $0) }
    }

    /// The event in `record`, or nil when the record is too short or not this tracepoint's.
    func decode(_ record: UnsafeRawBufferPointer, timeNs: Int64, cpu: UInt32, pid: Int32, tid: Int32) -> KernelEvent? {
        guard record.count >= minimumLength, record.loadUnaligned(fromByteOffset: 0, as: UInt16.self) == id else { return nil }
        var e = KernelEvent(timeNs: timeNs, kind: kind, cpu: cpu, pid: pid, tid: tid,
                            skbaddr: skbaddr.map { UInt64(littleEndian: record.loadUnaligned(fromByteOffset: $0.offset, as: UInt64.self)) } ?? 0)
        if let prevPid { e.tid = Int32(bitPattern: u32(record, prevPid)) }
        if let prevState { e.prevState = u32(record, prevState) }
        if let target { e.targetTid = Int32(bitPattern: u32(record, target)) }
        if let name { e.interface = string(record, at: name) }
        if let length { e.length = u32(record, length) }
        if let ifindex { e.ifindex = Int32(bitPattern: u32(record, ifindex)) }
        if let returnCode { e.returnCode = Int32(bitPattern: u32(record, returnCode)) }
        if let reason {
            let r = u32(record, reason)
            e.dropReason = r
            e.dropReasonName = reasonNames[UInt64(r)]
        }
        return e
    }

    private func u32(_ record: UnsafeRawBufferPointer, _ f: TracepointField) -> UInt32 {
        UInt32(littleEndian: record.loadUnaligned(fromByteOffset: f.offset, as: UInt32.self))
    }

    /// A __data_loc string: u32 (length << 16 | offset), the bytes NUL-terminated.
    private func string(_ record: UnsafeRawBufferPointer, at f: TracepointField) -> String? {
        let loc = u32(record, f)
        let offset = Int(loc & 0xFFFF)
        var length = Int(loc >> 16)
        guard offset + length <= record.count else { return nil }
        let bytes = UnsafeRawBufferPointer(rebasing: record[offset..<(offset + length)])
        if let nul = bytes.firstIndex(of: 0) { length = nul }
        let text = UnsafeRawBufferPointer(rebasing: bytes[0..<length])
        for known in knownNames where known.bytes.count == length && known.bytes.elementsEqual(text) {
            return known.name
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The ftrace filter that keeps this event to `interfaces` (by name), `ifindexes`
    /// (qdisc_dequeue) and reader threads (`tids`: skb_copy_datagram_iovec, and the scheduler's
    /// events, which are recorded only for known readers); nil: no filter.
    static func filter(kind: KernelEventKind, interfaces: [String], ifindexes: [Int32], tids: [Int32]?) -> String? {
        func any(_ terms: [String]) -> String { terms.count == 1 ? terms[0] : "(" + terms.joined(separator: " || ") + ")" }
        switch kind {
        case .devQueue, .devStartXmit, .devXmit, .rxEntry, .receiveSkbEntry, .receiveSkb:
            return any(interfaces.map { "name == \"\($0)\"" })
        case .qdiscDequeue:
            // qdisc_dequeue also fires when the qdisc had nothing to give (skbaddr 0).
            return any(ifindexes.map { "ifindex == \($0)" }) + " && skbaddr != 0"
        case .copyToReader:
            guard let tids, !tids.isEmpty else { return nil }
            return any(tids.map { "common_pid == \($0)" })
        case .drop:
            return nil
        case .schedSwitch:
            guard let tids, !tids.isEmpty else { return nil }
            return any(tids.flatMap { ["prev_pid == \($0)", "next_pid == \($0)"] })
        case .schedWakeup:
            guard let tids, !tids.isEmpty else { return nil }
            return any(tids.map { "pid == \($0)" })
        }
    }
}
