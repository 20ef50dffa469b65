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
    ///
    /// A lab lends what it knows (its Redis, hypervisor and setup) only to a capture of its own:
    /// its libvirt domain, or interfaces that are all its vantage points. A lab seen only through
    /// a shared bridge (a domain defined by hand on the lab's bridge) lends its namespace, nothing
    /// else. Redis for INFO: `--redis`, else the load command's target, else the owning lab's,
    /// else the domain's address (a libvirt DHCP lease, else the neighbour table); the source is stored.
    /// - Parameters:
    ///   - labs: the labs to look the interfaces and the VM up in (every lab's state by default).
    ///   - netprobe: the binary to run for a `netprobe load` load command.
    public static func plan(_ request: CaptureRequest, labs: [LabState] = LabStore.all(),
                            netprobe: String = NetprobeExecutable.path, notice: Notice = { _ in }) throws -> CaptureConfiguration {
        var roles: [String: String] = [:]
        for r in request.roles { roles[r.interface] = r.role }
        var vantages: [CaptureVantage] = []
        /// The lab the captured VM or interfaces belong to.
        var owner: LabState?
        var domain: DomainInfo?
        var connect: String?
        /// Namespaces told by a device's MAC (the value nil: the current namespace).
        var placed: [String: String?] = [:]
        if let vm = request.vm {
            let named = labs.first { $0.libvirtDomain == vm && (request.libvirtURI == nil || request.libvirtURI == $0.libvirtURI) }
            let uri = request.libvirtURI ?? named?.libvirtURI ?? "qemu:///system"
            let found = try LibvirtConnection(uri: uri).domain(named: vm)
            guard found.active else {
                throw CaptureError("domain \(vm) is not running: its interfaces exist only while it runs (virsh -c \(uri) start \(vm))")
            }
            guard !found.interfaces.isEmpty else { throw CaptureError("domain \(vm) has no network interface") }
            connect = uri
            domain = found
            // The lab's own domain carries its mark (a domain by that name without one: a lab from before the mark).
            owner = named.flatMap { l in LabDomainMark.belongs(name: vm, xml: found.xml, toLab: l.name, labDomain: l.libvirtDomain) ? l : nil }
            for i in found.interfaces {
                // Device names repeat across namespaces (every lab has a virbr0 and a vnet0): the
                // host device is found by its MAC too (libvirt gives a tap the guest's MAC with
                // first byte fe; a macvtap has the guest's own), and its bridge or parent is in
                // the same namespace.
                var namespace: String??
                if request.namespace == nil, let target = i.targetDevice, let mac = i.mac?.lowercased(), mac.count == 17 {
                    namespace = NetworkNamespace.locate(interface: target, macs: [mac, "fe" + mac.dropFirst(2)])
                }
                for (name, r) in i.vantages where !vantages.contains(where: { $0.interface == name }) {
                    vantages.append(CaptureVantage(interface: name, role: roles[name] ?? r, namespace: nil))
                    if let namespace { placed.updateValue(namespace, forKey: name) }
                }
            }
        } else {
            for name in request.interfaces {
                vantages.append(CaptureVantage(interface: name, role: roles[name] ?? VantageRole.guess(interface: name).rawValue, namespace: nil))
            }
            owner = labs.first { l in
                vantages.allSatisfy { v in l.vantages.contains { $0.interface == v.interface } } && (request.namespace == nil || l.namespace == request.namespace)
            }
        }
        // Namespaces: --netns, else the owning lab's, else where the domain's device has its MAC,
        // else wherever the interface is found.
        var namespaceLab: LabState?
        for k in vantages.indices {
            if let netns = request.namespace {
                vantages[k].namespace = netns
            } else if let lv = owner?.vantages.first(where: { $0.interface == vantages[k].interface }) {
                vantages[k].namespace = lv.namespace
            } else if let ns = placed[vantages[k].interface] {
                vantages[k].namespace = ns
            } else {
                let (found, ns) = NetworkNamespace.locate(interface: vantages[k].interface)
                guard found else {
                    throw CaptureError("no interface named \(vantages[k].interface) here or in any network namespace (ip link; ip netns list)")
                }
                vantages[k].namespace = ns
            }
            if owner == nil, namespaceLab == nil,
               let l = labs.first(where: { $0.vantages.contains { $0.interface == vantages[k].interface && $0.namespace == vantages[k].namespace } }) {
                namespaceLab = l
            }
        }
        let clientNamespace = request.namespace ?? (owner ?? namespaceLab)?.namespace ?? vantages.first?.namespace
        let redis = redisAddress(request, owner: owner, domain: domain, uri: connect, namespace: vantages.first?.namespace, notice: notice)
        var c = CaptureConfiguration(vantages: vantages, output: request.output)
        c.settings.snapLength = request.snapLength == 0 ? 262_144 : request.snapLength
        c.settings.bufferBytes = request.bufferKiB * 1024
        c.settings.immediate = request.immediateMode
        let port = redis.flatMap { HostPort(parsing: $0.address) }.map { String($0.port) } ?? "6379"
        c.settings.filter = request.filter ?? "tcp port \(port)"
        c.durationNs = request.duration?.nanoseconds
        c.redisAddress = redis?.address
        c.redisAddressSource = redis?.source
        c.redisNamespace = clientNamespace
        c.redisPassword = try RedisPassword.load(file: request.redisPasswordFile, environment: ProcessInfo.processInfo.environment)
        c.loadCommand = request.load.isEmpty ? nil : request.load
        if let records = ClientRecordBlocks.temporaryPath(forLoad: request.load) {
            // netprobe load: keep its own per-request stamps as the client vantage point.
            // Run this very binary (the one on PATH may be another version, or absent).
            c.loadCommand = [netprobe] + request.load.dropFirst() + ["--timestamps-out", records, "--quiet"]
            c.finalBlocks = { write in try ClientRecordBlocks.read(path: records, into: write) }
            c.loadRecordsPath = records
        }
        c.loadNamespace = clientNamespace
        c.setup = domain?.interfaces.first?.setupKind ?? owner?.setup.rawValue
        c.vm = request.vm
        c.libvirtURI = connect
        c.domainXML = domain?.xml
        // The lab's probe found its hypervisor; any other domain says its own in its type.
        c.hypervisor = owner?.hypervisor ?? domain?.hypervisor
        c.progress = !request.quiet
        c.kernelEvents = request.kernelEvents.kinds
        if c.durationNs == nil && c.loadCommand == nil {
            notice("capturing until Ctrl-C (give --duration or a load command after -- to stop by itself)")
        }
        return c
    }

    /// The Redis to ask for INFO, and where its address came from (see `plan`); nil, with a
    /// notice, when none is known. A domain's address: a libvirt DHCP lease of its MAC, else its
    /// MAC's neighbour entry in `namespace` (where its tap is); Redis's default port.
    static func redisAddress(_ request: CaptureRequest, owner: LabState?, domain: DomainInfo?, uri: String?, namespace: String?,
                             notice: Notice) -> (address: String, source: RedisAddressSource)? {
        if let r = request.redis { return (r, .option) }
        if let t = LoadCommandLine.redisAddress(fromLoad: request.load) { return (t, .loadTarget) }
        if let owner { return (owner.redisAddress, .lab) }
        guard let domain, let uri else { return nil }
        let macs = domain.interfaces.compactMap { $0.mac?.lowercased() }
        var found: (String, RedisAddressSource)?
        if let lease = ((try? LibvirtConnection(uri: uri))?.leases(ofDomain: domain.name) ?? []).first(where: { macs.contains($0.mac) }) {
            found = (lease.address, .domainLease)
        } else {
            let seen = (try? NetworkNamespace.withNamespace(namespace) { try macs.flatMap(NeighbourTable.addresses(ofMAC:)) }) ?? []
            found = seen.first.map { ($0, .domainNeighbour) }
        }
        guard let (host, source) = found else {
            notice("no Redis INFO: no address of domain \(domain.name) is known yet (no libvirt DHCP lease, no neighbour entry for \(macs.joined(separator: ", "))); give --redis HOST:PORT, or a load command with its target")
            return nil
        }
        let address = HostPort(host: host, port: HostPort.redisPort).description
        notice("asking Redis at \(address) for INFO (domain \(domain.name)'s \(source == .domainLease ? "DHCP lease" : "neighbour entry"), Redis's default port; --redis names another)")
        return (address, source)
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
    /// binary entries, `ClientRecordFormat`), handed to `write` one at a time; removes the file
    /// once all are written (on an error it stays, for the caller to name).
    public static func read(path: String, into write: ([UInt8]) throws -> Void) throws {
        try ClientRecordReader(path: path).forEachBlock(write)
        try? FileManager.default.removeItem(atPath: path)
    }

    /// After a capture failed before storing them: `path` when it holds records (they are data:
    /// the file stays for the caller to name), nil when there is none or it is empty (the load
    /// ended before writing any; the empty file is removed).
    public static func kept(path: String) -> String? {
        guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int else { return nil }
        if size > 0 { return path }
        try? FileManager.default.removeItem(atPath: path)
        return nil
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
