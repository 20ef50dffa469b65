/// How a command's replies follow it, where Redis departs from "one reply per request" (the
/// commands `RequestPairer` treats apart; every other command is `.ordinary`). Decided once per
/// command name (`VantageTap` caches it).
enum ReplyRule: UInt8 {
    case ordinary
    /// CLIENT REPLY ON | OFF | SKIP: OFF silences every reply until ON (OFF itself gets none), SKIP
    /// silences its own and the next command's, ON answers +OK.
    case clientReply
    /// HELLO [protover ...]: replies are RESP3 or RESP2 from its own reply on.
    case hello
    /// RESET: answered +RESET whatever the mode; replies on, RESP2, every subscription dropped.
    case reset
    /// (P|S)SUBSCRIBE: one confirmation per channel; RESP2 connections enter subscribed mode.
    case subscribe, psubscribe, ssubscribe
    /// (P|S)UNSUBSCRIBE: one confirmation per channel named, or, with none named, one per channel
    /// the client had (one when it had none).
    case unsubscribe, punsubscribe, sunsubscribe
    /// MONITOR, SYNC, PSYNC: the reply stream stops following requests; pairing stops.
    case stops

    static func of(_ command: String) -> ReplyRule {
        switch command {
        case "CLIENT REPLY": .clientReply
        case "HELLO": .hello
        case "RESET": .reset
        case "SUBSCRIBE": .subscribe
        case "PSUBSCRIBE": .psubscribe
        case "SSUBSCRIBE": .ssubscribe
        case "UNSUBSCRIBE": .unsubscribe
        case "PUNSUBSCRIBE": .punsubscribe
        case "SUNSUBSCRIBE": .sunsubscribe
        case "MONITOR", "SYNC", "PSYNC": .stops
        default: .ordinary
        }
    }

    /// The confirmations that answer the command (`.none` for the others).
    var confirmation: PubSubKind {
        switch self {
        case .subscribe: .subscribe
        case .psubscribe: .psubscribe
        case .ssubscribe: .ssubscribe
        case .unsubscribe: .unsubscribe
        case .punsubscribe: .punsubscribe
        case .sunsubscribe: .sunsubscribe
        default: .none
        }
    }

    /// A pub/sub command: its connection's replies are read for pub/sub frames from then on.
    var isPubSub: Bool { confirmation != .none }
}
