import ArgumentParser
import Foundation
import Testing
@testable import netprobe

/// Issue 16, item 24: examples in every --help that survive copy-paste, and exit statuses that
/// are documented and true. Item 26: a reference generated from the commands.
@Suite("every --help teaches by example and tells its exit statuses")
struct HelpTests {
    /// Help as an 80-column terminal (and a pipe) shows it.
    static let columns = ["COLUMNS": "80"]

    @Test("every command's --help has EXAMPLES (one command a line, each shorter than 80 columns) and EXIT STATUS (0 and 64 among them)")
    func everyHelpHasExamplesAndExitStatus() throws {
        let commands = try CommandTree.load()
        #expect(commands.count >= 14, "netprobe, 10 commands, lab's 3 subcommands, reference")
        for command in commands {
            let r = try CLI.run(command.path + ["--help"], environment: Self.columns)
            #expect(r.status == 0, "\(command.display) --help: \(r.stderr)")
            let examples = try #require(HelpSections.lines(r.stdout, "EXAMPLES"), "\(command.display) --help has no EXAMPLES section")
            #expect(!examples.isEmpty, "\(command.display): no example")
            for line in examples {
                // A wrapped command would leave a line that does not start with the command.
                #expect(line.hasPrefix("  " + command.display + " ") || line == "  " + command.display,
                        "\(command.display): '\(line)' is not one whole command of its own")
                #expect(line.count < 80, "\(command.display): '\(line)' is \(line.count) columns: a terminal wraps it")
            }
            let statuses = HelpSections.exitStatuses(r.stdout)
            #expect(statuses.contains(0) && statuses.contains(64), "\(command.display): EXIT STATUS lists \(statuses.sorted())")
        }
    }

    @Test("every example in every --help is a command line netprobe accepts (options exist, values valid)")
    func examplesParse() throws {
        for command in try CommandTree.load() {
            let help = try CLI.run(command.path + ["--help"], environment: Self.columns).stdout
            for line in HelpSections.lines(help, "EXAMPLES") ?? [] {
                let words = shellWords(line.trimmingCharacters(in: .whitespaces))
                #expect(words.first == "netprobe")
                do {
                    _ = try Netprobe.parseAsRoot(Array(words.dropFirst()))
                } catch {
                    Issue.record("\(line): \(Netprobe.message(for: error))")
                }
            }
        }
    }

    @Test("docs/reference.md is what netprobe reference prints (regenerate: .build/debug/netprobe reference > docs/reference.md)")
    func referenceIsUpToDate() throws {
        let r = try CLI.run(["reference"])
        #expect(r.status == 0, "\(r.stderr)")
        let file = CLI.packageRoot.appendingPathComponent("docs/reference.md")
        let committed = try String(contentsOf: file, encoding: .utf8)
        #expect(r.stdout == committed, "docs/reference.md is out of date: .build/debug/netprobe reference > docs/reference.md")
        // It holds every command's help, whatever the terminal's width.
        let wide = try CLI.run(["reference"], environment: ["COLUMNS": "200"])
        #expect(wide.stdout == r.stdout, "the reference does not depend on the terminal")
        for command in try CommandTree.load() {
            #expect(r.stdout.contains("\n## \(command.display)\n"), "no section for \(command.display)")
            let help = try CLI.run(command.path + ["--help"], environment: Self.columns).stdout
            let examples = HelpSections.lines(help, "EXAMPLES") ?? []
            #expect(examples.allSatisfy { r.stdout.contains($0) }, "\(command.display)'s examples are in the reference")
        }
    }
}
