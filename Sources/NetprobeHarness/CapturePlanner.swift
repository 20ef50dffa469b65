import Foundation
import NetprobeCapture
import NetprobeCore
import NetprobeLab
import NetprobeLoad

/// Turns a `CaptureRequest` into what the capture session runs: which interfaces (from `-i`, or
/// libvirt's domain), each one's role and network namespace, the lab it belongs to, the Redis to
/// ask for INFO, and the load command (netprobe's own load generator keeps its request records).
public enum CapturePlanner {
    /// Prints a note before the capture (on stderr in the command).
    public typealias Notice = (String) -> Void

    /// Resolves vantage points, namespaces and the Redis address into a configuration.
    /// - Parameters:
    ///   - labs: the labs to look the interfaces and the VM up in (every lab's state by default).
    ///   - netprobe: the binary to run for a `netprobe load` load command.
    public static func plan(_ request: CaptureRequest, labs: [LabState] = LabStore.all(),
                            netprobe: String = NetprobeExecutable.path, notice: Notice = { _ in }) throws -> CaptureConfiguration {
        var roles: [String: String] = [:]
        for r in request.roles { roles[r.interface] = r.role }
        var vantages: [CaptureVantage] = []
        var lab: LabState?
        var domainXML: String?
        var setup: String?
        if let vm = request.vm {
            let connect = request.libvirtURI ?? labs.first { $0.libvirtDomain == vm }?.libvirtURI ?? "qemu:///system"
            let domain = try LibvirtConnection(uri: connect).domain(named: vm)
            guard domain.active else {
                throw CaptureError("domain \(vm) is not running: its interfaces exist only while it runs (virsh -c \(connect) start \(vm))")
            }
            guard !domain.interfaces.isEmpty else { throw CaptureError("domain \(vm) has no network interface") }
            domainXML = domain.xml
            setup = domain.interfaces.first?.setupKind
            lab = labs.first { $0.libvirtDomain == vm }
            for i in domain.interfaces {
                for (name, r) in i.vantages where !vantages.contains(where: { $0.interface == name }) {
                    vantages.append(CaptureVantage(interface: name, role: roles[name] ?? r, namespace: nil))
                }
            }
        } else {
            for name in request.interfaces {
                vantages.append(CaptureVantage(interface: name, role: roles[name] ?? VantageRole.guess(interface: name).rawValue, namespace: nil))
            }
            lab = labs.first { l in
                vantages.allSatisfy { v in l.vantages.contains { $0.interface == v.interface } } && (request.namespace == nil || l.namespace == request.namespace)
            }
        }
        // Namespaces: --netns, else the lab's, else wherever the interface is found.
        for k in vantages.indices {
            if let netns = request.namespace {
                vantages[k].namespace = netns
            } else if let lv = lab?.vantages.first(where: { $0.interface == vantages[k].interface }) {
                vantages[k].namespace = lv.namespace
            } else {
                let (found, ns) = NetworkNamespace.locate(interface: vantages[k].interface)
                guard found else {
                    throw CaptureError("no interface named \(vantages[k].interface) here or in any network namespace (ip link; ip netns list)")
                }
                vantages[k].namespace = ns
            }
            if lab == nil, let l = labs.first(where: { $0.vantages.contains { $0.interface == vantages[k].interface && $0.namespace == vantages[k].namespace } }) {
                lab = l
            }
        }
        let clientNamespace = request.namespace ?? lab?.namespace ?? vantages.first?.namespace
        let redisAddress = request.redis ?? lab?.redisAddress ?? LoadCommandLine.redisAddress(fromLoad: request.load)
        var c = CaptureConfiguration(vantages: vantages, output: request.output)
        c.settings.snapLength = request.snapLength == 0 ? 262_144 : request.snapLength
        c.settings.bufferBytes = request.bufferKiB * 1024
        c.settings.immediate = request.immediateMode
        let port = redisAddress.flatMap { HostPort(parsing: $0) }.map { String($0.port) } ?? "6379"
        c.settings.filter = request.filter ?? "tcp port \(port)"
        c.durationNs = request.duration?.nanoseconds
        c.redisAddress = redisAddress
        c.redisNamespace = clientNamespace
        c.redisPassword = try RedisPassword.load(file: request.redisPasswordFile, environment: ProcessInfo.processInfo.environment)
        c.loadCommand = request.load.isEmpty ? nil : request.load
        if let records = ClientRecordBlocks.temporaryPath(forLoad: request.load) {
            // netprobe load: keep its own per-request stamps as the client vantage point.
            // Run this very binary (the one on PATH may be another version, or absent).
            c.loadCommand = [netprobe] + request.load.dropFirst() + ["--timestamps-out", records, "--quiet"]
            c.finalBlocks = { write in try ClientRecordBlocks.read(path: records, into: write) }
        }
        c.loadNamespace = clientNamespace
        c.setup = setup ?? lab?.setup.rawValue
        c.vm = request.vm
        c.libvirtURI = request.vm == nil ? nil : (request.libvirtURI ?? lab?.libvirtURI ?? "qemu:///system")
        c.domainXML = domainXML
        c.hypervisor = lab?.hypervisor
        c.progress = !request.quiet
        c.kernelEvents = request.kernelEvents.kinds
        if c.durationNs == nil && c.loadCommand == nil {
            notice("capturing until Ctrl-C (give --duration or a load command after -- to stop by itself)")
        }
        return c
    }
}

/// The load generator's records as trace blocks.
public enum ClientRecordBlocks {
    /// A temporary file for `netprobe load`'s records when the load command is netprobe's own
    /// (and does not name one itself).
    public static func temporaryPath(forLoad argv: [String]) -> String? {
        guard argv.count >= 2, URL(fileURLWithPath: argv[0]).lastPathComponent == "netprobe", argv[1] == "load",
              !argv.contains(where: { $0.hasPrefix("--timestamps-out") }) else { return nil }
        return NSTemporaryDirectory() + "netprobe-load-\(getpid())-\(UUID().uuidString).npts"
    }

    /// The records in `path` as trace blocks (the file cut into self-contained blocks of its
    /// binary entries, `ClientRecordFormat`), handed to `write` one at a time; removes the file.
    public static func read(path: String, into write: ([UInt8]) throws -> Void) throws {
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ClientRecordReader(path: path).forEachBlock(write)
    }
}

/// Where a load command sends its requests.
public enum LoadCommandLine {
    /// HOST:PORT from a redis-benchmark / memtier_benchmark / netprobe load command line.
    public static func redisAddress(fromLoad argv: [String]) -> String? {
        guard !argv.isEmpty else { return nil }
        var host: String?
        var port: String?
        var i = 1
        while i < argv.count {
            let a = argv[i]
            let next = i + 1 < argv.count ? argv[i + 1] : nil
            switch a {
            case "-h", "-s", "--server", "--host": host = next; i += 1
            case "-p", "--port": port = next; i += 1
            case "--target": if let t = next { return t }
            default:
                if a.hasPrefix("--server=") { host = String(a.dropFirst(9)) }
                if a.hasPrefix("--port=") { port = String(a.dropFirst(7)) }
                if a.hasPrefix("--target=") { return String(a.dropFirst(9)) }
            }
            i += 1
        }
        guard host != nil || port != nil else { return nil }
        return "\(host ?? "127.0.0.1"):\(port ?? "6379")"
    }
}
