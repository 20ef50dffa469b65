import NetprobeModel
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One complete RESP message found in a stream.
public struct RESPMessage: Sendable, Equatable {
    /// Capture time of the packet that carried the message's first byte, and its last byte.
    public var firstByteNs: Int64
    public var lastByteNs: Int64
    /// TCP sequence number of the message's first byte: the same at every vantage point.
    public var sequence: UInt32
    /// Sequence number just past the message's last byte.
    public var endSequence: UInt32 = 0
    /// Requests: the command name, upper-cased, with the subcommand for container commands
    /// ("CONFIG GET"). "?" when the name's bytes were not captured. Responses: nil.
    public var command: String?
    /// Requests: a 64-bit hash (FNV-1a) of `command`'s bytes, so that the analyser finds the
    /// command's number without hashing the String; 0 for responses.
    public var commandKey: UInt64 = 0
    /// Responses: an error reply (`-ERR ...` or a RESP3 blob error).
    public var isError: Bool
    /// Responses: a RESP3 push (`>`), which answers no request unless it confirms a subscription.
    public var isPush: Bool
    /// Requests' `shape`, replies' `pubSub`.
    var detail = MessageDetail()

    /// Requests: how many elements, and the argument their reply rule reads.
    public var shape: RequestShape {
        get { detail.shape }
        set { detail = MessageDetail(newValue) }
    }

    /// Responses: the pub/sub frame it is (RESP3 pushes always; RESP2 arrays when
    /// `RESPStreamDecoder.readsPubSubArrays`), else `.none`.
    public var pubSub: PubSubFrame {
        get { detail.pubSub }
        set { detail = MessageDetail(newValue) }
    }
}

extension RESPMessage {
    /// The message `m`, its command name (`m.nameSlot`) looked up in `names`.
    init(_ m: StoredMessage, names: [String]) {
        self.init(firstByteNs: m.firstByteNs, lastByteNs: m.lastByteNs, sequence: m.sequence, endSequence: m.endSequence,
                  command: m.nameSlot >= 0 ? names[Int(m.nameSlot)] : nil, commandKey: m.commandKey,
                  isError: m.isError, isPush: m.isPush, detail: m.detail)
    }
}

/// A `RESPMessage` as the decoder keeps it: plain bytes, the command name as a slot in the
/// decoder's table of names. Copying a message that held a String went through its value
/// witnesses (copy, then destroy, per event: 2 % of `report`); this copies 48 bytes.
struct StoredMessage: BitwiseCopyable {
    var firstByteNs: Int64
    var lastByteNs: Int64
    var sequence: UInt32
    var endSequence: UInt32 = 0
    var commandKey: UInt64 = 0
    /// Index of the command's name in `RESPStreamDecoder.names`; -1: a reply (no name).
    var nameSlot: Int32 = -1
    var isError: Bool
    var isPush: Bool = false
    var detail = MessageDetail()

    var shape: RequestShape {
        get { detail.shape }
        set { detail = MessageDetail(newValue) }
    }

    var pubSub: PubSubFrame {
        get { detail.pubSub }
        set { detail = MessageDetail(newValue) }
    }
}

/// Where a complete message lies: its sequence numbers and its first and last byte's capture
/// times. `BitwiseCopyable`: handing it on copies plain bytes.
public struct MessageSpan: BitwiseCopyable, Sendable, Equatable {
    public var sequence: UInt32
    public var endSequence: UInt32
    public var firstByteNs: Int64
    public var lastByteNs: Int64

    @inline(__always)
    init(_ m: StoredMessage) {
        sequence = m.sequence
        endSequence = m.endSequence
        firstByteNs = m.firstByteNs
        lastByteNs = m.lastByteNs
    }
}

/// A decoder event as plain bytes (`RESPStreamDecoder.plainEvent`): a message began, or one is
/// complete (where it lies, and for replies whether it is an error or a push, and its pub/sub kind).
public enum PlainEvent: BitwiseCopyable {
    case started(timestampNs: Int64, sequence: UInt32)
    case message(MessageSpan, isError: Bool, isPush: Bool, pubSub: PubSubFrame)
}

/// Incremental RESP2 + RESP3 decoder for one direction of one connection.
///
/// Bytes arrive in any chunking; the result is the same message sequence (tests check every
/// split). Nothing is buffered beyond the current header line (capped) and the first 32 bytes of
/// a request's command name and subcommand. Missing bytes (capture loss or snapshot length) are
/// absorbed where the protocol says how long they are (bulk string bodies); anywhere else they
/// desynchronise the stream, which is reported, never guessed over.
public struct RESPStreamDecoder {
    public enum Role: Sendable { case requests, responses }

    /// Why a stream stopped being decodable.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var sequence: UInt32
        public var reason: String
        /// The bytes are another protocol (an HTTP request, a line that is no command), not RESP
        /// that lost bytes: decoding does not resume on this stream.
        public var isNotRESP = false
        public var description: String { "at stream sequence \(sequence): \(reason)" }
    }

    public static let maximumDepth = 128
    /// Redis's own limits: an inline command up to 64 KiB; a bulk up to 512 MB by default (we
    /// accept up to 2^40 since we skip bodies without storing them).
    static let maximumInlineLength = 64 * 1024
    static let maximumSimpleLineLength = 16 << 20
    static let maximumNumberLineLength = 32
    static let maximumBulkLength: Int64 = 1 << 40
    static let captureLength = 32
    /// Request elements whose first bytes are kept: the name, and two more (`RequestShape`).
    static let capturedElements = 3

    private enum State {
        case start
        case line(type: UInt8)
        case bulkBody(remaining: Int64, capture: Bool)
        case crlf(seen: Int)
        case failed
    }

    private struct Frame {
        enum Kind { case aggregate, attribute, streamedAggregate, streamedString }
        var kind: Kind
        var remaining: Int64
    }

    public let role: Role
    private var state = State.start
    private var stack: [Frame] = []
    private var line: [UInt8] = []
    private var lineLength = 0
    /// The last byte of the current line seen so far (the CR check needs it when the line is long).
    private var lineLastByte: UInt8 = 0
    /// How much of a line is kept when it spans chunks: numbers, names and errors fit in it.
    static let keptLineLength = 64
    private var inMessage = false
    private var message = StoredMessage(firstByteNs: 0, lastByteNs: 0, sequence: 0, isError: false)
    /// Position within the top-level array, and the first bytes of its first elements (requests:
    /// the name, the subcommand, one more; replies being read for their pub/sub kind: the first),
    /// with each one's length.
    private var topIndex = 0
    private var captured: [[UInt8]] = [[], [], []]
    private var capturedComplete = [true, true, true]
    private var capturedLength: [Int64] = [0, 0, 0]
    /// The current reply is read for its pub/sub kind (a push, or an array while
    /// `readsPubSubArrays`); the last integer among its elements.
    private var readingPubSub = false
    private var pubSubCount: Int64 = -1
    /// The last bytes of the current inline command line (before its CR), for `InlineCommandRule`.
    private var inlineTail: [UInt8] = []
    static let inlineTailLength = 12
    /// The words of the current inline command line so far, and whether its last byte was in one.
    private var inlineWords = 0
    private var inlineInWord = false
    public private(set) var failure: Failure?

    /// Replies: read the kind of top-level arrays too (`RESPMessage.pubSub`), not only of pushes.
    /// Set once the connection sent a pub/sub command: in RESP2 a message or a confirmation is an
    /// array like any reply. The fast path leaves such arrays to the state machine.
    public var readsPubSubArrays = false

    public init(role: Role) {
        self.role = role
        eventBuffer.reserveCapacity(16)
        line.reserveCapacity(64)
        stack.reserveCapacity(8)
        captured[0].reserveCapacity(Self.captureLength)
        captured[1].reserveCapacity(Self.captureLength)
        captured[2].reserveCapacity(Self.captureLength)
    }

    /// True between the first and last byte of a message.
    public var isInsideMessage: Bool { inMessage }

    /// What a `feed` found, in order: a message began (its first byte's capture time and sequence
    /// number), or a message is complete. Plain bytes.
    enum StoredEvent: BitwiseCopyable {
        case started(timestampNs: Int64, sequence: UInt32)
        case message(StoredMessage)
    }

    /// The events of the `feed(_:)` calls since the last `clearEvents()`, in order.
    private var eventBuffer: [StoredEvent] = []
    /// The command names the events' messages point to (`StoredMessage.nameSlot`), each once.
    /// Emptied (with the cache that points into it) by `clearEvents` past `maximumNames`, so a
    /// stream of ever new names does not grow it without bound.
    private var names: [String] = []
    private var nameSlots: [String: Int32] = [:]
    static let maximumNames = 1024
    /// How many of `eventBuffer`'s entries are current (clearing only resets this: emptying the
    /// array per chunk went through its generic range replacement).
    public private(set) var eventCount = 0

    /// Event `k` without its message's command name: plain bytes.
    @inline(__always)
    public func plainEvent(_ k: Int) -> PlainEvent {
        switch eventBuffer[k] {
        case let .started(ts, sequence): .started(timestampNs: ts, sequence: sequence)
        case let .message(m): .message(MessageSpan(m), isError: m.isError, isPush: m.isPush, pubSub: m.pubSub)
        }
    }


    /// The command of event `k` when it is a request's message (`RESPMessage.command`,
    /// `.commandKey`, `.shape`): read in one go (binding the message copies it).
    @inline(__always)
    public func command(ofEvent k: Int) -> (name: String?, key: UInt64, shape: RequestShape) {
        guard case let .message(m) = eventBuffer[k], m.nameSlot >= 0 else { return (nil, 0, .none) }
        return (names[Int(m.nameSlot)], m.commandKey, m.shape)
    }

    /// The slot of `name` in `names`, added when new.
    private mutating func slot(of name: String) -> Int32 {
        if let known = nameSlots[name] { return known }
        let slot = Int32(names.count)
        names.append(name)
        nameSlots[name] = slot
        return slot
    }

    @inline(__always)
    private mutating func record(_ e: StoredEvent) {
        if eventCount < eventBuffer.count {
            eventBuffer[eventCount] = e
        } else {
            eventBuffer.append(e)
        }
        eventCount += 1
    }

    public mutating func clearEvents() {
        // A chunk of thousands of tiny messages does not leave its large buffer behind on every
        // connection; the usual few events' slots are reused.
        if eventCount > 256 { eventBuffer = [] }
        eventCount = 0
        if names.count > Self.maximumNames {
            names.removeAll()
            nameSlots.removeAll()
            nameCache = (CachedName(), CachedName())
        }
    }

    /// Feeds one chunk; `emit` receives each message as it completes, `started` the first-byte
    /// time and sequence number of each message as it begins. Returns false once the stream has failed.
    @discardableResult
    public mutating func feed(_ chunk: StreamChunk, started: (Int64, UInt32) -> Void = { _, _ in },
                              emit: (RESPMessage) -> Void) -> Bool {
        let ok = feed(chunk)
        for k in 0..<eventCount {
            switch eventBuffer[k] {
            case let .started(ts, sequence): started(ts, sequence)
            case let .message(m): emit(RESPMessage(m, names: names))
            }
        }
        clearEvents()
        return ok
    }

    /// Feeds one chunk; what it finds is kept as events 0 ..< `eventCount` (`plainEvent`, `command(ofEvent:)`; the analyser reads them there:
    /// callbacks would have to capture its connection and cost a retain and release per message).
    /// Returns false once the stream has failed.
    @discardableResult
    public mutating func feed(_ chunk: StreamChunk) -> Bool {
        if case .failed = state { return false }
        switch chunk {
        case let .data(bytes, sequence, ts, _):
            var i = 0
            while i < bytes.count {
                if usesFastPath, case .start = state, !inMessage,
                   let end = wholeMessage(bytes, at: i, sequence: sequence, ts: ts) {
                    i = end
                    continue
                }
                if !step(bytes, &i, sequence: sequence, ts: ts) { return false }
            }
        case let .missing(count, sequence, ts, cutBySnaplen):
            return absorbMissing(count, sequence: sequence, ts: ts, cutBySnaplen: cutBySnaplen)
        }
        return true
    }

    /// Whether `feed` tries `wholeMessage` first. Tests and the FuzzRESP target turn it off to
    /// check that both paths give the same messages.
    public var usesFastPath = true
    /// Messages the fast path read (tests check it is taken).
    public private(set) var messagesReadWhole = 0

    /// The fast path: a whole message of the usual shapes, lying entirely in `b` from `i`: a
    /// request that is an array of bulk strings; a reply that is a simple value, a bulk string, or
    /// an array of those. Emits it and returns the index past it; returns nil without changing
    /// anything when the bytes are anything else (another shape, cut by the chunk's end, malformed,
    /// over a limit), and the state machine (`step`) reads them instead, byte for byte the same
    /// rules. Most messages are small and lie inside one segment; this reads them in one go
    /// instead of a state transition per line.
    private mutating func wholeMessage(_ b: UnsafeRawBufferPointer, at i: Int, sequence: UInt32, ts: Int64) -> Int? {
        let p = b.baseAddress!
        let n = b.count
        let first = p.load(fromByteOffset: i, as: UInt8.self)

        /// The line starting at `j`: where its content ends (at the CR) and where the next line
        /// starts (past the LF); nil without a CR LF in the buffer.
        func line(_ j: Int) -> (end: Int, next: Int)? {
            guard j < n, let found = memchr(p + j, 0x0A, n - j) else { return nil }
            let lf = p.distance(to: UnsafeRawPointer(found))
            guard lf > j, p.load(fromByteOffset: lf - 1, as: UInt8.self) == 0x0D else { return nil }
            return (lf - 1, lf + 1)
        }
        /// The number in a number line, read as `step` reads it (same length limit, same parser).
        func number(_ from: Int, _ to: Int) -> Int64? {
            guard to + 1 - from <= Self.maximumNumberLineLength else { return nil }
            return Self.parseInteger(UnsafeRawBufferPointer(start: p + from, count: to - from))
        }
        /// A bulk string at `j` ("$len CRLF body CRLF"): its body and the index past it; with
        /// `null`, "$-1" too (length -1, no body).
        func bulk(_ j: Int, null: Bool = false) -> (body: Int, length: Int, next: Int)? {
            guard j < n, p.load(fromByteOffset: j, as: UInt8.self) == UInt8(ascii: "$"),
                  let header = line(j + 1), let length = number(j + 1, header.end) else { return nil }
            if length == -1 && null { return (header.next, -1, header.next) }
            guard length >= 0, length <= n - header.next - 2,
                  p.load(fromByteOffset: header.next + Int(length), as: UInt8.self) == 0x0D,
                  p.load(fromByteOffset: header.next + Int(length) + 1, as: UInt8.self) == 0x0A else { return nil }
            return (header.next, Int(length), header.next + Int(length) + 2)
        }
        /// A reply element that is not an aggregate: a simple value, a bulk string or a null bulk.
        func scalar(_ j: Int) -> Int? {
            guard j < n else { return nil }
            switch p.load(fromByteOffset: j, as: UInt8.self) {
            case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "_"), UInt8(ascii: "#"),
                 UInt8(ascii: ","), UInt8(ascii: "("):
                guard let simple = line(j + 1), simple.end + 1 - (j + 1) <= Self.maximumSimpleLineLength else { return nil }
                return simple.next
            case UInt8(ascii: "$"):
                return bulk(j, null: true)?.next
            default:
                return nil
            }
        }

        let end: Int
        var name: (start: Int, length: Int)?
        var subcommand: (start: Int, length: Int)?
        var third: (start: Int, length: Int)?
        var elements = 0
        switch role {
        case .requests:
            guard first == UInt8(ascii: "*"), let header = line(i + 1), let items = number(i + 1, header.end), items >= 1 else { return nil }
            var j = header.next
            for k in 0..<items {
                guard let element = bulk(j) else { return nil }
                if k < 3 {
                    if k == 0 { name = (element.body, element.length) }
                    else if k == 1 { subcommand = (element.body, element.length) }
                    else { third = (element.body, element.length) }
                }
                j = element.next
            }
            elements = Int(items)
            end = j
        case .responses:
            if first == UInt8(ascii: "*") {
                // A pub/sub frame is read for its kind by the state machine.
                if readsPubSubArrays { return nil }
                // "*-1" (a null array) and "*0" are whole messages, as in `endOfLine`.
                guard let header = line(i + 1), let items = number(i + 1, header.end), items >= -1 else { return nil }
                var j = header.next
                for _ in 0..<max(items, 0) {
                    guard let next = scalar(j) else { return nil }
                    j = next
                }
                end = j
            } else {
                guard let next = scalar(i) else { return nil }
                end = next
            }
        }

        let here = sequence &+ UInt32(truncatingIfNeeded: i)
        // What `beginMessage` and `finishMessage` do, without the captured-name buffers.
        var message = StoredMessage(firstByteNs: ts, lastByteNs: ts, sequence: here,
                                    endSequence: sequence &+ UInt32(truncatingIfNeeded: end),
                                    isError: first == UInt8(ascii: "-"))
        record(.started(timestampNs: ts, sequence: here))
        if role == .requests {
            func bytes(_ e: (start: Int, length: Int)?, upTo limit: Int) -> UnsafeRawBufferPointer? {
                e.map { UnsafeRawBufferPointer(start: p + $0.start, count: min($0.length, limit)) }
            }
            let argumentIndex: Int
            (message.nameSlot, message.commandKey, argumentIndex) = cachedCommandName(
                name: bytes(name, upTo: Self.captureLength),
                subcommand: elements >= 2 ? bytes(subcommand, upTo: Self.captureLength) : nil)
            message.detail.number = Int32(clamping: elements)
            if argumentIndex > 0, let e = argumentIndex == 1 ? subcommand : third {
                message.shape.argument = CommandWord(prefixOf: UnsafeRawBufferPointer(start: p + e.start, count: min(e.length, CommandWord.keptBytes)),
                                                     length: Int64(e.length))
            }
        }
        messagesReadWhole &+= 1
        record(.message(message))
        return end
    }

    /// The last two command names this stream sent, by their raw bytes (up to 16, packed in two
    /// words): a connection mostly repeats a few commands, and upper-casing the name into a new
    /// String per request was a tenth of the fast path's time. Only names that are not container
    /// commands are kept (their name does not depend on the subcommand).
    private struct CachedName {
        var low: UInt64 = 0, high: UInt64 = 0, length = -1
        var slot: Int32 = -1
        var key: UInt64 = 0
        var argumentIndex = 0
    }
    private var nameCache = (CachedName(), CachedName())
    private var nameCacheNext = false

    /// The name's slot in `names`, its key and the element its reply rule reads
    /// (`RequestShape.argumentIndex`; 0: none).
    private mutating func cachedCommandName(name: UnsafeRawBufferPointer?, subcommand: UnsafeRawBufferPointer?) -> (Int32, UInt64, Int) {
        guard let name, name.count <= 16, name.count > 0 else {
            let (command, key) = Self.commandName(name: name, subcommand: subcommand)
            return (slot(of: command), key, RequestShape.argumentIndex(command) ?? 0)
        }
        var words: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: name) }
        if nameCache.0.length == name.count && nameCache.0.low == words.0 && nameCache.0.high == words.1 {
            return (nameCache.0.slot, nameCache.0.key, nameCache.0.argumentIndex)
        }
        if nameCache.1.length == name.count && nameCache.1.low == words.0 && nameCache.1.high == words.1 {
            return (nameCache.1.slot, nameCache.1.key, nameCache.1.argumentIndex)
        }
        let (command, key) = Self.commandName(name: name, subcommand: subcommand)
        let argumentIndex = RequestShape.argumentIndex(command) ?? 0
        // Not "?", not "CONFIG GET" (a container's name depends on its subcommand: the
        // differential test caught caching "CLIENT SET" for every CLIENT).
        let slot = slot(of: command)
        guard command != "?", !command.utf8.contains(0x20), !CommandNames.isContainer(command) else { return (slot, key, argumentIndex) }
        let entry = CachedName(low: words.0, high: words.1, length: name.count, slot: slot, key: key, argumentIndex: argumentIndex)
        if nameCacheNext { nameCache.1 = entry } else { nameCache.0 = entry }
        nameCacheNext.toggle()
        return (slot, key, argumentIndex)
    }

    private mutating func fail(_ sequence: UInt32, _ reason: String, notRESP: Bool = false) -> Bool {
        failure = Failure(sequence: sequence, reason: reason, isNotRESP: notRESP)
        state = .failed
        return false
    }

    private mutating func beginMessage(sequence: UInt32, ts: Int64) {
        inMessage = true
        message = StoredMessage(firstByteNs: ts, lastByteNs: ts, sequence: sequence, isError: false)
        topIndex = 0
        for k in 0..<Self.capturedElements { // in place: assigning an array literal allocated per message
            captured[k].removeAll(keepingCapacity: true)
            capturedComplete[k] = true
            capturedLength[k] = -1
        }
        readingPubSub = false
        pubSubCount = -1
        record(.started(timestampNs: ts, sequence: sequence))
    }

    /// Processes bytes from `i`, advancing it. Returns false on failure.
    private mutating func step(_ b: UnsafeRawBufferPointer, _ i: inout Int, sequence: UInt32, ts: Int64) -> Bool {
        let here = sequence &+ UInt32(truncatingIfNeeded: i)
        switch state {
        case .failed:
            return false

        case .start:
            let byte = b[i]
            if !inMessage {
                if role == .requests && (byte == 0x0D || byte == 0x0A) {
                    i += 1 // Redis ignores empty lines between inline commands
                    return true
                }
                beginMessage(sequence: here, ts: ts)
            }
            let inStreamedString = stack.last?.kind == .streamedString
            if inStreamedString != (byte == UInt8(ascii: ";")) {
                return fail(here, inStreamedString
                    ? "expected ';' (a streamed string chunk), found \(describe(byte))"
                    : "';' (a streamed string chunk) outside a streamed string")
            }
            line.removeAll(keepingCapacity: true)
            lineLength = 0
            lineLastByte = 0
            if role == .requests && stack.isEmpty && byte != UInt8(ascii: "*") {
                state = .line(type: 0) // inline command: the byte is part of the line
                inlineTail.removeAll(keepingCapacity: true)
                inlineWords = 0
                inlineInWord = false
                return true
            }
            guard Self.isTypeByte(byte) else {
                return fail(here, "expected a RESP type byte (one of + - : $ * _ # , ( ! = % ~ > | ; .), found \(describe(byte))")
            }
            if stack.isEmpty {
                message.isError = byte == UInt8(ascii: "-") || byte == UInt8(ascii: "!")
                message.isPush = byte == UInt8(ascii: ">")
                readingPubSub = role == .responses && (message.isPush || (byte == UInt8(ascii: "*") && readsPubSubArrays))
            }
            i += 1
            state = .line(type: byte)
            return true

        case let .line(type):
            let limit = type == 0 ? Self.maximumInlineLength
                : Self.isNumberType(type) ? Self.maximumNumberLineLength : Self.maximumSimpleLineLength
            let start = i
            // memchr finds the LF (vectorised); most lines lie whole inside one chunk.
            let j: Int
            if let found = memchr(b.baseAddress! + i, 0x0A, b.count - i) {
                j = b.baseAddress!.distance(to: UnsafeRawPointer(found))
            } else {
                j = b.count
            }
            if j > start { lineLastByte = b[j - 1] }
            if type == 0 && j > start {
                // An inline command: its last bytes and its words are kept track of (only its
                // first `keptLineLength` bytes are kept).
                inlineTail.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[max(start, j - Self.inlineTailLength)..<j]))
                if inlineTail.count > Self.inlineTailLength { inlineTail.removeFirst(inlineTail.count - Self.inlineTailLength) }
                for c in UnsafeRawBufferPointer(rebasing: b[start..<j]) {
                    let separator = c == 0x20 || c == 0x09 || c == 0x0D
                    if !separator && !inlineInWord { inlineWords += 1 }
                    inlineInWord = !separator
                }
            }
            lineLength += j - start
            if lineLength > limit {
                return fail(here, "a RESP line longer than \(limit) bytes without CRLF (type \(type == 0 ? "inline command" : describe(type)))")
            }
            guard j < b.count else {
                // The line goes on in the next chunk: keep its start (64 bytes are all any use needs).
                let keep = min(j - start, max(0, Self.keptLineLength - line.count))
                if keep > 0 { line.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[start..<(start + keep)])) }
                i = j
                return true
            }
            i = j + 1 // past the LF
            cursor = sequence &+ UInt32(truncatingIfNeeded: i)
            message.lastByteNs = ts
            let endsWithCR = lineLength > 0 && lineLastByte == 0x0D
            let bodyLength = min(lineLength - (endsWithCR ? 1 : 0), Self.keptLineLength)
            if line.isEmpty {
                // The whole line is in this chunk: read it where it is.
                return endOfLine(type: type, content: UnsafeRawBufferPointer(rebasing: b[start..<(start + bodyLength)]),
                                 endsWithCR: endsWithCR, at: here)
            }
            let keep = min(j - start, max(0, Self.keptLineLength - line.count))
            if keep > 0 { line.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[start..<(start + keep)])) }
            let carried = Array(line.prefix(bodyLength)) // rare: a line split across chunks
            return carried.withUnsafeBytes { endOfLine(type: type, content: $0, endsWithCR: endsWithCR, at: here) }

        case let .bulkBody(remaining, capture):
            let take = Int(min(remaining, Int64(b.count - i)))
            if capture {
                // Requests: the name, subcommand and one more; replies read for their pub/sub kind: the first.
                let slot = topIndex
                let room = Self.captureLength - captured[slot].count
                if room > 0 {
                    captured[slot].append(contentsOf: UnsafeRawBufferPointer(rebasing: b[i..<(i + min(take, room))]))
                }
            }
            i += take
            let left = remaining - Int64(take)
            state = left == 0 ? .crlf(seen: 0) : .bulkBody(remaining: left, capture: capture)
            return true

        case let .crlf(seen):
            let expected: UInt8 = seen == 0 ? 0x0D : 0x0A
            guard b[i] == expected else {
                return fail(here, "expected CRLF after a bulk string's body, found \(describe(b[i]))")
            }
            i += 1
            if seen == 0 {
                state = .crlf(seen: 1)
                return true
            }
            cursor = sequence &+ UInt32(truncatingIfNeeded: i)
            message.lastByteNs = ts
            if let top = stack.last, top.kind == .streamedString {
                state = .start // the next chunk header follows
                return true
            }
            return valueCompleted()
        }
    }

    /// Missing bytes: fine inside a bulk body (its length is known), fatal elsewhere.
    private mutating func absorbMissing(_ count: Int, sequence: UInt32, ts: Int64, cutBySnaplen: Bool) -> Bool {
        var left = Int64(count)
        var at = sequence
        while left > 0 {
            switch state {
            case let .bulkBody(remaining, capture):
                let take = min(remaining, left)
                if capture { capturedComplete[topIndex] = false }
                left -= take
                at = at &+ UInt32(truncatingIfNeeded: take)
                state = take == remaining ? .crlf(seen: 0) : .bulkBody(remaining: remaining - take, capture: capture)
            case let .crlf(seen):
                // Assume the unseen CRLF was there: the length said where the body ends.
                let take = Int64(min(2 - seen, Int(left)))
                left -= take
                at = at &+ UInt32(truncatingIfNeeded: take)
                if seen + Int(take) < 2 {
                    state = .crlf(seen: seen + Int(take))
                } else {
                    cursor = at
                    message.lastByteNs = ts
                    if let top = stack.last, top.kind == .streamedString {
                        state = .start
                    } else if !valueCompleted() {
                        return false
                    }
                }
            case .failed:
                return false
            default:
                let why = cutBySnaplen
                    ? "\(left) bytes were cut by the snapshot length where RESP framing was expected (capture with a larger -s)"
                    : "\(left) bytes were never seen (lost before this vantage point) where RESP framing was expected"
                return fail(at, why)
            }
        }
        return true
    }

    /// A line ended. `raw` is its start without the CR (at most `keptLineLength` bytes).
    private mutating func endOfLine(type: UInt8, content raw: UnsafeRawBufferPointer, endsWithCR: Bool, at here: UInt32) -> Bool {
        let isQuestionMark = raw.count == 1 && raw[0] == UInt8(ascii: "?")
        let number = Self.isNumberType(type) ? Self.parseInteger(raw) : nil
        var content: [UInt8] { Array(raw) } // for messages and inline commands only
        if !endsWithCR && type != 0 {
            return fail(here, "expected CR before LF at the end of a RESP line")
        }
        if type == 0 { return inlineCommand(content, endsWithCR: endsWithCR) }
        switch type {
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            if isQuestionMark {
                return push(Frame(kind: .streamedAggregate, remaining: -1), at: here)
            }
            guard let n = number, n >= -1, n <= Self.maximumBulkLength else {
                return fail(here, "expected an element count after '\(Character(UnicodeScalar(type)))', found \"\(String(decoding: content, as: UTF8.self))\"")
            }
            let pairs = type == UInt8(ascii: "%") || type == UInt8(ascii: "|")
            if n <= 0 && role == .requests && stack.isEmpty {
                inMessage = false // Redis skips an empty request array and sends no reply
                state = .start
                return true
            }
            if n <= 0 {
                if type == UInt8(ascii: "|") { state = .start; return true } // empty attribute
                return valueCompleted()
            }
            return push(Frame(kind: type == UInt8(ascii: "|") ? .attribute : .aggregate, remaining: pairs ? 2 * n : n), at: here)

        case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
            if isQuestionMark {
                state = .start
                return push(Frame(kind: .streamedString, remaining: -1), at: here)
            }
            guard let n = number, n >= -1, n <= Self.maximumBulkLength else {
                return fail(here, "expected a bulk length after '\(Character(UnicodeScalar(type)))', found \"\(String(decoding: content, as: UTF8.self))\"")
            }
            if n == -1 { return valueCompleted() }
            let capture = stack.count == 1 && stack[0].kind == .aggregate
                && (role == .requests ? topIndex < Self.capturedElements : readingPubSub && topIndex == 0)
            if capture { capturedLength[topIndex] = n }
            state = n == 0 ? .crlf(seen: 0) : .bulkBody(remaining: n, capture: capture)
            return true

        case UInt8(ascii: ";"):
            guard let n = number, n >= 0, n <= Self.maximumBulkLength else {
                return fail(here, "expected a chunk length after ';'")
            }
            if n == 0 {
                stack.removeLast() // the streamed string ends
                return valueCompleted()
            }
            state = .bulkBody(remaining: n, capture: false)
            return true

        case UInt8(ascii: "."):
            guard let top = stack.last, top.kind == .streamedAggregate else {
                return fail(here, "'.' (end of a streamed aggregate) outside one")
            }
            stack.removeLast()
            return valueCompleted()

        default: // + - : _ # , ( : simple values
            if readingPubSub && type == UInt8(ascii: ":") && stack.count == 1 {
                pubSubCount = Self.parseInteger(raw) ?? -1 // a confirmation's count of subscriptions
            }
            return valueCompleted()
        }
    }

    private mutating func push(_ frame: Frame, at here: UInt32) -> Bool {
        guard stack.count < Self.maximumDepth else {
            return fail(here, "aggregates nested deeper than \(Self.maximumDepth) levels")
        }
        stack.append(frame)
        if frame.kind != .streamedString { state = .start }
        return true
    }

    /// A value ended: count it against its parents; emit the message when the outermost ends.
    private mutating func valueCompleted() -> Bool {
        state = .start
        while let top = stack.last {
            if stack.count == 1 { topIndex += 1 }
            switch top.kind {
            case .streamedAggregate, .streamedString:
                return true
            case .aggregate, .attribute:
                stack[stack.count - 1].remaining -= 1
                if stack[stack.count - 1].remaining > 0 { return true }
                stack.removeLast()
                if top.kind == .attribute {
                    if stack.isEmpty { topIndex = 0 }
                    return true // an attribute annotates the value that follows; it is not one
                }
            }
        }
        finishMessage()
        return true
    }

    /// Sequence number just past the last byte consumed (kept up to date by `feed`).
    private var cursor: UInt32 = 0

    private mutating func finishMessage() {
        message.endSequence = cursor
        switch role {
        case .requests:
            let (command, key) = commandName()
            (message.nameSlot, message.commandKey) = (slot(of: command), key)
            message.shape = RequestShape(elements: Int32(clamping: topIndex),
                                         argument: RequestShape.argumentIndex(command).map(capturedWord) ?? .absent)
        case .responses:
            if readingPubSub {
                let kind = topIndex >= 1 && capturedComplete[0] && capturedLength[0] == Int64(captured[0].count)
                    ? captured[0].withUnsafeBytes(PubSubKind.named) : .none
                message.pubSub = PubSubFrame(kind: kind, count: Int32(clamping: pubSubCount))
            }
        }
        inMessage = false
        record(.message(message))
    }

    /// Request element `k` as a `CommandWord` (absent when the request has no such element or
    /// its bytes were not all captured).
    private func capturedWord(_ k: Int) -> CommandWord {
        guard topIndex > k, capturedComplete[k], capturedLength[k] >= 0 else { return .absent }
        return captured[k].withUnsafeBytes { CommandWord(prefixOf: $0, length: capturedLength[k]) }
    }

    /// An inline command: its words (of the first `keptLineLength` bytes of the line). A line
    /// that cannot be a Redis command (`InlineCommandRule`) means the stream is not RESP.
    private mutating func inlineCommand(_ content: [UInt8], endsWithCR: Bool) -> Bool {
        let words = content.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 })
        if words.isEmpty {
            inMessage = false // an empty line: Redis ignores it and sends nothing
            state = .start
            return true
        }
        var tail = inlineTail[...]
        if endsWithCR, tail.last == 0x0D { tail = tail.dropLast() }
        switch InlineCommandRule.rejection(firstWord: words[0], tail: tail) {
        case let .notACommandName(word)?:
            return fail(message.sequence, "not RESP: a request that is neither a RESP array nor an inline command (a command name: a letter, then letters, '_', '-' or '.'), found \"\(Self.printable(word))\"", notRESP: true)
        case .httpRequestLine?:
            return fail(message.sequence, "not RESP: an HTTP request line (\"\(Self.printable(words[0])) ... HTTP/\(Self.printable(tail.suffix(3)))\"), not a Redis command", notRESP: true)
        case nil:
            break
        }
        // Words past the kept bytes of a longer line were not seen: one that reaches their end
        // may be longer than it looks.
        let cut = lineLength - (endsWithCR ? 1 : 0) > Self.keptLineLength
        for k in 0..<Self.capturedElements {
            guard k < words.count else { break }
            captured[k] = Array(words[k].prefix(Self.captureLength))
            capturedLength[k] = cut && words[k].endIndex == content.endIndex ? -1 : Int64(words[k].count)
        }
        topIndex = cut ? max(words.count, inlineWords) : words.count
        state = .start
        finishMessage()
        return true
    }

    /// Bytes for a failure's text: printable ASCII kept, anything else as \xNN.
    static func printable(_ bytes: some Collection<UInt8>) -> String {
        bytes.map { (0x20...0x7E).contains($0) && $0 != UInt8(ascii: "\\") && $0 != UInt8(ascii: "\"")
            ? String(UnicodeScalar($0)) : "\\x" + (String($0, radix: 16).count == 1 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// The command's name, upper-cased; container commands get their subcommand. With its key.
    private func commandName() -> (String, UInt64) {
        guard topIndex >= 1, capturedComplete[0] else { return Self.commandName(name: nil, subcommand: nil) }
        return captured[0].withUnsafeBytes { name in
            guard topIndex >= 2, capturedComplete[1] else { return Self.commandName(name: name, subcommand: nil) }
            return captured[1].withUnsafeBytes { Self.commandName(name: name, subcommand: $0) }
        }
    }

    /// The name from a request's first element (at most `captureLength` bytes of it, nil when
    /// absent) and, for container commands, its second; "?" when the first is not a name. With
    /// `RESPMessage.commandKey`.
    static func commandName(name: UnsafeRawBufferPointer?, subcommand: UnsafeRawBufferPointer?) -> (String, UInt64) {
        guard let name, let upper = CommandNames.normalise(name) else { return ("?", CommandNames.key("?")) }
        if let subcommand, CommandNames.isContainer(upper), let sub = CommandNames.normalise(subcommand) {
            let both = upper + " " + sub
            return (both, CommandNames.key(both))
        }
        return (upper, CommandNames.key(upper))
    }

    static func isTypeByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "$"), UInt8(ascii: "*"),
             UInt8(ascii: "_"), UInt8(ascii: "#"), UInt8(ascii: ","), UInt8(ascii: "("), UInt8(ascii: "!"),
             UInt8(ascii: "="), UInt8(ascii: "%"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "|"),
             UInt8(ascii: ";"), UInt8(ascii: "."):
            true
        default:
            false
        }
    }

    static func isNumberType(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "*"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "~"), UInt8(ascii: ">"),
             UInt8(ascii: "|"), UInt8(ascii: "="), UInt8(ascii: "!"), UInt8(ascii: ";"), UInt8(ascii: "."):
            true
        default:
            false
        }
    }

    static func parseInteger(_ s: some Collection<UInt8>) -> Int64? {
        var value: Int64 = 0
        var negative = false
        var digits = 0
        for (k, c) in s.enumerated() {
            if k == 0 && c == UInt8(ascii: "-") {
                negative = true
                continue
            }
            guard c >= 0x30 && c <= 0x39, digits < 18 else { return nil }
            value = value * 10 + Int64(c - 0x30)
            digits += 1
        }
        return digits == 0 ? nil : (negative ? -value : value)
    }

    private func describe(_ b: UInt8) -> String {
        (0x21...0x7E).contains(b) ? "'\(Character(UnicodeScalar(b)))'" : "byte 0x\(String(b, radix: 16))"
    }
}

/// Command-name rules shared by the decoder and the report.
public enum CommandNames {
    /// Commands whose first argument is a subcommand worth keeping (as `INFO commandstats` does,
    /// which reports `cmdstat_config|get`).
    public static let containers: Set<String> = [
        "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DEBUG", "FUNCTION", "LATENCY", "MEMORY",
        "MODULE", "OBJECT", "PUBSUB", "SCRIPT", "SLOWLOG", "XGROUP", "XINFO",
    ]

    /// Whether `name` is one of `containers`, checking length and first letter before hashing.
    static func isContainer(_ name: String) -> Bool {
        let utf8 = name.utf8
        guard utf8.count >= 3 && utf8.count <= 8, let first = utf8.first else { return false }
        switch first {
        case UInt8(ascii: "A"), UInt8(ascii: "C"), UInt8(ascii: "D"), UInt8(ascii: "F"), UInt8(ascii: "L"),
             UInt8(ascii: "M"), UInt8(ascii: "O"), UInt8(ascii: "P"), UInt8(ascii: "S"), UInt8(ascii: "X"):
            return utf8.count > 3 || first == UInt8(ascii: "A") ? containers.contains(name) : false
        default:
            return false
        }
    }

    /// `RESPMessage.commandKey` of a command name: FNV-1a over its UTF-8 bytes.
    public static func key(_ name: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    /// Upper-cases a captured name; nil when it does not look like a command name.
    static func normalise(_ bytes: [UInt8]) -> String? {
        bytes.withUnsafeBytes { normalise($0) }
    }

    /// Upper-cases a captured name; nil when it does not look like a command name.
    static func normalise(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard !bytes.isEmpty, bytes.count < RESPStreamDecoder.captureLength else { return nil }
        var valid = true
        // Built in place: names up to 15 bytes become small strings without a heap allocation.
        let name = String(unsafeUninitializedCapacity: bytes.count) { out -> Int in
            for (k, c) in bytes.enumerated() {
                switch c {
                case UInt8(ascii: "a")...UInt8(ascii: "z"): out[k] = c - 32
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                     UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "|"), UInt8(ascii: ":"):
                    out[k] = c
                default:
                    valid = false
                    return 0
                }
            }
            return bytes.count
        }
        return valid ? name : nil
    }
}
