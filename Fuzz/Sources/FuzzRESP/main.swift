import FuzzSupport
import NetprobeCore

/// libFuzzer entry: the first byte picks the role, a chunk size and (for replies) whether arrays
/// are read for their pub/sub kind; the rest is a RESP stream fed in chunks, with an occasional
/// run of missing bytes. Fed twice: with the decoder's fast path
/// (whole messages read in one go) and without it (the state machine alone); every message, start
/// and failure must be the same, else the target traps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESP(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 1 else { return 0 }
    let fast = decodeForFuzzing(data, size, fastPath: true)
    let slow = decodeForFuzzing(data, size, fastPath: false)
    precondition(fast.messages == slow.messages, "fast path and state machine disagree on the messages")
    precondition(fast.starts == slow.starts, "fast path and state machine disagree on where messages start")
    precondition(fast.failure == slow.failure, "fast path and state machine disagree on the failure")
    return 0
}

func decodeForFuzzing(_ data: UnsafePointer<UInt8>, _ size: Int, fastPath: Bool)
    -> (messages: [RESPMessage], starts: [UInt32], failure: RESPStreamDecoder.Failure?) {
    let control = data[0]
    var decoder = RESPStreamDecoder(role: control & 1 == 0 ? .requests : .responses)
    decoder.usesFastPath = fastPath
    let chunk = Int(control >> 1) % 17 + 1
    decoder.readsPubSubArrays = (Int(control >> 1) / 17) % 2 == 1 // bits the chunk size leaves unused
    let body = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    var offset = 0
    var messages: [RESPMessage] = []
    var starts: [UInt32] = []
    while offset < body.count {
        let n = min(chunk, body.count - offset)
        let part = UnsafeRawBufferPointer(rebasing: body[offset..<(offset + n)])
        let ok = decoder.feed(.data(part, sequence: UInt32(truncatingIfNeeded: offset), timestampNs: Int64(offset)),
                              started: { _, sequence in if starts.count < 4096 { starts.append(sequence) } }) { m in
            if messages.count < 4096 { messages.append(m) }
        }
        if !ok { break }
        if control & 0x80 != 0 && offset % 97 == 0 {
            _ = decoder.feed(.missing(count: n, sequence: UInt32(truncatingIfNeeded: offset), timestampNs: 0, cutBySnaplen: true)) { m in
                if messages.count < 4096 { messages.append(m) }
            }
        }
        offset += n
    }
    return (messages, starts, decoder.failure)
}

/// Seeds: a few hand-written streams of every RESP type, and the request and reply streams of the
/// first Redis segments of each trace (whole, and with small chunks and missing runs).
func respSeeds(_ traces: String) throws -> [Seed] {
    var seeds = [
        Seed("requests", [0x00] + Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nPING\r\n".utf8)),
        Seed("replies", [0x01] + Array("+OK\r\n$5\r\nhello\r\n*2\r\n:1\r\n%1\r\n+a\r\n+b\r\n>2\r\n+m\r\n+x\r\n$?\r\n;3\r\nabc\r\n;0\r\n".utf8)),
        Seed("replies-resp3", [0x01] + Array("_\r\n#t\r\n,1.5\r\n(123\r\n!3\r\nerr\r\n=7\r\ntxt:abc\r\n~1\r\n:2\r\n|1\r\n+k\r\n+v\r\n+x\r\n-ERR no\r\n*-1\r\n$-1\r\n".utf8)),
        // Pub/sub frames, arrays read for their kind (control 0x23: replies, chunk 1, pub/sub on).
        Seed("replies-pubsub", [0x23] + Array("*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n>3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n".utf8)),
        Seed("requests-inline-http", [0x00] + Array("client reply off\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
    ]
    for (name, path) in try traceFiles(traces, suffix: ".pcap") + traceFiles(traces, suffix: ".pcapng") {
        let streams = try respStreams(path, count: 60)
        seeds.append(Seed("\(name)-requests", [0x00] + streams.requests))
        seeds.append(Seed("\(name)-replies", [0x01] + streams.replies))
        seeds.append(Seed("\(name)-requests-chunked-missing", [0x86] + streams.requests))
        seeds.append(Seed("\(name)-replies-chunked-missing", [0x87] + streams.replies))
    }
    return seeds
}

@_cdecl("FuzzRESP_main")
public func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    fuzzerMain(argc, argv, seeds: respSeeds) { fuzzRESP($0, $1) }
}
