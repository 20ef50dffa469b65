import ArgumentParser
import NetprobeCapture
import NetprobeCore
import NetprobeHarness

enum NetprobeVersionInfo {
    static var text: String { "netprobe \(NetprobeVersion.string)" }
}

extension Netprobe {
    /// `netprobe version`: netprobe's version and the C libraries it uses (libvirt loaded to ask its version).
    struct VersionCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "version",
            abstract: "Show netprobe's version and the libpcap, libnl and libvirt it uses.",
            discussion: HelpText.discussion(
                "netprobe --version prints the first line only.",
                examples: [
                    "netprobe version",
                    "netprobe version --format json",
                ],
                exitStatus: [(0, "the versions were printed"), (1, "standard output could not be written")]))

        @Option(help: "Output format: text (for people) or json (for scripts: netprobe, libpcap, libnl, libvirt).")
        var format: OutputFormat = .text

        /// The JSON of `version --format json`.
        struct Versions: Encodable {
            var netprobe: String
            /// libpcap's, libnl's and libvirt's own version lines.
            var libpcap: String
            var libnl: String
            var libvirt: String
        }

        func run() throws {
            let lines = LibraryVersions.lines // libpcap, libnl, libvirt, in that order
            switch format {
            case .text:
                let text = ([NetprobeVersionInfo.text] + lines.map { "  \($0)" }).joined(separator: "\n") + "\n"
                try writeOutput(text, to: nil, policy: .replaceRegularFile, what: "the versions")
            case .json:
                func line(_ i: Int) -> String { i < lines.count ? lines[i] : "unknown" }
                let versions = Versions(netprobe: NetprobeVersion.string, libpcap: line(0), libnl: line(1), libvirt: line(2))
                try writeOutput(try jsonText(versions), to: nil, policy: .replaceRegularFile, what: "the versions")
            }
        }
    }
}
