import Foundation
import Glibc

/// The processes that hold a guest's device open: the virtual NIC backend that reads its queue
/// (QEMU; with vhost-net its vhost worker threads are QEMU's too on Linux 6.4 and later).
///
/// Found from /proc, without asking the hypervisor: a tap is a file descriptor on /dev/net/tun
/// whose fdinfo names the device (`iff:\tvnet0`); a macvtap is its character device
/// `/dev/tap<ifindex>`. The scheduler's events are recorded for these processes' threads.
enum TapReaders {
    /// The pids with `interface` open, for a tap (`macvtapIndex` nil) or a macvtap (its ifindex).
    static func pids(holding interface: String, macvtapIndex: UInt32?) -> [Int32] {
        let device = macvtapIndex.map { "/dev/tap\($0)" }
        var found: [Int32] = []
        let processes = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for name in processes {
            guard let pid = Int32(name) else { continue }
            let fdDirectory = "/proc/\(pid)/fd"
            guard let fds = try? FileManager.default.contentsOfDirectory(atPath: fdDirectory) else { continue }
            for fd in fds {
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDirectory)/\(fd)") else { continue }
                if let device {
                    if target == device { found.append(pid); break }
                } else if target == "/dev/net/tun", tunDevice(pid: pid, fd: fd) == interface {
                    found.append(pid)
                    break
                }
            }
        }
        return found.sorted()
    }

    /// The device a tun file descriptor is attached to, from its fdinfo's `iff:` line.
    static func tunDevice(pid: Int32, fd: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/fdinfo/\(fd)", encoding: .utf8) else { return nil }
        return interfaceName(fromFdinfo: text)
    }

    /// `iff:\tvnet0` in a tun fdinfo -> "vnet0".
    static func interfaceName(fromFdinfo text: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix("iff:") {
            return line.dropFirst(4).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }
}
