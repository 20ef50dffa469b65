import Foundation

/// The kernel modules of an extracted kernel package, and the order to load them in.
///
/// The Debian cloud kernel builds virtio_net, virtio_pci and their helpers as modules, and the
/// package has no modules.dep (depmod runs at install time). The guest's init loads them with
/// busybox `insmod`, which resolves nothing itself: a module whose dependency is not loaded yet
/// fails with "Unknown symbol". So the order is worked out here, from the `depends=` entry of
/// each module's `.modinfo` section.
struct KernelModules {
    /// A module file and what it needs first.
    struct Module: Equatable, Sendable {
        var name: String
        var path: String
        var dependencies: [String]
    }

    /// Module names (with `_`, as the kernel spells them) to file paths.
    private(set) var files: [String: String] = [:]
    /// Modules built into the kernel image: nothing to load.
    private(set) var builtin: Set<String> = []
    /// Reads a module's dependency list (overridable in tests).
    var dependenciesOf: (String) throws -> [String] = { try KernelModules.readDependencies(ofModuleAt: $0) }

    /// Indexes `<root>/kernel/**.ko{,.xz,.zst}` and `<root>/modules.builtin`, where `root` is
    /// `lib/modules/<version>` of the extracted package.
    init(root: String) {
        let kernelDir = "\(root)/kernel"
        if let walker = FileManager.default.enumerator(atPath: kernelDir) {
            for case let relative as String in walker {
                guard let name = Self.moduleName(fileName: (relative as NSString).lastPathComponent) else { continue }
                files[name] = "\(kernelDir)/\(relative)"
            }
        }
        if let text = try? String(contentsOfFile: "\(root)/modules.builtin", encoding: .utf8) {
            for line in text.split(separator: "\n") {
                if let name = Self.moduleName(fileName: String(line.split(separator: "/").last ?? "")) { builtin.insert(name) }
            }
        }
    }

    /// For tests: a fixed set of module files.
    init(files: [String: String], builtin: Set<String> = [], dependencies: @escaping (String) throws -> [String]) {
        self.files = files
        self.builtin = builtin
        self.dependenciesOf = dependencies
    }

    /// `virtio_net` for `virtio_net.ko`, `virtio-rng.ko.xz` -> `virtio_rng`; nil for other files.
    static func moduleName(fileName: String) -> String? {
        for suffix in [".ko", ".ko.xz", ".ko.zst", ".ko.gz"] where fileName.hasSuffix(suffix) {
            return String(fileName.dropLast(suffix.count)).replacingOccurrences(of: "-", with: "_")
        }
        return nil
    }

    /// `wanted` and everything they depend on, each after its dependencies. Built-in modules are
    /// left out; a module that is neither a file nor built in is an error.
    func loadOrder(_ wanted: [String]) throws -> [Module] {
        var order: [Module] = []
        var visiting: Set<String> = []
        var done: Set<String> = []
        func visit(_ raw: String) throws {
            let name = raw.replacingOccurrences(of: "-", with: "_")
            if done.contains(name) || builtin.contains(name) { return }
            guard let path = files[name] else {
                throw LabError.guestImage("the kernel package has no module \(name) (needed for the guest's network), and it is not built in")
            }
            guard !visiting.contains(name) else { throw LabError.guestImage("kernel modules depend on each other in a cycle at \(name)") }
            visiting.insert(name)
            let deps = try dependenciesOf(path)
            for dep in deps { try visit(dep) }
            visiting.remove(name)
            done.insert(name)
            order.append(Module(name: name, path: path, dependencies: deps))
        }
        for name in wanted { try visit(name) }
        return order
    }

    /// The plain ELF bytes of a module file (decompressing .xz / .zst / .gz with xz, zstd, gzip).
    static func contents(ofModuleAt path: String) throws -> [UInt8] {
        let tools = ["xz": "xz", "zst": "zstd", "gz": "gzip"]
        if let tool = tools[(path as NSString).pathExtension] {
            guard Command.find(tool) != nil else {
                let package = ["xz": "xz-utils", "zstd": "zstd", "gzip": "gzip"][tool] ?? tool
                throw LabError.missingPackages(tools: [tool], packages: [package])
            }
            // Binary output: decompress into a file, then read it.
            let out = "\(NSTemporaryDirectory())/netprobe-module-\(getpid())-\(UUID().uuidString.prefix(8)).ko"
            defer { try? FileManager.default.removeItem(atPath: out) }
            try Command.check(["sh", "-c", "\"$0\" -dc \"$1\" > \"$2\"", tool, path, out])
            guard let data = FileManager.default.contents(atPath: out) else { throw LabError.file(path: path, detail: "could not decompress") }
            return Array(data)
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw LabError.file(path: path, detail: "cannot read") }
        return Array(data)
    }

    /// The module names in the `depends=` entry of a module's `.modinfo` section.
    static func readDependencies(ofModuleAt path: String) throws -> [String] {
        guard let elf = ELFFile(try contents(ofModuleAt: path)) else {
            throw LabError.guestImage("\(path) is not a 64-bit ELF kernel module")
        }
        return dependencies(fromModinfo: elf.strings(inSection: ".modinfo"))
    }

    /// `["depends=virtio,virtio_ring", ...]` -> `["virtio", "virtio_ring"]`.
    static func dependencies(fromModinfo entries: [String]) -> [String] {
        guard let entry = entries.first(where: { $0.hasPrefix("depends=") }) else { return [] }
        return entry.dropFirst("depends=".count).split(separator: ",").map(String.init).filter { !$0.isEmpty }
    }
}
