// swift-tools-version: 6.0
// libFuzzer targets for netprobe's parsers (issue 7). Build and run with Fuzz/run (see Fuzz/README.md).
import PackageDescription

let package = Package(
    name: "netprobe-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [.package(name: "netprobe", path: "..")],
    targets: [
        // Whole traces: pcap and pcapng readers, packet decoding, TCP reassembly, RESP, pairing.
        .executableTarget(name: "FuzzTrace", dependencies: [.product(name: "NetprobeCore", package: "netprobe")]),
        // The RESP decoder alone, both roles, on arbitrary chunkings.
        .executableTarget(name: "FuzzRESP", dependencies: [.product(name: "NetprobeCore", package: "netprobe")]),
    ]
)
