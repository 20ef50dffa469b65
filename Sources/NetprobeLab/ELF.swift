import Foundation

/// Just enough of the 64-bit little-endian ELF format to answer two questions: does a program
/// need a dynamic loader (a PT_INTERP program header), and what is in a named section (a kernel
/// module's `.modinfo`, which lists its dependencies).
struct ELFFile {
    let bytes: [UInt8]

    /// Parses the identification bytes; nil for anything but ELF64 little-endian.
    init?(_ bytes: [UInt8]) {
        guard bytes.count >= 64, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46,
              bytes[4] == 2 /* ELFCLASS64 */, bytes[5] == 1 /* little-endian */ else { return nil }
        self.bytes = bytes
    }

    /// True when the file at `path` is an ELF program with an interpreter (dynamically linked).
    static func isDynamicallyLinked(path: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: path), let elf = ELFFile(Array(data)) else { return false }
        return elf.hasInterpreter
    }

    private func u16(_ at: Int) -> Int { at + 2 <= bytes.count ? Int(bytes[at]) | Int(bytes[at + 1]) << 8 : 0 }
    private func u32(_ at: Int) -> Int { at + 4 <= bytes.count ? u16(at) | u16(at + 2) << 16 : 0 }
    private func u64(_ at: Int) -> Int { at + 8 <= bytes.count ? u32(at) | u32(at + 4) << 32 : 0 }

    /// Offsets in the ELF64 header (e_phoff, e_shoff, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx).
    private enum Header {
        static let programHeaderOffset = 0x20, sectionHeaderOffset = 0x28
        static let programHeaderSize = 0x36, programHeaderCount = 0x38
        static let sectionHeaderSize = 0x3A, sectionHeaderCount = 0x3C, sectionNameIndex = 0x3E
    }

    /// Whether a PT_INTERP (type 3) program header is present.
    var hasInterpreter: Bool {
        let offset = u64(Header.programHeaderOffset), size = u16(Header.programHeaderSize), count = u16(Header.programHeaderCount)
        guard size > 0 else { return false }
        for i in 0..<count where u32(offset + i * size) == 3 { return true }
        return false
    }

    /// The bytes of the section called `name`, or nil.
    func section(named name: String) -> ArraySlice<UInt8>? {
        let offset = u64(Header.sectionHeaderOffset), size = u16(Header.sectionHeaderSize), count = u16(Header.sectionHeaderCount)
        let namesIndex = u16(Header.sectionNameIndex)
        guard size >= 64, count > 0, namesIndex < count, offset + count * size <= bytes.count else { return nil }
        func body(_ index: Int) -> ArraySlice<UInt8>? {
            let header = offset + index * size
            let start = u64(header + 24), length = u64(header + 32)  // sh_offset, sh_size
            guard start >= 0, length >= 0, start + length <= bytes.count else { return nil }
            return bytes[start..<(start + length)]
        }
        guard let names = body(namesIndex) else { return nil }
        let wanted = Array(name.utf8)
        for i in 0..<count {
            let nameOffset = names.startIndex + u32(offset + i * size)  // sh_name
            guard nameOffset + wanted.count < names.endIndex else { continue }
            if Array(names[nameOffset..<(nameOffset + wanted.count)]) == wanted, names[nameOffset + wanted.count] == 0 {
                return body(i)
            }
        }
        return nil
    }

    /// The NUL-separated `key=value` strings of a section such as `.modinfo`.
    func strings(inSection name: String) -> [String] {
        guard let section = section(named: name) else { return [] }
        return section.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }
}
