import CNetprobeShims

/// The versions of the C libraries netprobe is linked against.
///
/// Calling this proves at run time that libpcap, libnl-3/libnl-route-3 and libvirt were found and
/// linked (the build links all three from the start).
public enum LibraryVersions {
    /// One human-readable line per library.
    public static var lines: [String] {
        let virt = CNetprobe_libvirt_version()
        let virtText = virt < 0
            ? "libvirt (version unknown)"
            : "libvirt \(virt / 1_000_000).\((virt / 1000) % 1000).\(virt % 1000)"
        return [
            String(cString: CNetprobe_pcap_version()),
            String(cString: CNetprobe_libnl_version()),
            virtText,
        ]
    }
}
