/// `--qemu-commandline TEXT`, split into QEMU arguments the way a shell (and virt-install's
/// option of the same name) would: on blanks, with '…' and "…" quoting and \ escaping.
public enum QEMUArguments {
    /// Why a text cannot be split.
    public struct SplitError: Error, Sendable, Equatable, CustomStringConvertible {
        public var text: String
        public var description: String { "--qemu-commandline '\(text)': a quote is not closed" }
    }

    /// The arguments in `text`.
    public static func split(_ text: String) throws(SplitError) -> [String] {
        var out: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for c in text {
            if escaped {
                current.append(c)
                escaped = false
                continue
            }
            if let q = quote {
                if c == q { quote = nil } else if c == "\\" && q == "\"" { escaped = true } else { current.append(c) }
                continue
            }
            switch c {
            case "\\": escaped = true; inWord = true
            case "'", "\"": quote = c; inWord = true
            case " ", "\t", "\n":
                if inWord { out.append(current) }
                current = ""
                inWord = false
            default: current.append(c); inWord = true
            }
        }
        guard quote == nil, !escaped else { throw SplitError(text: text) }
        if inWord { out.append(current) }
        return out
    }
}
