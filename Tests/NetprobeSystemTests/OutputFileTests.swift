import Foundation
import Testing
@testable import NetprobeSystem

/// The one rule for files netprobe writes (`capture -w`, `report -w`, `compare -w`).
@Suite("OutputFile: new files, replaced regular files, and what is refused")
struct OutputFileTests {
    /// A fresh directory, removed by the caller.
    static func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "netprobe-output-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        return dir
    }

    static let pcapng: [UInt8] = [0x0A, 0x0D, 0x0D, 0x0A, 0x1C, 0, 0, 0, 0x4D, 0x3C, 0x2B, 0x1A]

    /// report's policy in small: refuse files that start like a pcapng or a nanosecond pcap.
    static func refusing(inputs: [String]) -> OutputFile.Policy {
        .replaceUnless(inputs: inputs) { head in
            if head.starts(with: [0x0A, 0x0D, 0x0D, 0x0A]) { return "holds a pcapng trace" }
            if head.starts(with: [0x4d, 0x3c, 0xb2, 0xa1]) { return "holds a pcap trace" }
            return nil
        }
    }

    static func contents(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map { Array($0) } }

    @Test("a new file is created; an existing regular file is replaced; a character device is written to")
    func allowed() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/out.txt"
        try OutputFile.check(path: path, policy: Self.refusing(inputs: []))
        try OutputFile.create(path: path, policy: Self.refusing(inputs: [])).write(Array("a long first text\n".utf8))
        try OutputFile.create(path: path, policy: Self.refusing(inputs: [])).write(Array("second\n".utf8))
        #expect(Self.contents(path) == Array("second\n".utf8))
        // capture -w replaces an old trace, as tcpdump -w does.
        try Data(Self.pcapng).write(to: URL(fileURLWithPath: path))
        try OutputFile.create(path: path, policy: .replaceRegularFile).write([1, 2, 3, 4])
        #expect(Self.contents(path) == [1, 2, 3, 4])
        try OutputFile.check(path: "/dev/null", policy: Self.refusing(inputs: []))
        try OutputFile.create(path: "/dev/null", policy: Self.refusing(inputs: [])).write([1])
    }

    @Test("a write that fails (/dev/full) is an error naming the file and the reason")
    func failedWrite() throws {
        let file = try OutputFile.create(path: "/dev/full", policy: .replaceRegularFile)
        #expect(throws: OutputFileError(path: "/dev/full", "writing failed", errno: Errno(rawValue: ENOSPC))) { try file.write([1, 2, 3]) }
    }

    @Test("a symbolic link at the path is refused, dangling or not, and its target is left alone")
    func symbolicLink() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let target = dir + "/precious", link = dir + "/trace.pcapng", dangling = dir + "/dangling.pcapng"
        try Data("keep me\n".utf8).write(to: URL(fileURLWithPath: target))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: dir + "/would-be-created")
        for path in [link, dangling] {
            for policy in [OutputFile.Policy.replaceRegularFile, Self.refusing(inputs: [])] {
                let refused = #expect(throws: OutputFileError.self) { try OutputFile.create(path: path, policy: policy) }
                #expect(refused?.message.contains("symbolic link") == true)
                #expect(throws: OutputFileError.self) { try OutputFile.check(path: path, policy: policy) }
            }
        }
        #expect(Self.contents(target) == Array("keep me\n".utf8))
        #expect(!FileManager.default.fileExists(atPath: dir + "/would-be-created"))
    }

    @Test("directories and FIFOs are refused with what they are")
    func otherKinds() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        for (path, kind) in [(dir, "directory"), (fifo, "FIFO")] {
            let refused = #expect(throws: OutputFileError.self) { try OutputFile.create(path: path, policy: .replaceRegularFile) }
            #expect(refused?.message.contains(kind) == true, "\(refused?.message ?? "")")
            let early = #expect(throws: OutputFileError.self) { try OutputFile.check(path: path, policy: .replaceRegularFile) }
            #expect(early?.message.contains(kind) == true)
        }
    }

    @Test("report's policy: never over a pcap or pcapng file, nor over a file being read (also through another name)")
    func reportPolicy() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let trace = dir + "/trace.bin", pcap = dir + "/old.txt", input = dir + "/input.json", alias = dir + "/alias.json"
        try Data(Self.pcapng).write(to: URL(fileURLWithPath: trace))
        try Data([0x4d, 0x3c, 0xb2, 0xa1] + [UInt8](repeating: 0, count: 20)).write(to: URL(fileURLWithPath: pcap))
        try Data("{}".utf8).write(to: URL(fileURLWithPath: input))
        try FileManager.default.linkItem(atPath: input, toPath: alias)
        let policy = Self.refusing(inputs: [input])
        for (path, reason) in [(trace, "holds a pcapng trace"), (pcap, "holds a pcap trace"), (input, "the file being read"), (alias, "the file being read")] {
            let before = Self.contents(path)
            let refused = #expect(throws: OutputFileError.self) { try OutputFile.create(path: path, policy: policy) }
            #expect(refused?.message.contains(reason) == true, "\(path): \(refused?.message ?? "")")
            #expect(throws: OutputFileError.self) { try OutputFile.check(path: path, policy: policy) }
            #expect(Self.contents(path) == before)
        }
    }
}
