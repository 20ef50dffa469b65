import ArgumentParser
import NetprobeCapture
import NetprobeCore

enum NetprobeVersionInfo {
    static var text: String { "netprobe \(NetprobeVersion.string)" }
}

extension Netprobe {
    /// `netprobe version`: netprobe's version and the C libraries it is linked against.
    struct VersionCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "version",
            abstract: "Show netprobe's version and the libpcap, libnl and libvirt it uses.")

        func run() {
            print(NetprobeVersionInfo.text)
            for line in LibraryVersions.lines { print("  \(line)") }
        }
    }
}
