import Foundation
import Testing

/// Every command of the built binary, as ArgumentParser describes it (`--experimental-dump-help`):
/// the tests below walk it, so a command or option added later is checked without being listed.
struct CommandTree {
    struct Option {
        var names: [String] // "-c", "--connect"
        var valueName: String?
        var visible: Bool
        var allValues: [String]
    }

    struct Command {
        var path: [String] // ["lab", "up"]; [] is netprobe itself
        var options: [Option]
        var display: String { (["netprobe"] + path).joined(separator: " ") }
    }

    static func load() throws -> [Command] {
        let r = try CLI.run(["--experimental-dump-help"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        var out: [Command] = []
        func walk(_ command: [String: Any], path: [String]) {
            let arguments = command["arguments"] as? [[String: Any]] ?? []
            let options: [Option] = arguments.compactMap { a in
                guard a["kind"] as? String == "option" || a["kind"] as? String == "flag" else { return nil }
                let names = (a["names"] as? [[String: Any]] ?? []).compactMap { n -> String? in
                    guard let name = n["name"] as? String else { return nil }
                    return (n["kind"] as? String == "short" ? "-" : "--") + name
                }
                return Option(names: names, valueName: a["kind"] as? String == "option" ? a["valueName"] as? String : nil,
                              visible: a["shouldDisplay"] as? Bool ?? true, allValues: a["allValues"] as? [String] ?? [])
            }
            out.append(Command(path: path, options: options))
            for sub in command["subcommands"] as? [[String: Any]] ?? [] {
                guard let name = sub["commandName"] as? String, name != "help" else { continue }
                walk(sub, path: path + [name])
            }
        }
        walk(try #require(object["command"] as? [String: Any]), path: [])
        return out
    }
}

/// The sections of a `--help` text.
enum HelpSections {
    /// The lines of section `title` ("EXAMPLES"), up to the next blank line.
    static func lines(_ help: String, _ title: String) -> [String]? {
        let all = help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = all.firstIndex(of: title + ":") else { return nil }
        return Array(all[(start + 1)...].prefix { !$0.trimmingCharacters(in: .whitespaces).isEmpty })
    }

    /// The statuses EXIT STATUS lists ("  2    the trace is damaged ..." -> 2).
    static func exitStatuses(_ help: String) -> Set<Int32> {
        Set((lines(help, "EXIT STATUS") ?? []).compactMap { line in
            guard line.hasPrefix("  "), let first = line.split(separator: " ").first else { return nil }
            return Int32(first)
        })
    }
}

/// A command line split as sh would split it (quotes, no expansion), up to a redirection or pipe.
func shellWords(_ line: String) -> [String] {
    var words: [String] = []
    var word = ""
    var inWord = false
    var quote: Character?
    for c in line {
        if let q = quote {
            if c == q { quote = nil } else { word.append(c) }
        } else if c == "'" || c == "\"" {
            quote = c
            inWord = true
        } else if c == " " {
            if inWord { words.append(word) }
            word = ""
            inWord = false
        } else {
            word.append(c)
            inWord = true
        }
    }
    if inWord { words.append(word) }
    return Array(words.prefix { !["|", ">", "<", ">>", "&&", ";"].contains($0) })
}
