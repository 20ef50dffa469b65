// swift-tools-version: 6.0
// libFuzzer targets for netprobe's parsers (issue 7). Build and run with Fuzz/run (see Fuzz/README.md).
import PackageDescription

let core = Target.Dependency.product(name: "NetprobeCore", package: "netprobe")

let package = Package(
    name: "netprobe-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [.package(name: "netprobe", path: "..")],
    targets: [
        // The libFuzzer driver shim, the seed writer (seeds come from traces/) and shared checks.
        .target(name: "FuzzSupport", dependencies: [core]),
        // The classic pcap reader alone: every record, every field.
        .executableTarget(name: "FuzzPcap", dependencies: [core, "FuzzSupport"]),
        // The pcapng reader alone: every block type, options, statistics, custom blocks.
        .executableTarget(name: "FuzzPcapng", dependencies: [core, "FuzzSupport"]),
        // The packet decoders (every link type) and TCP stream reassembly of what they yield.
        .executableTarget(name: "FuzzDecode", dependencies: [core, "FuzzSupport"]),
        // The RESP decoder alone, both roles, on arbitrary chunkings.
        .executableTarget(name: "FuzzRESP", dependencies: [core, "FuzzSupport"]),
        // Whole traces through the reader and TraceAnalyzer (decode, reassembly, RESP, pairing).
        .executableTarget(name: "FuzzTrace", dependencies: [core, "FuzzSupport"]),
        // Everything `netprobe report` does after reading: netprobe's custom blocks, the join,
        // attribution, the verdict, text / JSON / HTML.
        .executableTarget(name: "FuzzReport", dependencies: [core, "FuzzSupport"]),
    ]
)
