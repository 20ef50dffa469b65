import Foundation

/// A cpio archive in the "newc" format (magic 070701), the format the Linux kernel unpacks as an
/// initramfs. Written here rather than with `find | cpio` so that the archive is reproducible
/// (fixed times and owners) and needs no staging folder.
///
/// Each entry: a 110-byte ASCII header (the magic and 13 eight-digit hex fields), the path and a
/// NUL, padding to a multiple of 4, the data, padding to a multiple of 4. The archive ends with an
/// entry named `TRAILER!!!`.
struct NewcArchive {
    private(set) var bytes: [UInt8] = []
    private var nextInode: UInt32 = 1
    private var directories: Set<String> = [""]

    /// File type bits of `st_mode`.
    enum FileType: UInt32 {
        case directory = 0o040000, regular = 0o100000, symlink = 0o120000, characterDevice = 0o020000
    }

    /// Adds a directory (and any missing parents).
    mutating func directory(_ path: String, permissions: UInt32 = 0o755) {
        let clean = Self.normalize(path)
        guard !directories.contains(clean) else { return }
        addParents(of: clean)
        directories.insert(clean)
        append(clean, type: .directory, permissions: permissions, links: 2, data: [])
    }

    /// Adds a regular file (parents are added as needed).
    mutating func file(_ path: String, contents: [UInt8], permissions: UInt32 = 0o644) {
        let clean = Self.normalize(path)
        addParents(of: clean)
        append(clean, type: .regular, permissions: permissions, links: 1, data: contents)
    }

    /// Adds a symbolic link pointing at `target`.
    mutating func symlink(_ path: String, target: String) {
        let clean = Self.normalize(path)
        addParents(of: clean)
        append(clean, type: .symlink, permissions: 0o777, links: 1, data: Array(target.utf8))
    }

    /// Adds a character device node (e.g. dev/console, 5:1).
    mutating func characterDevice(_ path: String, major: UInt32, minor: UInt32, permissions: UInt32 = 0o600) {
        let clean = Self.normalize(path)
        addParents(of: clean)
        append(clean, type: .characterDevice, permissions: permissions, links: 1, data: [], rdev: (major, minor))
    }

    /// Appends the trailer and returns the archive.
    mutating func finish() -> [UInt8] {
        append("TRAILER!!!", type: nil, permissions: 0, links: 1, data: [], inode: 0)
        return bytes
    }

    /// Paths inside the archive are relative ("bin/busybox"), without "./" or a leading "/".
    static func normalize(_ path: String) -> String {
        var p = Substring(path)
        while p.hasPrefix("/") || p.hasPrefix("./") { p = p.hasPrefix("/") ? p.dropFirst() : p.dropFirst(2) }
        while p.hasSuffix("/") { p = p.dropLast() }
        return String(p)
    }

    private mutating func addParents(of path: String) {
        let parts = path.split(separator: "/").dropLast()
        var prefix = ""
        for part in parts {
            prefix = prefix.isEmpty ? String(part) : "\(prefix)/\(part)"
            directory(prefix)
        }
    }

    private mutating func append(_ name: String, type: FileType?, permissions: UInt32, links: UInt32, data: [UInt8],
                                 rdev: (UInt32, UInt32) = (0, 0), inode: UInt32? = nil) {
        let ino = inode ?? nextInode
        if inode == nil { nextInode += 1 }
        let nameBytes = Array(name.utf8) + [0]
        let fields: [UInt32] = [
            ino, (type?.rawValue ?? 0) | permissions, 0 /* uid */, 0 /* gid */, links, 0 /* mtime */,
            UInt32(data.count), 0, 0 /* devmajor, devminor */, rdev.0, rdev.1, UInt32(nameBytes.count), 0 /* check */,
        ]
        var header = "070701"
        for field in fields {
            let hex = String(field, radix: 16, uppercase: true)
            header += String(repeating: "0", count: 8 - hex.count) + hex
        }
        bytes += Array(header.utf8)
        bytes += nameBytes
        pad()
        bytes += data
        pad()
    }

    private mutating func pad() {
        while bytes.count % 4 != 0 { bytes.append(0) }
    }
}

/// A variant of an initramfs: `base` (a gzip'd newc archive, e.g. the built-in guest's
/// initrd.gz) followed by a second gzip'd archive of `files`. The kernel unpacks concatenated
/// archives in order, a later file replacing an earlier one of the same path, so a new `/init`
/// (the DHCP variant of `GuestInit`) needs no unpacking of the base.
enum InitramfsOverlay {
    /// A file of the overlay: path in the archive, contents, permissions.
    struct File {
        var path: String
        var contents: String
        var permissions: UInt32 = 0o755
    }

    /// Writes base + overlay to `output`.
    static func write(base: String, files: [File], to output: String) throws {
        var archive = NewcArchive()
        for file in files { archive.file(file.path, contents: Array(file.contents.utf8), permissions: file.permissions) }
        let cpio = output + ".overlay.cpio"
        try GuestImageBuilder.write(archive.finish(), to: cpio)
        defer { try? FileManager.default.removeItem(atPath: cpio + ".gz") }
        try Command.check(["gzip", "-9", "-n", "-f", cpio], timeout: 120)
        var bytes = try GuestImageBuilder.read(base)
        bytes += try GuestImageBuilder.read(cpio + ".gz")
        try GuestImageBuilder.write(bytes, to: output)
    }

    /// The built-in guest's initramfs with the DHCP init (`GuestInit.dhcpScript`).
    static func dhcpVariant(of image: GuestImage, to output: String) throws {
        try write(base: image.initrd, files: [
            File(path: "init", contents: GuestInit.dhcpScript),
            File(path: GuestInit.udhcpcScriptPath, contents: GuestInit.udhcpcScript),
        ], to: output)
    }
}
