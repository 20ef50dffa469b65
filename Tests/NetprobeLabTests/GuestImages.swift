import Foundation
import NetprobeCore
@testable import NetprobeLab

/// Guest images a user could bring, made here from the lab's own built-in guest so that the
/// bring-your-own paths boot something real: its kernel, an initramfs whose init asks for its
/// address with busybox udhcpc (the built-in initramfs plus an overlay from the project's own
/// newc writer), an ext2 disk image that extlinux boots with that kernel and initramfs, and a
/// zero-filled disk that nothing boots. Made once per test process, in a temporary folder.
enum OwnGuestImages {
    struct Images: Sendable {
        var directory: String
        var kernel: String
        var dhcpInitrd: String
        var disk: String
        var zeroDisk: String
    }

    /// The kernel command line the tests give: the serial console, no reboot on panic.
    static let cmdline = "console=ttyS0 panic=-1"

    static let shared: Result<Images, any Error> = Result { try make() }

    static func get() throws -> Images { try shared.get() }

    static func make() throws -> Images {
        let base = NSTemporaryDirectory()
        // Folders of earlier test processes that are gone.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] where name.hasPrefix("netprobe-own-guest-") {
            if let pid = Int32(name.dropFirst("netprobe-own-guest-".count)), !ProcessTable.isAlive(pid) {
                try? FileManager.default.removeItem(atPath: base + name)
            }
        }
        let dir = base + "netprobe-own-guest-\(getpid())"
        try GuestImageBuilder.makeDirectory(dir)
        let image = try GuestImageBuilder.prepare(progress: { _ in })
        let images = Images(directory: dir, kernel: image.kernel, dhcpInitrd: "\(dir)/initrd-dhcp.gz", disk: "\(dir)/disk.img", zeroDisk: "\(dir)/zero.img")
        try InitramfsOverlay.dhcpVariant(of: image, to: images.dhcpInitrd)
        try makeExtlinuxDisk(images.disk, kernel: image.kernel, initrd: images.dhcpInitrd, directory: dir)
        try GuestImageBuilder.write([UInt8](repeating: 0, count: 1 << 20), to: images.zeroDisk)
        return images
    }

    /// An unpartitioned ext2 image (mkfs.ext2) with the kernel, the initramfs, an extlinux.conf
    /// on the serial console, and extlinux's boot sector in the file system's first block.
    static func makeExtlinuxDisk(_ disk: String, kernel: String, initrd: String, directory: String) throws {
        let mountPoint = "\(directory)/mnt"
        try GuestImageBuilder.makeDirectory(mountPoint)
        try Command.check(["truncate", "-s", "48M", disk])
        try Command.check(["mkfs.ext2", "-q", "-F", "-L", "npguest", disk])
        try Command.check(["mount", "-o", "loop", disk, mountPoint])
        var mounted = true
        defer { if mounted { _ = try? Command.run(["umount", mountPoint]) } }
        try FileManager.default.copyItem(atPath: kernel, toPath: "\(mountPoint)/vmlinuz")
        try FileManager.default.copyItem(atPath: initrd, toPath: "\(mountPoint)/initrd.gz")
        let config = """
            SERIAL 0 115200
            DEFAULT guest
            PROMPT 0
            TIMEOUT 0
            LABEL guest
              KERNEL /vmlinuz
              INITRD /initrd.gz
              APPEND \(cmdline)

            """
        try GuestImageBuilder.write(Array(config.utf8), to: "\(mountPoint)/extlinux.conf")
        try Command.check(["extlinux", "--install", mountPoint])
        try Command.check(["umount", mountPoint])
        mounted = false
    }

    /// `kernel:` with the DHCP initramfs.
    static func kernelSpec(_ images: Images, cmdline: String = cmdline) -> GuestSpec {
        GuestSpec(kind: .kernel, path: images.kernel, initrd: images.dhcpInitrd, cmdline: cmdline)
    }
}
