import Testing
@testable import NetprobeTrace

/// Redis's reply rules in the pairer alone (`ReplyRule`, `RequestPairer`): CLIENT REPLY, pub/sub
/// in RESP2 and RESP3, HELLO and RESET, as `PairerTests.Script` feeds them.
@Suite("reply rules")
struct ReplyRuleTests {
    typealias Script = PairerTests.Script

    /// The shape of a request made of `words` (the name first), as the decoder makes it.
    static func shape(_ words: String...) -> RequestShape {
        let first = words[0].uppercased()
        let name = first == "CLIENT" && words.count > 1 ? first + " " + words[1].uppercased() : first
        let argument = RequestShape.argumentIndex(name).flatMap { k in
            k < words.count ? Array(words[k].utf8).withUnsafeBytes { CommandWord($0) } : nil
        }
        return RequestShape(elements: Int32(words.count), argument: argument ?? .absent)
    }

    static func frame(_ kind: PubSubKind, _ count: Int32 = -1) -> PubSubFrame { PubSubFrame(kind: kind, count: count) }

    enum Command: Int { case set, get, clientReply, subscribe, unsubscribe, ping, reset, hello, lrange, psubscribe }

    @Test("the rule of each command name")
    func rules() {
        #expect(ReplyRule.of("CLIENT REPLY") == .clientReply)
        #expect(ReplyRule.of("CLIENT LIST") == .ordinary)
        #expect(ReplyRule.of("SSUBSCRIBE").confirmation == .ssubscribe)
        #expect(ReplyRule.of("PUNSUBSCRIBE").isPubSub)
        #expect(ReplyRule.of("MONITOR") == .stops && ReplyRule.of("PSYNC") == .stops)
        #expect(ReplyRule.of("GET") == .ordinary && !ReplyRule.of("GET").isPubSub)
    }

    @Test("a command word compares as Redis compares keywords: any letter case, the whole word")
    func words() {
        #expect(Self.shape("CLIENT", "REPLY", "off").argument.equalsIgnoringCase("OFF"))
        #expect(Self.shape("client", "reply", "Skip").argument.equalsIgnoringCase("SKIP"))
        #expect(!Self.shape("CLIENT", "REPLY", "OFFX").argument.equalsIgnoringCase("OFF"))
        #expect(!Self.shape("CLIENT", "REPLY", "OF").argument.equalsIgnoringCase("OFF"))
        #expect(!Self.shape("CLIENT", "REPLY").argument.equalsIgnoringCase("OFF"))
        #expect(!Self.shape("CLIENT", "REPLY", "SKIPPED").argument.equalsIgnoringCase("SKIP"))
        // What travels with every request stays small: a message is 64 bytes.
        #expect(MemoryLayout<RESPMessage>.stride <= 64)
        #expect(Self.shape("HELLO", "3").argument.equalsIgnoringCase("3"))
    }

    @Test("CLIENT REPLY SKIP: it and the next command get no reply; the rest pair")
    func skip() {
        var s = Script()
        let set = s.request(Command.set.rawValue)
        s.reply()
        s.request(Command.clientReply.rawValue, rule: .clientReply, shape: Self.shape("CLIENT", "REPLY", "SKIP"))
        s.request(Command.set.rawValue)
        let get = s.request(Command.get.rawValue)
        s.reply()
        #expect(s.pairs.map(\.request) == [set, get])
        #expect(s.noReply == 2)
        #expect(s.unpaired.isEmpty && s.unexpected == 0)
    }

    @Test("CLIENT REPLY OFF silences every reply until ON, which answers; SKIP while OFF changes nothing")
    func offOn() {
        var s = Script()
        s.request(Command.clientReply.rawValue, rule: .clientReply, shape: Self.shape("CLIENT", "REPLY", "OFF"))
        s.request(Command.set.rawValue)
        s.request(Command.clientReply.rawValue, rule: .clientReply, shape: Self.shape("CLIENT", "REPLY", "SKIP"))
        s.request(Command.get.rawValue)
        let on = s.request(Command.clientReply.rawValue, rule: .clientReply, shape: Self.shape("client", "reply", "on"))
        s.reply()
        let get = s.request(Command.get.rawValue)
        s.reply()
        #expect(s.pairs.map(\.request) == [on, get])
        #expect(s.noReply == 4)
        #expect(s.unpaired.isEmpty)
    }

    @Test("SKIP then ON, SKIP then RESET: both answer; a CLIENT REPLY with a wrong argument is answered (an error)")
    func skipThenOn() {
        var s = Script()
        s.request(Command.clientReply.rawValue, rule: .clientReply, shape: Self.shape("CLIENT", "REPLY", "SKIP"))
        let on = s.request(Command.clientReply.rawValue, rule: .clientReply, shape: Self.shape("CLIENT", "REPLY", "ON"))
        s.reply()
        s.request(Command.clientReply.rawValue, rule: .clientReply, shape: Self.shape("CLIENT", "REPLY", "SKIP"))
        let reset = s.request(Command.reset.rawValue, rule: .reset, shape: Self.shape("RESET"))
        s.reply()
        let wrong = s.request(Command.clientReply.rawValue, rule: .clientReply, shape: Self.shape("CLIENT", "REPLY", "MAYBE"))
        s.reply(isError: true)
        #expect(s.pairs.map(\.request) == [on, reset, wrong])
        #expect(s.noReply == 2)
    }

    @Test("pipelined: the replies to commands sent before OFF still pair")
    func pipelinedBeforeOff() {
        var s = Script()
        let set = s.request(Command.set.rawValue)
        s.request(Command.clientReply.rawValue, rule: .clientReply, shape: Self.shape("CLIENT", "REPLY", "OFF"))
        s.request(Command.get.rawValue)
        s.reply()
        #expect(s.pairs.map(\.request) == [set])
        #expect(s.noReply == 2 && s.pairer.pendingCount == 0)
    }

    @Test("RESP2 pub/sub: one confirmation per channel, messages are not replies, PING's pong pairs, UNSUBSCRIBE of all pairs")
    func pubSubRESP2() {
        var s = Script()
        let sub = s.request(Command.subscribe.rawValue, rule: .subscribe, shape: Self.shape("SUBSCRIBE", "a", "b"))
        s.reply(pubSub: Self.frame(.subscribe, 1))
        s.reply(pubSub: Self.frame(.subscribe, 2))
        s.reply(pubSub: Self.frame(.message))
        let ping = s.request(Command.ping.rawValue)
        s.reply(pubSub: Self.frame(.message))
        s.reply() // ["pong", ""]
        let unsub = s.request(Command.unsubscribe.rawValue, rule: .unsubscribe, shape: Self.shape("UNSUBSCRIBE"))
        s.reply(pubSub: Self.frame(.unsubscribe, 1))
        s.reply(pubSub: Self.frame(.unsubscribe, 0))
        #expect(!s.pairer.subscribed)
        // No longer subscribed: an array that begins with "message" is a reply like any other.
        let lrange = s.request(Command.lrange.rawValue)
        s.reply(pubSub: Self.frame(.message))
        #expect(s.pairs.map(\.request) == [sub, ping, unsub, lrange])
        #expect(s.pairs[0].responseFirstByteNs == 1100) // the first confirmation
        #expect(s.confirmations == 2 && s.pushes == 2)
        #expect(s.unexpected == 0 && s.unpaired.isEmpty)
    }

    @Test("pipelined SUBSCRIBE and PING: the second confirmation does not answer PING")
    func pipelinedSubscribe() {
        var s = Script()
        let sub = s.request(Command.psubscribe.rawValue, rule: .psubscribe, shape: Self.shape("PSUBSCRIBE", "a*", "b*"))
        let ping = s.request(Command.ping.rawValue)
        s.reply(pubSub: Self.frame(.psubscribe, 1))
        s.reply(pubSub: Self.frame(.psubscribe, 2))
        s.reply(pubSub: Self.frame(.pmessage))
        s.reply()
        #expect(s.pairs.map(\.request) == [sub, ping])
        #expect(s.pairs[1].responseFirstByteNs == 4200)
    }

    @Test("RESP3: confirmations are pushes that answer SUBSCRIBE, other pushes are not replies, arrays are replies; RESET back to RESP2")
    func pubSubRESP3() {
        var s = Script()
        let hello = s.request(Command.hello.rawValue, rule: .hello, shape: Self.shape("HELLO", "3"))
        s.reply()
        #expect(s.pairer.resp3)
        let sub = s.request(Command.subscribe.rawValue, rule: .subscribe, shape: Self.shape("SUBSCRIBE", "c"))
        s.reply(isPush: true, pubSub: Self.frame(.subscribe, 1))
        let get = s.request(Command.get.rawValue)
        s.reply(isPush: true, pubSub: Self.frame(.message))
        s.reply()
        let lrange = s.request(Command.lrange.rawValue)
        s.reply(pubSub: Self.frame(.message)) // an array: in RESP3 a reply, whatever it holds
        s.reply(isPush: true) // an invalidation push
        let reset = s.request(Command.reset.rawValue, rule: .reset, shape: Self.shape("RESET"))
        s.reply()
        #expect(!s.pairer.resp3 && !s.pairer.subscribed)
        #expect(s.pairs.map(\.request) == [hello, sub, get, lrange, reset])
        #expect(s.pushes == 2 && s.unexpected == 0)
    }

    @Test("HELLO answered with an error changes nothing; HELLO without a version keeps the protocol")
    func helloError() {
        var s = Script()
        s.request(Command.hello.rawValue, rule: .hello, shape: Self.shape("HELLO", "4"))
        s.reply(isError: true)
        #expect(!s.pairer.resp3)
        s.request(Command.hello.rawValue, rule: .hello, shape: Self.shape("HELLO", "3"))
        s.reply()
        s.request(Command.hello.rawValue, rule: .hello, shape: Self.shape("HELLO"))
        s.reply()
        #expect(s.pairer.resp3 && s.pairs.count == 3)
    }

    @Test("a confirmation nobody waits for (SUBSCRIBE under CLIENT REPLY OFF) is a push, not a reply to the next request")
    func unsolicitedConfirmation() {
        var s = Script()
        s.request(Command.clientReply.rawValue, rule: .clientReply, shape: Self.shape("CLIENT", "REPLY", "OFF"))
        s.request(Command.subscribe.rawValue, rule: .subscribe, shape: Self.shape("SUBSCRIBE", "a"))
        s.reply(pubSub: Self.frame(.subscribe, 1))
        let on = s.request(Command.clientReply.rawValue, rule: .clientReply, shape: Self.shape("CLIENT", "REPLY", "ON"))
        s.reply(pubSub: Self.frame(.message))
        s.reply()
        #expect(s.pairs.map(\.request) == [on])
        #expect(s.pushes == 2 && s.noReply == 2)
    }

    @Test("SUBSCRIBE without a channel is answered by one error, as any command")
    func subscribeArityError() {
        var s = Script()
        let sub = s.request(Command.subscribe.rawValue, rule: .subscribe, shape: Self.shape("SUBSCRIBE"))
        s.reply(isError: true)
        let get = s.request(Command.get.rawValue)
        s.reply()
        #expect(s.pairs.map(\.request) == [sub, get])
    }
}
