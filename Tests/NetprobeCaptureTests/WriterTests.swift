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
}
