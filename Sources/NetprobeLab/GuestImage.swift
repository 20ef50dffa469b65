import Foundation

/// Receives one line for each long step (downloading the kernel, packing the initramfs, booting).
public typealias LabProgress = @Sendable (String) -> Void

/// The Redis guest: a Debian cloud kernel and an initramfs whose `/init` execs redis-server
/// (a Linux microVM in "unikernel clothing": Redis is the only program).
public struct GuestImage: Sendable, Equatable {
    /// The kernel (bzImage) to boot with `-kernel`.
    public var kernel: String
    /// The gzip'd newc initramfs to boot with `-initrd`.
    public var initrd: String
    /// The kernel release, e.g. `6.1.0-56-cloud-amd64`.
    public var kernelVersion: String
    /// The package file the kernel came from.
    public var kernelPackage: String
    /// The cache folder holding both files.
    public var directory: String
}

/// Builds the guest image from Debian packages and caches it under
/// `/var/cache/netprobe/guest/<key>/`, where the key is a hash of its inputs (kernel package,
/// redis-server and busybox binaries, init script), so a changed input makes a new image.
///
/// Ingredients: `apt-get download linux-image-<version>-cloud-amd64` unpacked with `dpkg-deb -x`
/// (its `boot/vmlinuz-*` and the virtio network modules), busybox-static's `/bin/busybox` with
/// every applet as a link, `/usr/bin/redis-server` with every library `ldd` lists and the dynamic
/// loader at their original paths, and the `GuestInit` script.
public enum GuestImageBuilder {
    /// Where images are cached, one folder per input hash.
    public static let cacheDirectory = "/var/cache/netprobe/guest"
    /// Where downloaded kernel packages are kept.
    public static let packageDirectory = "/var/cache/netprobe/debs"
    /// The metapackage whose dependency names the current cloud kernel.
    static let kernelMetapackage = "linux-image-cloud-amd64"
    /// Set to a package name (linux-image-...-cloud-amd64) to choose the kernel.
    static let kernelPackageVariable = "NETPROBE_KERNEL_PACKAGE"
    static let busyboxPath = "/bin/busybox"
    static let redisServerPath = "/usr/bin/redis-server"
    /// The drivers the guest needs for its NIC; their dependencies are found by `KernelModules`.
    static let networkModules = ["virtio_pci", "virtio_net"]
    /// Bumped when the image layout changes, so old cached images are not reused.
    static let layoutVersion = "1"

    /// Returns the cached image for the current inputs, building it first when needed.
    public static func prepare(progress: LabProgress) throws -> GuestImage {
        try Requirements.check(Requirements.guest)
        let package = try kernelPackageName()
        let deb = try kernelPackageFile(package, progress: progress)
        let debName = (deb as NSString).lastPathComponent
        let inputs = """
            netprobe guest image layout \(layoutVersion)
            kernel package: \(debName)
            redis-server: \(try Digest.sha256(file: redisServerPath))
            busybox: \(try Digest.sha256(file: busybox))
            init script: \(try Digest.sha256(text: GuestInit.script))
            network modules: \(networkModules.joined(separator: " "))

            """
        let key = String(try Digest.sha256(text: inputs).prefix(16))
        let directory = "\(cacheDirectory)/\(key)"
        if let image = cached(in: directory, debName: debName) { return image }
        progress("building the Redis guest image (kernel \(package)) into \(directory)")
        let image = try build(deb: deb, debName: debName, inputs: inputs, into: directory, progress: progress)
        prune(keeping: key)
        return image
    }

    private static var busybox: String { busyboxPath }

    /// The image in `directory` if it is complete.
    static func cached(in directory: String, debName: String) -> GuestImage? {
        let fm = FileManager.default
        guard fm.fileExists(atPath: "\(directory)/vmlinuz"), fm.fileExists(atPath: "\(directory)/initrd.gz"),
              let version = try? String(contentsOfFile: "\(directory)/kernel-version", encoding: .utf8)
        else { return nil }
        return GuestImage(kernel: "\(directory)/vmlinuz", initrd: "\(directory)/initrd.gz",
                          kernelVersion: version.trimmingCharacters(in: .whitespacesAndNewlines),
                          kernelPackage: debName, directory: directory)
    }

    // MARK: The kernel package

    /// linux-image-<version>-cloud-amd64: from $NETPROBE_KERNEL_PACKAGE, else what the
    /// metapackage depends on, else the newest such package apt knows, else the newest one
    /// already downloaded.
    static func kernelPackageName() throws -> String {
        if let chosen = ProcessInfo.processInfo.environment[kernelPackageVariable], !chosen.isEmpty { return chosen }
        if let out = try? Command.run(["apt-cache", "depends", kernelMetapackage], timeout: 60), out.succeeded {
            for line in out.stdout.split(separator: "\n") {
                let words = line.split(separator: " ")
                if words.count == 2, words[0] == "Depends:", isCloudKernelPackage(String(words[1])) { return String(words[1]) }
            }
        }
        if let out = try? Command.run(["apt-cache", "search", "--names-only", "^linux-image-[0-9.]+-[0-9]+-cloud-amd64$"], timeout: 60) {
            let names = out.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
            if let newest = names.filter(isCloudKernelPackage).max(by: versionOrder) { return newest }
        }
        let downloaded = ((try? FileManager.default.contentsOfDirectory(atPath: packageDirectory)) ?? [])
            .compactMap { $0.split(separator: "_").first.map(String.init) }.filter(isCloudKernelPackage)
        if let newest = downloaded.max(by: versionOrder) { return newest }
        throw LabError.guestImage("""
            apt knows no \(kernelMetapackage) package (no Debian package lists yet?). \
            Run `apt-get update`, or set \(kernelPackageVariable)=linux-image-<version>-cloud-amd64
            """)
    }

    static func isCloudKernelPackage(_ name: String) -> Bool {
        name.hasPrefix("linux-image-") && name.hasSuffix("-cloud-amd64") && name.dropFirst("linux-image-".count).first?.isNumber == true
    }

    /// Orders names by their numbers (6.1.0-9 before 6.1.0-56).
    static func versionOrder(_ a: String, _ b: String) -> Bool {
        a.compare(b, options: .numeric) == .orderedAscending
    }

    /// The package file in the download folder, fetched with `apt-get download` when absent.
    static func kernelPackageFile(_ package: String, progress: LabProgress) throws -> String {
        try makeDirectory(packageDirectory)
        func existing() -> String? {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: packageDirectory)) ?? []
            return names.filter { $0.hasPrefix("\(package)_") && $0.hasSuffix(".deb") }.max(by: versionOrder)
                .map { "\(packageDirectory)/\($0)" }
        }
        if let file = existing() { return file }
        progress("downloading \(package) (apt-get download, about 30 MB)")
        do {
            try Command.check(["apt-get", "download", package], timeout: 900, directory: packageDirectory)
        } catch LabError.commandFailed(let command, let status, let stderr) {
            throw LabError.guestImage("\(command) failed (status \(status)): \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))\nCheck that Debian's package mirror is reachable and run `apt-get update`.")
        }
        guard let file = existing() else {
            throw LabError.guestImage("apt-get download \(package) left no \(package)_*.deb in \(packageDirectory)")
        }
        return file
    }

    // MARK: Building

    static func build(deb: String, debName: String, inputs: String, into directory: String, progress: LabProgress) throws -> GuestImage {
        let fm = FileManager.default
        let work = "\(cacheDirectory)/.build-\(getpid())-\(UUID().uuidString.prefix(8))"
        let extract = "\(work)/extract", output = "\(work)/image"
        defer { try? fm.removeItem(atPath: work) }
        try makeDirectory(extract)
        try makeDirectory(output)

        progress("unpacking \(debName)")
        try Command.check(["dpkg-deb", "-x", deb, extract], timeout: 600)
        let bootFiles = (try? fm.contentsOfDirectory(atPath: "\(extract)/boot")) ?? []
        guard let vmlinuz = bootFiles.first(where: { $0.hasPrefix("vmlinuz-") }) else {
            throw LabError.guestImage("\(debName) has no boot/vmlinuz-*: is it a kernel image package?")
        }
        let version = String(vmlinuz.dropFirst("vmlinuz-".count))
        let modules = try KernelModules(root: "\(extract)/lib/modules/\(version)").loadOrder(networkModules)

        progress("packing the initramfs: busybox, redis-server and its libraries, \(modules.count) kernel modules")
        var archive = NewcArchive()
        try addBase(to: &archive)
        try addBusybox(to: &archive)
        try addRedis(to: &archive)
        for module in modules {
            archive.file("lib/modules/\(module.name).ko", contents: try KernelModules.contents(ofModuleAt: module.path))
        }
        archive.file("lib/modules/order", contents: Array((modules.map(\.name).joined(separator: "\n") + "\n").utf8))
        archive.file("init", contents: Array(GuestInit.script.utf8), permissions: 0o755)
        let cpio = "\(output)/initrd.cpio"
        try write(archive.finish(), to: cpio)
        try Command.check(["gzip", "-9", "-n", cpio], timeout: 300)
        do {
            try fm.moveItem(atPath: cpio + ".gz", toPath: "\(output)/initrd.gz")
            try fm.copyItem(atPath: "\(extract)/boot/\(vmlinuz)", toPath: "\(output)/vmlinuz")
        } catch {
            throw LabError.file(path: output, detail: "cannot store the kernel and initramfs: \(error.localizedDescription)")
        }
        try write(Array((version + "\n").utf8), to: "\(output)/kernel-version")
        try write(Array(inputs.utf8), to: "\(output)/inputs.txt")
        try write(Array(GuestInit.script.utf8), to: "\(output)/init")

        // Publish atomically; another process may have made the same image meanwhile.
        if fm.fileExists(atPath: directory) { try? fm.removeItem(atPath: directory) }
        do {
            try fm.moveItem(atPath: output, toPath: directory)
        } catch {
            guard cached(in: directory, debName: debName) != nil else {
                throw LabError.file(path: directory, detail: "cannot store the guest image: \(error)")
            }
        }
        guard let image = cached(in: directory, debName: debName) else {
            throw LabError.guestImage("the image in \(directory) is incomplete")
        }
        return image
    }

    /// Folders, /dev/console, and the few /etc files Redis and busybox look at.
    static func addBase(to archive: inout NewcArchive) throws {
        for dir in ["bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc", "run", "var", "root", "lib/modules"] {
            archive.directory(dir)
        }
        archive.characterDevice("dev/console", major: 5, minor: 1)
        archive.file("etc/passwd", contents: Array("root:x:0:0:root:/root:/bin/sh\n".utf8))
        archive.file("etc/group", contents: Array("root:x:0:\n".utf8))
        archive.file("etc/hosts", contents: Array("127.0.0.1 localhost\n".utf8))
    }

    /// /bin/busybox and a link to it for every applet at the applet's usual place.
    static func addBusybox(to archive: inout NewcArchive) throws {
        archive.file("bin/busybox", contents: try read(busyboxPath), permissions: 0o755)
        var applets = try Command.run([busyboxPath, "--list-full"])
        if !applets.succeeded {
            applets = try Command.check([busyboxPath, "--list"])
            applets.stdout = applets.stdout.split(separator: "\n").map { "bin/\($0)" }.joined(separator: "\n")
        }
        for path in applets.stdout.split(separator: "\n").map(String.init) where !path.isEmpty && path != "bin/busybox" {
            archive.symlink(path, target: "/bin/busybox")
        }
    }

    /// redis-server plus every shared library `ldd` lists and the loader, at their paths.
    static func addRedis(to archive: inout NewcArchive) throws {
        archive.file(redisServerPath, contents: try read(redisServerPath), permissions: 0o755)
        let libraries = try sharedLibraries(of: redisServerPath)
        for library in libraries {
            archive.file(library, contents: try read(library), permissions: 0o755)
        }
        // Merged /usr: make /usr/lib/<triplet> resolve to /lib/<triplet> too.
        if libraries.contains(where: { $0.hasPrefix("/lib/x86_64-linux-gnu/") }),
           !libraries.contains(where: { $0.hasPrefix("/usr/lib/x86_64-linux-gnu/") }) {
            archive.symlink("usr/lib/x86_64-linux-gnu", target: "../../lib/x86_64-linux-gnu")
        }
    }

    /// The library paths (and the loader) in `ldd PROGRAM`'s output.
    static func sharedLibraries(of program: String) throws -> [String] {
        let out = try Command.check(["ldd", program])
        return try parseLdd(out.stdout, program: program)
    }

    /// Parses lines like `libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x...)` and
    /// `/lib64/ld-linux-x86-64.so.2 (0x...)`; `linux-vdso.so.1` has no file and is skipped.
    static func parseLdd(_ text: String, program: String) throws -> [String] {
        var paths: [String] = []
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.contains("=> not found") {
                throw LabError.guestImage("\(program) needs \(line.split(separator: " ").first ?? ""), which is not installed (ldd says not found)")
            }
            let path: Substring?
            if let arrow = line.range(of: "=> ") {
                path = line[arrow.upperBound...].split(separator: " ").first
            } else {
                path = line.split(separator: " ").first
            }
            if let path, path.hasPrefix("/"), !paths.contains(String(path)) { paths.append(String(path)) }
        }
        return paths
    }

    /// Removes cached images other than `key` (they were made from older inputs).
    static func prune(keeping key: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: cacheDirectory)) ?? []
        for name in names where name != key && name.count == 16 && name.allSatisfy(\.isHexDigit) {
            try? FileManager.default.removeItem(atPath: "\(cacheDirectory)/\(name)")
        }
    }

    static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw LabError.file(path: path, detail: "cannot read") }
        return Array(data)
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        do { try Data(bytes).write(to: URL(fileURLWithPath: path)) } catch {
            throw LabError.file(path: path, detail: "cannot write: \(error.localizedDescription)")
        }
    }

    static func makeDirectory(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw LabError.file(path: path, detail: "cannot create the folder: \(error.localizedDescription)")
        }
    }
}

/// SHA-256 digests through coreutils' `sha256sum` (hex).
enum Digest {
    static func sha256(file path: String) throws -> String {
        let out = try Command.check(["sha256sum", path], timeout: 120)
        return String(out.stdout.prefix(64))
    }

    static func sha256(text: String) throws -> String {
        let path = "\(NSTemporaryDirectory())/netprobe-digest-\(getpid())-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try GuestImageBuilder.write(Array(text.utf8), to: path)
        return try sha256(file: path)
    }
}
