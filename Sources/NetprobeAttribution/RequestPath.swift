import NetprobeModel
import NetprobeTrace
/// Stage 2: one joined request's times along the path (and, with the load generator's records,
/// at the client). Rows that cannot be placed are counted by reason, never guessed over.
struct RequestPath {
    /// End-to-end: at the client with its records, else at the outermost vantage point.
    var e2e: Int64
    /// Outer -> inner vantage point on the request path (two vantage points only).
    var requestHop: Int64?
    /// Inner -> outer on the reply path; nil where both show one stamp (unresolved).
    var responseHop: Int64?
    /// Request in -> reply out at the innermost vantage point.
    var inner: Int64
    var innerIn: Int64
    var innerOut: Int64
    var outerIn: Int64
    var command: UInt16
    /// The request's wait in the guest device's queue until the backend read it (kernel events),
    /// and the longest stretch of it in which the backend's process did nothing the events show.
    var backend: Int64? = nil
    var backendSilent: Int64 = 0
    /// What the backend's reading thread did during that wait (nil without scheduler events).
    var backendStates: ThreadStateTimes? = nil
    /// The client's own time: send -> outermost capture plus outermost capture -> receive.
    var client: Int64? = nil
    /// False for a request the load generator did not record (another client's): it occupies
    /// Redis, so it stays on the server's timeline, but it is not in the split.
    var counted = true
}

/// Requests that cannot be placed on the path, by reason.
public struct Unplaced: Sendable, Equatable {
    /// Seen at the innermost vantage point only / at the outermost only (capture loss).
    public var innerOnly = 0, outerOnly = 0
    /// A hop came out negative (stamps out of order).
    public var negative = 0
    /// On the wire but not in the load generator's records (another client's).
    public var notFromClient = 0

    public init() {}

    mutating func add(_ o: Unplaced) {
        innerOnly += o.innerOnly
        outerOnly += o.outerOnly
        negative += o.negative
        notFromClient += o.notFromClient
    }
}

/// Makes `RequestPath`s from joined rows.
struct RequestPaths: @unchecked Sendable { // ClientRecords is read-only once prepared
    let outer: Int?
    let inner: Int?
    let twoSides: Bool
    let client: ClientRecords
    let hops: KernelHops?

    init(_ path: AttributionPath, client: ClientRecords, hops: KernelHops? = nil) {
        outer = path.outer?.vantage
        inner = path.inner?.vantage
        twoSides = path.hasTwoSides
        self.hops = hops
        var prepared = client
        prepared.prepare()
        self.client = prepared
    }

    /// `r`'s times along the path; nil when it cannot be placed (counted in `unplaced`).
    func path(_ r: JoinedRow, _ unplaced: inout Unplaced) -> RequestPath? {
        guard let outer, let inner else { return nil }
        let o = r.times(vantage: outer)
        guard let i = r.times(vantage: inner) else {
            if o != nil { unplaced.outerOnly += 1 }
            return nil
        }
        let innerLatency = i.responseFirst - i.requestLast
        guard innerLatency >= 0 else {
            unplaced.negative += 1
            return nil
        }
        var p: RequestPath
        if twoSides {
            guard let o else {
                unplaced.innerOnly += 1
                return nil
            }
            let hop = i.requestLast - o.requestLast
            let back = o.responseFirst - i.responseFirst
            guard hop >= 0, back >= 0 else {
                unplaced.negative += 1
                return nil
            }
            p = RequestPath(e2e: o.responseFirst - o.requestLast, requestHop: hop, responseHop: back == 0 ? nil : back,
                            inner: innerLatency, innerIn: i.requestLast, innerOut: i.responseFirst,
                            outerIn: o.requestLast, command: r.command)
        } else {
            p = RequestPath(e2e: innerLatency, requestHop: nil, responseHop: nil, inner: innerLatency,
                            innerIn: i.requestLast, innerOut: i.responseFirst, outerIn: i.requestLast, command: r.command)
        }
        if let hops { addKernelHops(hops, i, to: &p) }
        if !client.isEmpty { addClient(r, to: &p, &unplaced) }
        return p
    }

    /// The host kernel's view at the guest's device: the backend's wait for the request, and the
    /// reply's hop to the next device, which both capture stamps hide (the outer capture carries
    /// the device's receive stamp, so the reply reached the outer vantage point `hop` later).
    private func addKernelHops(_ hops: KernelHops, _ i: (requestLast: Int64, responseFirst: Int64, responseLast: Int64), to p: inout RequestPath) {
        if let b = hops.backendWait(near: i.requestLast) {
            p.backend = min(b.wait, p.inner)
            p.backendSilent = b.silent // clamped to the segment's value when tallied
            p.backendStates = b.states
        }
        if twoSides, p.responseHop == nil, let hop = hops.replyHop(near: i.responseFirst),
           case let (e2e, overflow) = p.e2e.addingReportingOverflow(hop), !overflow {
            p.responseHop = hop
            p.e2e = e2e
        }
    }

    /// The client's own stamps extend the path: send -> outermost capture -> receive. With client
    /// records, only requests the client recorded are attributed.
    private func addClient(_ r: JoinedRow, to p: inout RequestPath, _ unplaced: inout Unplaced) {
        let outerIn = twoSides ? p.outerIn : p.innerIn
        let outerOut = p.innerOut + (p.responseHop ?? 0)
        // The client's stamps come from the trace as written: arithmetic on them must not trap (a
        // damaged record can hold any 64-bit value).
        if let offset = r.offset,
           let c = client.lookup(ClientKey(client: r.client, server: r.server, offset: offset)),
           outerIn >= c.sendNs, c.receiveNs >= outerOut,
           case let (before, o1) = outerIn.subtractingReportingOverflow(c.sendNs), !o1,
           case let (after, o2) = c.receiveNs.subtractingReportingOverflow(outerOut), !o2,
           case let (time, o3) = before.addingReportingOverflow(after), !o3,
           case let (e2e, o4) = c.receiveNs.subtractingReportingOverflow(c.sendNs), !o4 {
            p.client = time
            p.e2e = e2e
        } else {
            unplaced.notFromClient += 1
            p.counted = false
        }
    }
}
