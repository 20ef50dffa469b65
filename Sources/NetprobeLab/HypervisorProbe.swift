import Foundation
import NetprobeSystem

/// How the lab's QEMU runs guests: `kvm` (hardware virtualization) or `tcg` (QEMU's software
/// emulation), and why.
public struct HypervisorVerdict: Codable, Sendable, Equatable {
    /// "kvm" or "tcg".
    public var mode: String
    /// What the probe found (shown by `lab status`).
    public var reason: String
    /// The host boot the verdict belongs to (/proc/sys/kernel/random/boot_id).
    public var bootID: String
    /// ISO 8601 time of the probe.
    public var probedAt: String
}

/// What the user asked for with `--accel`.
public enum AccelPreference: String, CaseIterable, Sendable {
    /// Probe: KVM when a guest really boots under it, else TCG.
    case auto
    /// KVM without probing.
    case kvm
    /// TCG without probing.
    case tcg
}

/// Decides between KVM and TCG by booting the guest under KVM and watching its serial console.
///
/// `/dev/kvm` existing is not enough: on some hosts (nested or paravirtualized KVM such as PVM)
/// the device opens and QEMU starts, but a guest kernel hangs before printing a single line. So
/// the probe boots the real guest image with `-accel kvm` and the kernel argument `np.probe=1`
/// and waits a few seconds for the init script's first line (`GuestInit.aliveMarker`); under
/// working KVM that takes about a second. No line in time, or QEMU refusing `-accel kvm`, means
/// TCG. The verdict is cached in /run/netprobe/hypervisor.json for the rest of the host's boot.
public enum HypervisorProbe {
    /// The cached verdict.
    public static let cacheFile = "/run/netprobe/hypervisor.json"
    /// How long a KVM guest gets to show a sign of life.
    static let timeout: Double = 12

    /// Whether `verdict` would boot the probe guest (so it needs the built-in image).
    static func needsProbe(_ preference: AccelPreference) -> Bool {
        guard preference == .auto else { return false }
        return cachedVerdict()?.bootID != bootID()
    }

    /// The verdict for this host: forced by `preference`, cached, or probed now (with the built-in
    /// `image`; without one, TCG: a KVM that was never shown to work is not trusted).
    public static func verdict(image: GuestImage?, preference: AccelPreference, progress: LabProgress) -> HypervisorVerdict {
        let boot = bootID()
        switch preference {
        case .kvm: return HypervisorVerdict(mode: "kvm", reason: "chosen with --accel kvm (not probed)", bootID: boot, probedAt: now())
        case .tcg: return HypervisorVerdict(mode: "tcg", reason: "chosen with --accel tcg (not probed)", bootID: boot, probedAt: now())
        case .auto: break
        }
        if let cached = cachedVerdict(), cached.bootID == boot { return cached }
        guard let image else {
            return HypervisorVerdict(mode: "tcg", reason: "not probed (no probe image): software emulation (TCG); --accel kvm to use KVM", bootID: boot, probedAt: now())
        }
        let verdict = probe(image: image, progress: progress)
        save(verdict)
        return verdict
    }

    /// The cached verdict, if any (whatever boot it belongs to).
    public static func cachedVerdict() -> HypervisorVerdict? {
        guard let data = FileManager.default.contents(atPath: cacheFile) else { return nil }
        return try? JSONDecoder().decode(HypervisorVerdict.self, from: data)
    }

    /// Boots the guest under KVM once and reads its console.
    static func probe(image: GuestImage, progress: LabProgress) -> HypervisorVerdict {
        let boot = bootID()
        func verdict(_ mode: String, _ reason: String) -> HypervisorVerdict {
            HypervisorVerdict(mode: mode, reason: reason, bootID: boot, probedAt: now())
        }
        guard FileManager.default.fileExists(atPath: "/dev/kvm") else {
            return verdict("tcg", "no /dev/kvm on this host (no KVM module, or not passed through): software emulation (TCG)")
        }
        let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            return verdict("tcg", "/dev/kvm cannot be opened read-write (\(Errno(rawValue: errno).message)): software emulation (TCG)")
        }
        close(fd)

        progress("probing KVM: booting the guest with -accel kvm (up to \(Int(timeout)) s, once per host boot)")
        let console = "\(NSTemporaryDirectory())/netprobe-kvm-probe-\(getpid()).log"
        try? FileManager.default.removeItem(atPath: console)
        defer { try? FileManager.default.removeItem(atPath: console) }
        var launch = QEMULaunch(accel: "kvm", image: image, consoleLog: console)
        launch.memoryMiB = 256
        launch.extraKernelArguments = ["np.probe=1"]
        let argv = [QEMULaunch.binary] + launch.arguments(network: nil)
        let started = Date()
        let qemu: ChildProcess
        do { qemu = try Command.start(argv) } catch {
            return verdict("tcg", "QEMU could not be started for the KVM probe (\(error)): TCG")
        }
        defer { qemu.stop() }
        while Date().timeIntervalSince(started) < timeout {
            let text = LogFile.read(console)
            if text.contains(GuestInit.aliveMarker) {
                let seconds = String(format: "%.1f", Date().timeIntervalSince(started))
                return verdict("kvm", "KVM works: a probe guest booted to its init under -accel kvm in \(seconds) s")
            }
            if !qemu.isRunning {
                let status = qemu.wait()!
                let detail = (qemu.standardError + qemu.standardOutput).split(separator: "\n").first.map(String.init) ?? "exit status \(status.code)"
                return verdict("tcg", "QEMU refused -accel kvm (\(detail)): software emulation (TCG)")
            }
            usleep(100_000)
        }
        let text = LogFile.read(console)
        let last = text.split(separator: "\n").last.map { String($0.prefix(120)) }
        let sign = text.isEmpty ? "the guest printed nothing on its serial console" : "the guest never reached its init (last console line: \(last ?? ""))"
        return verdict("tcg", "/dev/kvm exists, but a probe guest booted with -accel kvm showed no sign of life within \(Int(timeout)) s (\(sign)): software emulation (TCG)")
    }

    static func save(_ verdict: HypervisorVerdict) {
        let dir = (cacheFile as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let data = try? encoder.encode(verdict) { try? data.write(to: URL(fileURLWithPath: cacheFile), options: .atomic) }
    }

    /// This boot of the host.
    static func bootID() -> String {
        ((try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "unknown")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }
}
