/// Whether a line a client sent can be a Redis inline command (what telnet or `redis-cli` in
/// inline mode send: words separated by spaces, ended by a newline).
///
/// Redis itself runs any first word as a command name and answers unknown ones with an error, so
/// its own rule does not separate Redis from other text protocols that reach its port. The rule
/// here is what a Redis command looks like: its name begins with a letter and holds only letters,
/// `_`, `-` and `.` (GET, GEORADIUS_RO, RESTORE-ASKING, module commands such as FT.SEARCH; no
/// command has a digit); an HTTP header (`Host: redis`) fails it by its colon, an SSH banner
/// (`SSH-2.0-...`) by its digits. An HTTP request line
/// (`GET / HTTP/1.1`, RFC 9112 section 3: method, target, then `HTTP/` digit `.` digit) has a
/// name that passes, so it is recognised by its last word.
public enum InlineCommandRule {
    /// Why a line is not a Redis inline command.
    public enum Rejection: Equatable, Sendable {
        /// The first word is not a command name (as it was sent, at most 32 bytes).
        case notACommandName([UInt8])
        /// An HTTP request line.
        case httpRequestLine
    }

    /// nil when `firstWord` and the line's end (`tail`: its last bytes before CR LF, at least
    /// `httpVersionLength` when the line is that long) can be a Redis inline command; else why not.
    public static func rejection(firstWord: some Collection<UInt8>, tail: some Collection<UInt8>) -> Rejection? {
        guard isCommandName(firstWord) else { return .notACommandName(Array(firstWord.prefix(32))) }
        if endsWithHTTPVersion(tail) { return .httpRequestLine }
        return nil
    }

    /// A letter, then letters, `_`, `-` or `.`.
    public static func isCommandName(_ word: some Collection<UInt8>) -> Bool {
        guard let first = word.first, isLetter(first) else { return false }
        for c in word where !(isLetter(c) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")) {
            return false
        }
        return true
    }

    /// The length of " HTTP/d.d": how much of a line's end `rejection` needs.
    public static let httpVersionLength = 9

    /// " HTTP/d.d" at the end.
    static func endsWithHTTPVersion(_ tail: some Collection<UInt8>) -> Bool {
        let t = Array(tail.suffix(httpVersionLength))
        guard t.count == httpVersionLength else { return false }
        return t[0] == 0x20 && t[1] == UInt8(ascii: "H") && t[2] == UInt8(ascii: "T") && t[3] == UInt8(ascii: "T")
            && t[4] == UInt8(ascii: "P") && t[5] == UInt8(ascii: "/") && isDigit(t[6]) && t[7] == UInt8(ascii: ".")
            && isDigit(t[8])
    }

    @inline(__always)
    static func isLetter(_ c: UInt8) -> Bool { (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z") }

    @inline(__always)
    static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
}
