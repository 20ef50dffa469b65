/// How the first bytes of a TCP stream look, for finding Redis on a port nobody named (as
/// Wireshark's heuristic dissectors and Zeek's dynamic protocol detection do): a RESP client
/// begins with an array of bulk strings (`*N\r\n$L\r\n...`) or an inline command; a RESP server
/// answers with a RESP type byte and a well-formed first line.
public enum RESPFirstBytes {
    /// What a client's first bytes are.
    public enum Request: Equatable, Sendable {
        /// `*N\r\n$L\r\n...` (N >= 1): what every Redis client library sends.
        case array
        /// A line that can be an inline command (`InlineCommandRule`).
        case inline
        /// Too few bytes to tell.
        case unknown
        case notRESP
    }

    /// Lines longer than this are not read for the first line of a stream.
    static let maximumLineLength = 1024

    /// Classifies the first payload a client sent.
    public static func request(_ b: UnsafeRawBufferPointer) -> Request {
        guard let first = b.first else { return .unknown }
        if first == UInt8(ascii: "*") {
            guard let (count, next) = numberLine(b, from: 1) else { return incompleteLine(b, from: 1) ? .unknown : .notRESP }
            guard count >= 1 else { return .notRESP }
            guard next < b.count else { return .array }
            guard b[next] == UInt8(ascii: "$") else { return .notRESP }
            guard let (length, _) = numberLine(b, from: next + 1) else { return incompleteLine(b, from: next + 1) ? .array : .notRESP }
            return length >= 0 ? .array : .notRESP
        }
        guard InlineCommandRule.isLetter(first) else { return .notRESP }
        let limit = min(b.count, maximumLineLength)
        guard let lf = (0..<limit).first(where: { b[$0] == 0x0A }) else { return b.count < maximumLineLength ? .unknown : .notRESP }
        var line = UnsafeRawBufferPointer(rebasing: b[0..<lf])
        if line.last == 0x0D { line = UnsafeRawBufferPointer(rebasing: line.dropLast()) }
        // Text, as typed: a line with control bytes is some binary protocol's.
        guard line.allSatisfy({ $0 == 0x09 || (0x20...0x7E).contains($0) }) else { return .notRESP }
        let firstWord = line.prefix { $0 != 0x20 && $0 != 0x09 }
        return InlineCommandRule.rejection(firstWord: firstWord, tail: line.suffix(InlineCommandRule.httpVersionLength)) == nil
            ? .inline : .notRESP
    }

    /// Whether the first payload a server sent begins with a well-formed RESP value's first line
    /// (nil: too few bytes to tell).
    public static func reply(_ b: UnsafeRawBufferPointer) -> Bool? {
        guard let type = b.first else { return nil }
        switch type {
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            // A simple string or an error: text (UTF-8 allowed) up to CR LF.
            func text(_ c: UInt8) -> Bool { c >= 0x20 && c != 0x7F }
            let limit = min(b.count, maximumLineLength)
            if let lf = (1..<limit).first(where: { b[$0] == 0x0A }) {
                return lf >= 2 && b[lf - 1] == 0x0D && b[1..<(lf - 1)].allSatisfy(text)
            }
            return b.count < maximumLineLength && b.dropFirst().allSatisfy { text($0) || $0 == 0x0D } ? nil : false
        case UInt8(ascii: ":"), UInt8(ascii: "$"), UInt8(ascii: "*"), UInt8(ascii: "%"), UInt8(ascii: "~"),
             UInt8(ascii: ">"), UInt8(ascii: "|"), UInt8(ascii: "="), UInt8(ascii: "!"), UInt8(ascii: "("):
            if let (n, _) = numberLine(b, from: 1) { return type == UInt8(ascii: ":") || type == UInt8(ascii: "(") || n >= -1 }
            if b.count >= 4, b[1] == UInt8(ascii: "?"), b[2] == 0x0D, b[3] == 0x0A { return true } // streamed
            return incompleteLine(b, from: 1) ? nil : false
        case UInt8(ascii: "_"):
            return b.count < 3 ? nil : b[1] == 0x0D && b[2] == 0x0A
        case UInt8(ascii: "#"):
            return b.count < 4 ? nil : (b[1] == UInt8(ascii: "t") || b[1] == UInt8(ascii: "f")) && b[2] == 0x0D && b[3] == 0x0A
        case UInt8(ascii: ","):
            let limit = min(b.count, 64)
            guard let lf = (1..<limit).first(where: { b[$0] == 0x0A }) else { return b.count < 64 ? nil : false }
            return lf >= 3 && b[lf - 1] == 0x0D
                && b[1..<(lf - 1)].allSatisfy { InlineCommandRule.isDigit($0) || ".-+eEinfa".utf8.contains($0) }
        default:
            return false
        }
    }

    /// "[-]digits\r\n" from `from`: the number and the index past the LF.
    static func numberLine(_ b: UnsafeRawBufferPointer, from: Int) -> (Int64, Int)? {
        var j = from
        var negative = false
        if j < b.count && b[j] == UInt8(ascii: "-") {
            negative = true
            j += 1
        }
        var value: Int64 = 0
        var digits = 0
        while j < b.count, InlineCommandRule.isDigit(b[j]), digits < 18 {
            value = value * 10 + Int64(b[j] - UInt8(ascii: "0"))
            digits += 1
            j += 1
        }
        guard digits > 0, j + 1 < b.count, b[j] == 0x0D, b[j + 1] == 0x0A else { return nil }
        return (negative ? -value : value, j + 2)
    }

    /// Whether the bytes from `from` are a number line cut by the end of the segment (so far only
    /// a sign, digits and perhaps the CR).
    static func incompleteLine(_ b: UnsafeRawBufferPointer, from: Int) -> Bool {
        guard from <= b.count else { return true }
        let rest = b[from...]
        guard rest.count < 21 else { return false }
        for (k, c) in rest.enumerated() {
            let last = k == rest.count - 1
            if InlineCommandRule.isDigit(c) || (k == 0 && c == UInt8(ascii: "-")) || (last && c == 0x0D && k > 0) { continue }
            return false
        }
        return true
    }
}
