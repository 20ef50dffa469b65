import Foundation
import NetprobeCore
import Testing
@testable import NetprobeLab

/// Two netprobe processes working on one lab wait for each other (flock on the lab's lock file).
@Suite("netprobe lab: one command per lab at a time (root)", .serialized)
struct LockTests {
    @Test("a second process's `lab down` waits while the lab is locked, says so, and finishes once it is free; the lock is re-entrant within a process")
    func downWaitsForTheLock() throws {
        try requireRoot()
        let name = "locktest"
        _ = try? Lab.down(name)
        let child = Process()
        let stderr = Pipe()
        try LabLock.with(name, progress: { _ in }) {
            // Re-entrant: this process may run up or down inside its own lock.
            _ = try Lab.down(name)
            child.executableURL = URL(fileURLWithPath: NetprobeBinary.path)
            child.arguments = ["lab", "down", name]
            child.standardError = stderr
            child.standardOutput = FileHandle.nullDevice
            try child.run()
            // It must still be waiting a second later.
            usleep(1_500_000)
            #expect(child.isRunning, "lab down did not wait for the lock")
        }
        // Released: the waiting command now runs to its end.
        let finished = eventually(20) { !child.isRunning }
        #expect(finished, "lab down kept waiting after the lock was released")
        if !finished { child.terminate() }
        child.waitUntilExit()
        let text = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(child.terminationStatus == 0, "\(text)")
        #expect(text.contains("waiting for another netprobe lab command on this lab (pid \(getpid()))"), "\(text)")
    }
}
