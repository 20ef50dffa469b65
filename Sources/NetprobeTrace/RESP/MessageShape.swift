/// The first bytes of one element of a request (an argument), as plain bytes: enough to tell
/// `CLIENT REPLY OFF` from `CLIENT REPLY ON` or `HELLO 3` from `HELLO 2` without a String per
/// request. Four bytes are kept: every keyword a reply rule reads is that short, and the word
/// travels with every request (`RESPMessage` stays 64 bytes). `BitwiseCopyable`.
public struct CommandWord: BitwiseCopyable, Sendable, Equatable {
    /// The element's first bytes (at most `keptBytes`, as they were sent), little-endian, zero-filled.
    public var prefix: UInt32
    /// The element's length in bytes; -1 when the request has no such element or its bytes were
    /// not all captured.
    public var length: Int32

    public static let keptBytes = 4
    public static let absent = CommandWord(prefix: 0, length: -1)

    public init(prefix: UInt32, length: Int32) {
        self.prefix = prefix
        self.length = length
    }

    /// The word made of `bytes` (an element's whole body).
    @inline(__always)
    init(_ bytes: UnsafeRawBufferPointer) {
        self.init(prefixOf: bytes, length: Int64(bytes.count))
    }

    /// The word of an element `length` bytes long whose first bytes are `bytes`.
    @inline(__always)
    init(prefixOf bytes: UnsafeRawBufferPointer, length: Int64) {
        var p: UInt32 = 0
        if bytes.count >= Self.keptBytes {
            p = UInt32(littleEndian: bytes.loadUnaligned(as: UInt32.self))
        } else {
            for k in 0..<bytes.count { p |= UInt32(bytes[k]) << (8 * UInt32(k)) }
        }
        prefix = p
        self.length = Int32(clamping: length)
    }

    /// Whether the element is `word` (upper case ASCII, at most `keptBytes`), in any letter case,
    /// as Redis compares its keywords.
    public func equalsIgnoringCase(_ word: StaticString) -> Bool {
        guard Int(length) == word.utf8CodeUnitCount, length <= Self.keptBytes else { return false }
        var expected: UInt32 = 0
        word.withUTF8Buffer { w in
            for (k, c) in w.enumerated() { expected |= UInt32(c) << (8 * UInt32(k)) }
        }
        var upper = prefix
        for k in 0..<Int(length) {
            let c = UInt8(truncatingIfNeeded: prefix >> (8 * UInt32(k)))
            if c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z") { upper ^= UInt32(0x20) << (8 * UInt32(k)) }
        }
        return upper == expected
    }
}

/// What the pairing rules read of a request besides its command's name: how many elements it
/// has (the name counts; a container command's subcommand too), and for the commands whose
/// replies depend on an argument (`argumentIndex`) that argument's first bytes.
public struct RequestShape: BitwiseCopyable, Sendable, Equatable {
    /// CLIENT REPLY's mode (ON, OFF, SKIP), HELLO's protocol version; `.absent` for other commands.
    public var argument: CommandWord
    public var elements: Int32

    public static let none = RequestShape(elements: 0, argument: .absent)

    public init(elements: Int32, argument: CommandWord) {
        self.elements = elements
        self.argument = argument
    }

    /// Which element of a `command` request (a name as `RESPMessage.command` gives it) is its
    /// `argument`: nil for the commands whose replies do not depend on one.
    public static func argumentIndex(_ command: String) -> Int? {
        switch command {
        case "CLIENT REPLY": 2
        case "HELLO": 1
        default: nil
        }
    }
}

/// `RESPMessage.shape` (requests) and `.pubSub` (replies) in one place, since a message is one or
/// the other: 11 bytes that fit where `RESPMessage` had padding but 6 (it is 64 bytes, not 88).
struct MessageDetail: BitwiseCopyable, Sendable, Equatable {
    var word: UInt32 = 0
    /// Requests: the element count; replies: a confirmation's count.
    var number: Int32 = 0
    var length: Int16 = -1
    /// Replies: `PubSubKind.rawValue`.
    var kind: UInt8 = 0

    init() {}

    init(_ shape: RequestShape) {
        word = shape.argument.prefix
        length = Int16(clamping: shape.argument.length)
        number = shape.elements
    }

    init(_ frame: PubSubFrame) {
        kind = frame.kind.rawValue
        number = frame.count
    }

    var shape: RequestShape {
        RequestShape(elements: number, argument: CommandWord(prefix: word, length: Int32(length)))
    }

    var pubSub: PubSubFrame {
        kind == 0 ? .none : PubSubFrame(kind: PubSubKind(rawValue: kind) ?? .none, count: number)
    }
}

/// The pub/sub frames of Redis's protocol: an array (RESP2) or a push (RESP3) whose first element
/// names its kind. Messages are sent to a subscribed client whenever something is published;
/// confirmations answer (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE, one per channel.
public enum PubSubKind: UInt8, BitwiseCopyable, Sendable {
    case none
    case message, pmessage, smessage
    case subscribe, psubscribe, ssubscribe
    case unsubscribe, punsubscribe, sunsubscribe

    /// A published message: never the reply to a request.
    public var isMessage: Bool { self == .message || self == .pmessage || self == .smessage }
    /// A confirmation of (un)subscribing one channel or pattern.
    public var isConfirmation: Bool { rawValue >= PubSubKind.subscribe.rawValue }
    /// The confirmation of a subscription (as opposed to an unsubscription).
    public var isSubscription: Bool { self == .subscribe || self == .psubscribe || self == .ssubscribe }
    /// Shard channels (SSUBSCRIBE) are counted apart from channels and patterns.
    public var isShard: Bool { self == .smessage || self == .ssubscribe || self == .sunsubscribe }

    /// The kind named by a frame's first element (its bytes as sent; Redis sends lower case).
    static func named(_ b: UnsafeRawBufferPointer) -> PubSubKind {
        guard b.count >= 7 && b.count <= 12 else { return .none }
        switch b.count {
        case 7:
            if matches(b, "message") { return .message }
        case 8:
            if matches(b, "pmessage") { return .pmessage }
            if matches(b, "smessage") { return .smessage }
        case 9:
            if matches(b, "subscribe") { return .subscribe }
        case 10:
            if matches(b, "psubscribe") { return .psubscribe }
            if matches(b, "ssubscribe") { return .ssubscribe }
        case 11:
            if matches(b, "unsubscribe") { return .unsubscribe }
        case 12:
            if matches(b, "punsubscribe") { return .punsubscribe }
            if matches(b, "sunsubscribe") { return .sunsubscribe }
        default:
            break
        }
        return .none
    }

    private static func matches(_ b: UnsafeRawBufferPointer, _ word: StaticString) -> Bool {
        word.withUTF8Buffer { w in w.count == b.count && zip(w, b).allSatisfy { $0 == $1 } }
    }
}

/// A reply's pub/sub kind and the number it carries (a confirmation's count of subscriptions
/// left); `.none` for every other reply. Read only where it matters: for RESP3 pushes, and for
/// RESP2 arrays once the connection has sent a pub/sub command (`RESPStreamDecoder.readsPubSubArrays`).
public struct PubSubFrame: BitwiseCopyable, Sendable, Equatable {
    public var kind: PubSubKind
    /// A confirmation's last element: how many subscriptions the client still has (-1 when the
    /// frame has no integer element).
    public var count: Int32

    public static let none = PubSubFrame(kind: .none, count: -1)

    public init(kind: PubSubKind, count: Int32) {
        self.kind = kind
        self.count = count
    }
}
