import CNetprobeShims
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// One network interface of a libvirt domain, from its live XML.
public struct DomainInterface: Codable, Sendable, Equatable {
    /// bridge, network, direct (macvtap), ethernet, user ...
    public var type: String
    /// The host device: vnetN for a tap, macvtapN for direct. Present only while the domain runs.
    public var targetDevice: String?
    public var sourceBridge: String?
    public var sourceNetwork: String?
    /// direct: the parent device, and the macvtap mode (vepa by default, bridge, private, passthrough).
    public var sourceDevice: String?
    public var sourceMode: String?
    /// virtio, e1000 ...
    public var model: String?
    /// The backend driver: vhost (in-kernel vhost-net) or qemu (userspace); nil when the XML does
    /// not say (libvirt then uses vhost when /dev/vhost-net exists).
    public var driver: String?
    public var mac: String?

    /// The kind of setup this interface is, in netprobe's words.
    public var setupKind: String {
        switch type {
        case "direct": return "macvtap"
        case "bridge", "network":
            if driver == "vhost" { return "vhost-net" }
            if driver == "qemu" { return "bridge" }
            return FileManager.default.fileExists(atPath: "/dev/vhost-net") ? "vhost-net" : "bridge"
        default: return type
        }
    }

    /// The capture points for this interface: (device, role). The host device first.
    public var vantages: [(interface: String, role: String)] {
        var out: [(String, String)] = []
        if let target = targetDevice { out.append((target, type == "direct" ? "macvtap" : "tap")) }
        if let bridge = sourceBridge { out.append((bridge, "bridge")) }
        if type == "direct", let parent = sourceDevice { out.append((parent, "parent")) }
        return out
    }
}

/// A libvirt domain as netprobe sees it.
public struct DomainInfo: Codable, Sendable, Equatable {
    public var name: String
    public var active: Bool
    public var interfaces: [DomainInterface]
    public var xml: String

    /// "kvm" or "tcg" from the domain's type (`<domain type='kvm'>`; type `qemu` is QEMU's own
    /// emulation, TCG); nil for other types or an XML that cannot be read.
    public var hypervisor: String? {
        let type = (try? XMLDocument(xmlString: xml, options: []).rootElement()?.attribute(forName: "type")?.stringValue) ?? nil
        switch type {
        case "kvm": return "kvm"
        case "qemu": return "tcg"
        default: return nil
        }
    }
}

/// A read-only libvirt connection (virConnectOpenReadOnly); closes it in `deinit`.
public final class LibvirtConnection {
    public let uri: String
    private let connection: OpaquePointer

    /// Opens `uri` read-only. Errors say what to check (libvirtd running? the URI?).
    public init(uri: String = "qemu:///system") throws {
        self.uri = uri
        // Loaded here, not linked: commands that never ask libvirt do not carry it.
        var why = [CChar](repeating: 0, count: 512)
        if CNetprobe_libvirt_load(&why, why.count) != 0 {
            let text = String(decoding: why.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw CaptureError("cannot load libvirt (\(text)): install the libvirt0 package (Debian) to use -c and --vm")
        }
        // libvirt prints every error to stderr unless a handler is set: netprobe reports them itself.
        CNetprobe_virSetErrorFunc(nil) { _, _ in }
        guard let c = CNetprobe_virConnectOpenReadOnly(uri) else {
            let detail = Self.lastError()
            throw CaptureError("cannot connect to libvirt at \(uri): \(detail). Is libvirtd running (for a lab VM: netprobe lab status), and is the URI right (-c, as in virsh)?")
        }
        connection = c
    }

    deinit { CNetprobe_virConnectClose(connection) }

    /// The text of this thread's last libvirt error (virGetLastError is thread-local: call right
    /// after the failing call, on the same thread).
    static func lastError() -> String {
        guard let e = CNetprobe_virGetLastError(), let message = e.pointee.message else { return "unknown libvirt error" }
        return String(cString: message)
    }

    /// Every domain, running or not (virConnectListAllDomains).
    public func domains() throws -> [DomainInfo] {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let n = CNetprobe_virConnectListAllDomains(connection, &list, 0)
        guard n >= 0, let list else { throw CaptureError("listing domains at \(uri) failed: \(Self.lastError())") }
        defer {
            for i in 0..<Int(n) { if let d = list[i] { CNetprobe_virDomainFree(d) } }
            free(list)
        }
        return try (0..<Int(n)).compactMap { i in try list[i].map { try info($0) } }
    }

    /// The named domain (virDomainLookupByName). Throws with what to check when it is unknown.
    public func domain(named name: String) throws -> DomainInfo {
        guard let d = CNetprobe_virDomainLookupByName(connection, name) else {
            let known = (try? domains().map(\.name)) ?? []
            throw CaptureError("no domain named \(name) at \(uri)\(known.isEmpty ? " (it has none)" : "; it has: \(known.joined(separator: ", "))"). Check with: virsh -c \(uri) list --all")
        }
        defer { CNetprobe_virDomainFree(d) }
        return try info(d)
    }

    /// The addresses of domain `name`'s interfaces in DHCP leases that libvirt keeps (its own
    /// networks' dnsmasq; virDomainInterfaceAddresses with VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
    /// which a read-only connection may ask), as (MAC in lower case, address), IPv4 first. Empty
    /// when there are none: a domain on a plain bridge has no libvirt lease.
    public func leases(ofDomain name: String) -> [(mac: String, address: String)] {
        guard let d = CNetprobe_virDomainLookupByName(connection, name) else { return [] }
        defer { CNetprobe_virDomainFree(d) }
        var list: UnsafeMutablePointer<virDomainInterfacePtr?>?
        let n = CNetprobe_virDomainInterfaceAddresses(d, &list, UInt32(VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE.rawValue), 0)
        guard n > 0, let list else { return [] }
        defer {
            for i in 0..<Int(n) { if let iface = list[i] { CNetprobe_virDomainInterfaceFree(iface) } }
            free(list)
        }
        var out: [(mac: String, address: String)] = []
        for i in 0..<Int(n) {
            guard let iface = list[i]?.pointee else { continue }
            let mac = iface.hwaddr.map { String(cString: $0).lowercased() } ?? ""
            for k in 0..<Int(iface.naddrs) {
                if let text = iface.addrs?[k].addr { out.append((mac, String(cString: text))) }
            }
        }
        return out.filter { !$0.address.contains(":") } + out.filter { $0.address.contains(":") }
    }

    private func info(_ d: OpaquePointer) throws -> DomainInfo {
        let name = CNetprobe_virDomainGetName(d).map { String(cString: $0) } ?? "?"
        let active = CNetprobe_virDomainIsActive(d) == 1
        guard let raw = CNetprobe_virDomainGetXMLDesc(d, 0) else {
            throw CaptureError("cannot read the XML of domain \(name): \(Self.lastError())")
        }
        let xml = String(cString: raw)
        free(raw)
        return DomainInfo(name: name, active: active, interfaces: try Self.interfaces(fromXML: xml), xml: xml)
    }

    /// Parses `<devices><interface>` elements of a domain XML.
    public static func interfaces(fromXML xml: String) throws -> [DomainInterface] {
        let document = try XMLDocument(xmlString: xml, options: [])
        let nodes = try document.nodes(forXPath: "/domain/devices/interface")
        return nodes.compactMap { node -> DomainInterface? in
            guard let e = node as? XMLElement else { return nil }
            func attribute(_ child: String, _ name: String) -> String? {
                e.elements(forName: child).first?.attribute(forName: name)?.stringValue
            }
            return DomainInterface(
                type: e.attribute(forName: "type")?.stringValue ?? "unknown",
                targetDevice: attribute("target", "dev"),
                sourceBridge: attribute("source", "bridge"),
                sourceNetwork: attribute("source", "network"),
                sourceDevice: attribute("source", "dev"),
                sourceMode: attribute("source", "mode"),
                model: attribute("model", "type"),
                driver: attribute("driver", "name"),
                mac: attribute("mac", "address"))
        }
    }
}
