import Foundation
import Testing
@testable import NetprobeCapture
import NetprobeCore

/// The trace writer's output file (no privileges needed).
@Suite("pcapng writer: where it writes")
struct WriterTests {
    @Test("a symbolic link at the output path is refused and its target left alone; a regular file is replaced")
    func symbolicLink() throws {
        let dir = tempPath(".d")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let target = dir + "/precious", link = dir + "/trace.pcapng"
        try Data("keep me\n".utf8).write(to: URL(fileURLWithPath: target))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let error = #expect(throws: CaptureError.self) { try PcapngFileWriter(path: link) }
        #expect(error?.description.contains("symbolic link") == true, "\(error?.description ?? "")")
        #expect(FileManager.default.contents(atPath: target) == Data("keep me\n".utf8))

        let old = dir + "/old.pcapng"
        try Data(repeating: 7, count: 4096).write(to: URL(fileURLWithPath: old))
        let writer = try PcapngFileWriter(path: old)
        try writer.append { e, out in e.appendSectionHeader(to: &out) }
        try writer.close()
        let written = try #require(FileManager.default.contents(atPath: old))
        #expect(written.count < 4096 && written.prefix(4) == Data([0x0A, 0x0D, 0x0D, 0x0A]))
    }

    @Test("flushIfDue writes what waited its interval (what a SIGKILL would otherwise lose), and only then")
    func flushIfDue() throws {
        let path = tempPath(".pcapng")
        defer { try? FileManager.default.removeItem(atPath: path) }
        func onDisk() -> Int { FileManager.default.contents(atPath: path)?.count ?? -1 }
        let never = try PcapngFileWriter(path: path, flushInterval: 3_600_000_000_000)
        try never.append { e, out in e.appendSectionHeader(to: &out) }
        try never.flushIfDue()
        #expect(onDisk() == 0)
        let always = try PcapngFileWriter(path: path, flushInterval: 0)
        try always.append { e, out in e.appendSectionHeader(to: &out) }
        try always.append { e, out in e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 128, name: "lo") }
        try always.appendNetprobeData(try NetprobeBlock.vantageNote(VantageNote(timeNs: 5, interface: "lo", note: "n")).payload(), timeNs: 5)
        try always.flushIfDue()
        #expect(onDisk() == Int(always.size))
        let reader = try TraceReader(path: path)
        while try reader.next() != nil {}
        #expect(reader.customBlocks.compactMap { NetprobeBlock.decode(enterpriseNumber: $0.pen, payload: $0.payload) }
            == [.vantageNote(VantageNote(timeNs: 5, interface: "lo", note: "n"))])
    }

    @Test("an item too large for one block is refused, naming the file; the file stays whole")
    func tooLarge() throws {
        let path = tempPath(".pcapng")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapngFileWriter(path: path)
        try writer.append { e, out in e.appendSectionHeader(to: &out) }
        try writer.append { e, out in e.appendInterfaceDescription(to: &out, linkType: .ethernet, snapLength: 128, name: "lo") }
        let error = #expect(throws: CaptureError.self) {
            try writer.appendNetprobeData([UInt8](repeating: 1, count: MetadataCarriage.maximumPayload + 1), timeNs: 0)
        }
        #expect(error?.description.contains(path) == true, "\(error?.description ?? "")")
        try writer.close()
        let reader = try TraceReader(path: path)
        #expect(try reader.next() == nil)
        #expect(reader.interfaces.count == 1 && reader.warnings.isEmpty)
    }
}
