/// The part of a command's `--help` after its abstract, laid out as a man page orders it: what the
/// command does, then EXAMPLES, then EXIT STATUS.
///
/// ArgumentParser rewraps every line of 80 columns or more (at the terminal's width, 80 in a pipe),
/// with no indent on the continuation: an example that long would be cut in two and fail when
/// pasted. Examples are therefore one command a line and shorter than `width` (a test checks), and
/// the exit statuses are wrapped here, with a hanging indent, before ArgumentParser sees them.
enum HelpText {
    /// Lines shorter than 80 columns pass through ArgumentParser unchanged.
    static let width = 79

    /// The exit status every command shares: ArgumentParser's for a command line it cannot use.
    static let usageStatus: (Int32, String) = (64, "the command line is wrong (an unknown option, a missing or bad value): the message says what")

    /// `prose` (ArgumentParser wraps it), then the sections. `exitStatus` lists the command's own
    /// statuses; the usage status is added.
    static func discussion(_ prose: String, examples: [String], exitStatus: [(Int32, String)]) -> String {
        var out = prose.isEmpty ? "" : prose + "\n\n"
        out += "EXAMPLES:\n" + examples.map { "  " + $0 }.joined(separator: "\n")
        out += "\n\nEXIT STATUS:\n"
        out += (exitStatus + [usageStatus]).map { code, meaning in
            wrap(meaning, first: "  " + String(code).padding(toLength: 5, withPad: " ", startingAt: 0), indent: 7)
        }.joined(separator: "\n")
        return out
    }

    /// `text` after `first`, in lines shorter than `width`, continued `indent` spaces in.
    static func wrap(_ text: String, first: String, indent: Int) -> String {
        var lines: [String] = []
        var line = first
        var empty = true // nothing after the line's prefix yet
        for word in text.split(separator: " ") {
            if !empty && line.count + 1 + word.count >= width {
                lines.append(line)
                line = String(repeating: " ", count: indent)
                empty = true
            }
            line += (empty ? "" : " ") + word
            empty = false
        }
        lines.append(line)
        return lines.joined(separator: "\n")
    }
}
