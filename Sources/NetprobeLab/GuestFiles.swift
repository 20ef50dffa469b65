import Foundation
import NetprobeCore

/// Looks at the files of a bring-your-own guest before anything is built: each must exist and be
/// readable (else `up` fails at once), and what the first bytes say is kept as notes for the
/// messages (a raw disk without a boot signature, an ELF kernel without a multiboot header).
/// The notes do not stop the boot: the guest's console has the last word.
enum GuestFiles {
    struct Inspection: Equatable {
        /// The disk format to give QEMU (`disk:` only): as asked, else read from the file.
        var diskFormat: String?
        /// What the files' first bytes say, for progress lines and error messages.
        var notes: [String] = []
    }

    /// qcow2's magic, "QFI\xfb", at byte 0.
    static let qcow2Magic: [UInt8] = [0x51, 0x46, 0x49, 0xFB]
    /// Multiboot (version 1) header magic, 32-bit aligned within the first 8192 bytes.
    static let multibootMagic: UInt32 = 0x1BAD_B002
    /// Multiboot 2's, which QEMU's -kernel does not load.
    static let multiboot2Magic: UInt32 = 0xE852_50D6

    /// Checks the spec's files and reads their kind; throws `LabError.guestFileMissing` for a file
    /// that is not there or cannot be read.
    static func inspect(_ spec: GuestSpec) throws -> Inspection {
        var inspection = Inspection()
        switch spec.kind {
        case .builtin:
            return inspection
        case .disk:
            let path = spec.path ?? ""
            let head = try firstBytes(path, role: "disk image", count: 512)
            let detected = head.starts(with: qcow2Magic) ? "qcow2" : "raw"
            inspection.diskFormat = spec.format ?? detected
            if let asked = spec.format, asked != detected {
                inspection.notes.append("\(path) looks like a \(detected) image, but format=\(asked) was given")
            }
            if detected == "raw" && !(head.count == 512 && head[510] == 0x55 && head[511] == 0xAA) {
                inspection.notes.append("\(path) has no boot signature (55 aa) at byte 510: a BIOS will not boot it")
            }
        case .kernel:
            let path = spec.path ?? ""
            let head = try firstBytes(path, role: "kernel", count: 8192)
            inspection.notes += kernelNotes(head, path: path)
            if let initrd = spec.initrd { _ = try firstBytes(initrd, role: "initrd", count: 1) }
        }
        return inspection
    }

    /// What kind of kernel `head` (its first 8 KiB) starts: a note only when QEMU will not boot it.
    static func kernelNotes(_ head: [UInt8], path: String) -> [String] {
        let isBzImage = head.count > 0x206 && Array(head[0x202..<0x206]) == Array("HdrS".utf8)
        if isBzImage { return [] }
        let isELF = head.starts(with: [0x7F, 0x45, 0x4C, 0x46])
        /// A little-endian 32-bit word at a 4-byte aligned offset (where multiboot headers sit).
        func hasWord(_ magic: UInt32) -> Bool {
            stride(from: 0, through: head.count - 4, by: 4).contains { k in
                head[k..<(k + 4)].reversed().reduce(0) { $0 << 8 | UInt32($1) } == magic
            }
        }
        if hasWord(multibootMagic) { return [] }
        if hasWord(multiboot2Magic) {
            return ["\(path) has a multiboot 2 header only: QEMU's -kernel loads Linux bzImages and multiboot (version 1) kernels"]
        }
        if isELF {
            return ["\(path) is an ELF file without a multiboot header: QEMU's -kernel boots it only if it carries a PVH entry note"]
        }
        return ["\(path) is neither a Linux bzImage nor an ELF kernel: QEMU's -kernel will probably refuse it"]
    }

    /// Up to `count` bytes from the start of `path`.
    static func firstBytes(_ path: String, role: String, count: Int) throws -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw LabError.guestFileMissing(path: path, role: role, reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw LabError.guestFileMissing(path: path, role: role, reason: "it is a folder") }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw LabError.guestFileMissing(path: path, role: role, reason: "it cannot be read (permissions?)")
        }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: count)) ?? nil
        guard let data, !data.isEmpty else { throw LabError.guestFileMissing(path: path, role: role, reason: "it is empty") }
        return Array(data)
    }

    /// The absolute form of `path` (QEMU and libvirtd run in other folders).
    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}
