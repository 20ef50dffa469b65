/// Text from a trace made safe for a terminal.
///
/// Interface names, Redis command names, INFO lines, notes and the capture's metadata come from
/// the trace file, and a crafted trace can put anything in them: an escape sequence that retitles
/// the window, rewrites the screen or hides lines, or a line feed that forges a line of the
/// report. Text output shows every control character as a visible escape instead: `\n`, `\r`,
/// `\t`, `\xHH` for the other C0 controls, DEL and the C1 controls (U+0080-U+009F, which some
/// terminals obey as ESC sequences), and `\u{HHHH}` for the bidirectional overrides and isolates
/// (U+202A-U+202E, U+2066-U+2069) that can make text display in another order than it reads.
/// Everything else (any other Unicode, backslashes) is left as it is. JSON escapes control
/// characters by itself and HTML escapes its own, so only text output goes through here.
public enum TerminalText {
    /// `text` with every control character escaped, line feeds included: for one field (a name,
    /// a note) printed inside a line.
    public static func escape(_ text: String) -> String {
        escape(text, keepingLineFeeds: false)
    }

    /// `text` with every control character but the line feed escaped: for a whole rendered report
    /// whose lines netprobe wrote itself, as a net under the fields escaped one by one.
    public static func escapeKeepingLineFeeds(_ text: String) -> String {
        escape(text, keepingLineFeeds: true)
    }

    private static func escape(_ text: String, keepingLineFeeds: Bool) -> String {
        guard text.unicodeScalars.contains(where: { needsEscape($0, keepingLineFeeds) }) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar, keepingLineFeeds) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                let hex = String(scalar.value, radix: 16, uppercase: false)
                out += scalar.value < 0x100
                    ? "\\x" + (hex.count < 2 ? "0" : "") + hex
                    : "\\u{" + hex + "}"
            }
        }
        return out
    }

    private static func needsEscape(_ s: Unicode.Scalar, _ keepingLineFeeds: Bool) -> Bool {
        switch s.value {
        case 0x0A: return !keepingLineFeeds
        case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}
