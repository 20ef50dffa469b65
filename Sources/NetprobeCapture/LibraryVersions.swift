import CNetprobeShims

/// The versions of the C libraries netprobe uses.
///
/// Calling this proves at run time that libpcap and libnl-3/libnl-route-3 were linked and that
/// libvirt, which netprobe loads only when a command needs it, can be loaded.
public enum LibraryVersions {
    /// One human-readable line per library.
    public static var lines: [String] {
        let virt = CNetprobe_libvirt_version()
        let virtText = virt < 0
            ? "libvirt (cannot be loaded)"
            : "libvirt \(virt / 1_000_000).\((virt / 1000) % 1000).\(virt % 1000)"
        return [
            String(cString: CNetprobe_pcap_version()),
            String(cString: CNetprobe_libnl_version()),
            virtText,
        ]
    }
}
