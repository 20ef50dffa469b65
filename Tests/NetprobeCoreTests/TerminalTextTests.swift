import Testing
import NetprobeCore

@Suite("terminal text: control characters from a trace are shown, not obeyed")
struct TerminalTextTests {
    @Test("escapes", arguments: [
        ("virbr0", "virbr0"),
        ("\u{1B}[2J", "\\x1b[2J"),
        ("a\nb\r\tc", "a\\nb\\r\\tc"),
        ("\u{0}\u{7}\u{7F}", "\\x00\\x07\\x7f"),
        ("\u{9B}31m", "\\x9b31m"), // C1 CSI
        ("abc\u{202E}def\u{2066}", "abc\\u{202e}def\\u{2066}"),
        ("\\Device\\NPF_{1}", "\\Device\\NPF_{1}"), // backslashes stay: Windows interface names
        ("ünïcødé ✓ 名前", "ünïcødé ✓ 名前"),
    ])
    func escapes(input: String, expected: String) {
        #expect(TerminalText.escape(input) == expected)
    }

    @Test("a whole report keeps its own line feeds and nothing else")
    func keepingLineFeeds() {
        #expect(TerminalText.escapeKeepingLineFeeds("a\n\u{1B}]0;x\u{7}\nb\r\n") == "a\n\\x1b]0;x\\x07\nb\\r\n")
        let plain = "netprobe report\n  NAME  ROLE\n"
        #expect(TerminalText.escapeKeepingLineFeeds(plain) == plain)
    }

    @Test("table cells are escaped, so columns stay aligned")
    func tableCells() {
        var t = Table(["NAME", "PACKETS"])
        t.add(["vnet0\u{1B}[2J", "12"])
        #expect(t.render(indent: 0) == "NAME          PACKETS\nvnet0\\x1b[2J       12\n")
    }
}
