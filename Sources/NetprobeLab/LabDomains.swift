import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import NetprobeCore

/// A libvirt domain on a lab's libvirtd that the lab did not make: one defined by hand on the
/// lab's bridge (an OSv or Rumprun image, say). `down` leaves the lab standing while one is
/// there, since removing the lab's libvirtd, its folder (which holds libvirt's definitions) and
/// its namespace would end and undefine that domain too; `status` lists them.
public struct ForeignDomain: Sendable, Equatable {
    public var name: String
    /// Running now; nil when libvirtd did not answer and the definition was read from its file.
    public var running: Bool?
}

/// The mark in a domain's XML that says which lab made it:
/// `<metadata><netprobe:lab xmlns:netprobe='urn:netprobe:lab' name='LAB'/></metadata>`
/// (libvirt keeps namespaced elements of `<metadata>` as they are).
public enum LabDomainMark {
    /// The XML namespace of the mark (also what `virsh metadata DOMAIN URI` asks for).
    public static let namespaceURI = "urn:netprobe:lab"

    /// The `<metadata>` element for a domain of lab `lab` (lab names need no escaping: letters,
    /// digits, '-', '_').
    static func metadata(lab: String) -> String {
        "<metadata>\n    <netprobe:lab xmlns:netprobe='\(namespaceURI)' name='\(lab)'/>\n  </metadata>"
    }

    /// The lab a domain XML's mark names; nil when it carries none (or is not XML).
    public static func lab(inDomainXML xml: String) -> String? {
        guard let document = try? XMLDocument(xmlString: xml, options: []),
              let nodes = try? document.nodes(forXPath: "/domain/metadata/*[local-name()='lab']") else { return nil }
        for case let element as XMLElement in nodes where element.uri == namespaceURI {
            return element.attribute(forName: "name")?.stringValue
        }
        return nil
    }

    /// Whether the domain `name` (its XML `xml`) is lab `lab`'s: its mark names the lab, or it
    /// carries no mark and is the domain the lab's state names (labs made before the mark).
    public static func belongs(name: String, xml: String, toLab lab: String, labDomain: String?) -> Bool {
        if let marked = self.lab(inDomainXML: xml) { return marked == lab }
        return name == (labDomain ?? lab)
    }

    /// The `<name>` of a domain XML.
    static func domainName(inXML xml: String) -> String? {
        guard let document = try? XMLDocument(xmlString: xml, options: []),
              let node = try? document.nodes(forXPath: "/domain/name").first else { return nil }
        return node.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

extension Lab {
    /// The domains on lab `name`'s libvirtd that the lab did not make (`LabDomainMark`). Asks the
    /// lab's libvirtd when it runs (`virsh list --all`, `dumpxml`); otherwise reads the
    /// definitions libvirtd keeps in the lab's private /etc/libvirt/qemu, which `down` would
    /// delete with the lab's folder. Empty for a lab without libvirt.
    static func foreignDomains(_ name: String, state: LabState?) -> [ForeignDomain] {
        let paths = LabPaths(name: name)
        let own = state?.libvirtDomain ?? name
        if let state, let uri = state.libvirtURI,
           let daemon = state.processes.first(where: { $0.what == "libvirtd" && isOurs($0, lab: name) }) {
            kill(daemon.pid, SIGCONT)  // a stopped libvirtd would leave each virsh waiting for its timeout
            if let found = askLibvirtd(uri: uri, lab: name, own: own) { return found }
        }
        let folder = "\(paths.libvirtDirectory)/etc/qemu"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".xml") }.sorted()
        return files.compactMap { file -> ForeignDomain? in
            guard let xml = try? String(contentsOfFile: "\(folder)/\(file)", encoding: .utf8),
                  let domain = LabDomainMark.domainName(inXML: xml),
                  !LabDomainMark.belongs(name: domain, xml: xml, toLab: name, labDomain: own) else { return nil }
            return ForeignDomain(name: domain, running: nil)
        }
    }

    /// The foreign domains as the lab's libvirtd lists them; nil when it does not answer.
    private static func askLibvirtd(uri: String, lab: String, own: String) -> [ForeignDomain]? {
        func names(_ arguments: [String]) -> [String]? {
            guard let out = try? Command.run(["virsh", "-c", uri] + arguments, timeout: 20), out.succeeded else { return nil }
            return out.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        guard let all = names(["list", "--all", "--name"]), let running = names(["list", "--name"]) else { return nil }
        var foreign: [ForeignDomain] = []
        for domain in all {
            guard let out = try? Command.run(["virsh", "-c", uri, "dumpxml", domain], timeout: 20), out.succeeded else {
                // Gone since the list, or unreadable: only the lab's own domain may be assumed the lab's.
                if domain != own { foreign.append(ForeignDomain(name: domain, running: running.contains(domain))) }
                continue
            }
            if !LabDomainMark.belongs(name: domain, xml: out.stdout, toLab: lab, labDomain: own) {
                foreign.append(ForeignDomain(name: domain, running: running.contains(domain)))
            }
        }
        return foreign
    }
}
