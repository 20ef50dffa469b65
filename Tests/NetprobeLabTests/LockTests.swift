import Foundation
import NetprobeCore
import Testing
@testable import NetprobeLab
import NetprobeSystem

/// Two netprobe processes working on one lab wait for each other (flock on the lab's lock file).
@Suite("netprobe lab: one command per lab at a time (root)", .serialized)
struct LockTests {
    @Test("a second process's `lab down` waits while the lab is locked, says so, and finishes once it is free; the lock is re-entrant within a process")
    func downWaitsForTheLock() throws {
        try requireRoot()
        let name = "locktest"
        _ = try? Lab.down(name)
        var child: ChildProcess?
        try LabLock.with(name, progress: { _ in }) {
            // Re-entrant: this process may run up or down inside its own lock.
            _ = try Lab.down(name)
            let c = try ChildProcess([NetprobeBinary.path, "lab", "down", name], stdout: .discard, stderr: .capture)
            child = c
            // It says that it waits (however long it takes to start), and it is still waiting then.
            #expect(eventually(120) { c.standardError.contains("waiting for another netprobe lab command") || !c.isRunning },
                    "\(c.standardError)")
            #expect(c.isRunning, "lab down did not wait for the lock: \(c.standardError)")
        }
        // Released: the waiting command now runs to its end.
        let c = try #require(child)
        let status = c.wait(timeout: 300)
        #expect(status == .exited(0), "lab down kept waiting after the lock was released, or failed: \(c.standardError)")
        if status == nil { c.stop() }
        #expect(c.standardError.contains("waiting for another netprobe lab command on this lab (pid \(getpid()))"), "\(c.standardError)")
    }
}
