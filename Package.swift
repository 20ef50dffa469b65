// swift-tools-version: 6.0
// netprobe: where does the time go when Redis runs inside a VM?
//
// The folders follow the data flow (see README.md, "How it is built"):
//   C system libraries (CPcap, CNetlink) + a tiny C shim that also loads libvirt  ->  NetprobeCapture (live, root)
//   NetprobeCore (pure Swift: trace files -> decode -> TCP -> RESP -> pairs -> report)
//   netprobe (the command line, a thin layer over the two libraries)
import PackageDescription

let package = Package(
    name: "netprobe",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "netprobe", targets: ["netprobe"]),
        .library(name: "NetprobeCore", targets: ["NetprobeCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.6.0"),
    ],
    targets: [
        // C libraries from Debian packages, found through pkg-config.
        .systemLibrary(name: "CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        .systemLibrary(
            name: "CNetlink", pkgConfig: "libnl-route-3.0",
            providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]),
        // What Swift cannot import directly (function-like macros, thread-local error copies).
        // libvirt is not linked: the shim loads it when a command first needs it (see its header);
        // its headers come from libvirt-dev.
        .target(name: "CNetprobeShims", dependencies: ["CPcap", "CNetlink"]),
        // perf_event_open(2), its ioctls and the ring's head/tail, for the kernel event recorder.
        .target(name: "CNetprobePerf"),

        // The plumbing every layer above uses: one child-process spawner (posix_spawn, clean signal
        // mask, stdout and stderr drained together), one errno error with EINTR retried, one thread
        // helper. CNetprobeSystem: the GNU calls Swift's Glibc does not import (no library behind it).
        .target(name: "CNetprobeSystem"),
        .target(
            name: "NetprobeSystem",
            dependencies: ["CNetprobeSystem", .product(name: "SystemPackage", package: "swift-system")]),

        // The typed vocabulary every module shares: vantage roles, segments, setups, durations,
        // HOST:PORT, lab state. No dependencies, no C.
        .target(name: "NetprobeModel"),
        // The trace pipeline: trace files -> decode -> TCP reassembly -> RESP -> pairs per vantage
        // point -> the join across vantage points. Pure Swift, no C, no root. The one module with
        // speed tricks: release builds skip the dynamic exclusivity checks on the per-packet path
        // (~10 % of `report`'s time in perf); debug builds and the tests keep them.
        .target(
            name: "NetprobeTrace",
            dependencies: ["NetprobeModel", .product(name: "Histogram", package: "hdrhistogram-swift")],
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        // Where each joined request's time goes, in stages, and the verdict as enums and numbers.
        .target(name: "NetprobeAttribution", dependencies: ["NetprobeModel", "NetprobeTrace"]),
        // The report model and every sentence netprobe prints: text, JSON, HTML, compare.
        .target(name: "NetprobeReport", dependencies: ["NetprobeModel", "NetprobeTrace", "NetprobeAttribution", "CNetprobeSystem"]),
        // One import for all of the above (no code of its own).
        .target(name: "NetprobeCore", dependencies: ["NetprobeModel", "NetprobeTrace", "NetprobeAttribution", "NetprobeReport"]),
        // Live capture, netlink statistics and libvirt lookups.
        .target(
            name: "NetprobeCapture",
            dependencies: ["NetprobeCore", "NetprobeSystem", "CPcap", "CNetlink", "CNetprobeShims", "CNetprobePerf"]),
        // The built-in testbed: namespaces, bridge/tap/macvtap/veth, the Redis guest, QEMU, libvirtd.
        .target(name: "NetprobeLab", dependencies: ["NetprobeModel", "NetprobeCore", "NetprobeSystem"]),
        // The built-in RESP load generator (memtier-like), stamping requests on the capture clock.
        .target(
            name: "NetprobeLoad",
            dependencies: ["NetprobeModel", "NetprobeCore", "NetprobeSystem", .product(name: "Histogram", package: "hdrhistogram-swift")]),
        // Orchestration over the layers below: the lab run (up, warm-up, capture, report, down) that
        // the experiment and the selftest share, the selftest's faults, and capture planning.
        .target(
            name: "NetprobeHarness",
            dependencies: ["NetprobeCore", "NetprobeCapture", "NetprobeLab", "NetprobeLoad", "NetprobeSystem", "CNetprobeShims"]),
        .executableTarget(
            name: "netprobe",
            dependencies: [
                "NetprobeCore", "NetprobeCapture", "NetprobeLab", "NetprobeLoad", "NetprobeHarness", "NetprobeSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // swift run -c release netprobe-bench: report's speed and peak memory on a matrix of trace shapes,
        // against a bare libpcap loop over each shape's file and against tshark and tcpdump.
        .executableTarget(name: "netprobe-bench", dependencies: ["NetprobeCore", "CPcap", "TraceShapes"], path: "Benchmarks/TraceBenchmark"),
        // The shapes' synthesiser, written with the writers users' traces come from (libpcap's dumper,
        // netprobe capture's pcapng encoder, the load generator's ClientRecordWriter); a library so
        // that TraceShapesTests can check that report pairs every request synthesised.
        .target(name: "TraceShapes", dependencies: ["NetprobeCore", "NetprobeLoad", "CPcap"], path: "Benchmarks/TraceShapes"),
        // swift run -c release netprobe-capture-bench: Redis throughput with and without `netprobe capture`
        // (immediate and block delivery), alternating in one run on a lab; needs root and the netprobe binary.
        // NetprobeCapture for --floor: a capture that opens the same libpcap handles and discards every packet.
        .executableTarget(
            name: "netprobe-capture-bench", dependencies: ["NetprobeCore", "NetprobeCapture", "NetprobeSystem"], path: "Benchmarks/CaptureBenchmark"),
        // swift run -c release netprobe-kevents-bench: Redis throughput with and without the kernel event
        // recorder on a bridge lab, alternating in one run; needs root and the netprobe binary.
        .executableTarget(
            name: "netprobe-kevents-bench", dependencies: ["NetprobeCore", "NetprobeCapture", "NetprobeSystem"], path: "Benchmarks/KernelEventBenchmark"),

        .testTarget(name: "NetprobeModelTests", dependencies: ["NetprobeModel"]),
        .testTarget(name: "NetprobeSystemTests", dependencies: ["NetprobeSystem"]),
        .testTarget(name: "NetprobeHarnessTests", dependencies: ["NetprobeHarness", "NetprobeCore"]),
        .testTarget(
            name: "NetprobeCoreTests",
            dependencies: ["NetprobeCore", "NetprobeTrace", "NetprobeAttribution", "NetprobeReport"]),
        .testTarget(name: "NetprobeCLITests", dependencies: ["NetprobeCore", "NetprobeSystem", "netprobe"], exclude: ["golden"]),
        .testTarget(name: "NetprobeCaptureTests", dependencies: ["NetprobeCapture", "NetprobeCore", "NetprobeHarness", "NetprobeSystem", "netprobe"]),
        .testTarget(name: "NetprobeLabTests", dependencies: ["NetprobeLab", "NetprobeCore", "NetprobeSystem", "netprobe"]),
        .testTarget(name: "NetprobeLoadTests", dependencies: ["NetprobeLoad", "NetprobeCore", "NetprobeSystem"]),
        .testTarget(name: "TraceShapesTests", dependencies: ["TraceShapes", "NetprobeCore"]),
    ]
)
