/// Which guest a lab boots: netprobe's own Linux microVM, or an image the user brings.
///
/// Written as `netprobe lab up --guest SPEC` takes it:
/// - `builtin`: the lab's Linux microVM (Redis as init, static address on its command line);
/// - `disk:FILE[,format=raw|qcow2]`: a disk image booted by the firmware from virtio-blk (OSv's
///   images are this); the format is read from the file when not given;
/// - `kernel:FILE[,initrd=FILE][,cmdline=TEXT]`: a kernel QEMU boots directly (Linux bzImage, or
///   a multiboot ELF such as Rumprun's baked images). `cmdline=` comes last and takes the rest of
///   the text as it is, commas included (Rumprun's configuration is a JSON document there).
public struct GuestSpec: Codable, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable {
        case builtin, disk, kernel
    }

    public var kind: Kind
    /// The disk image or the kernel (absolute or as given; nil for `builtin`).
    public var path: String?
    /// `disk`: raw or qcow2, when given.
    public var format: String?
    /// `kernel`: the initial ramdisk.
    public var initrd: String?
    /// `kernel`: the kernel command line.
    public var cmdline: String?

    public static let builtin = GuestSpec(kind: .builtin)

    public init(kind: Kind, path: String? = nil, format: String? = nil, initrd: String? = nil, cmdline: String? = nil) {
        self.kind = kind
        self.path = path
        self.format = format
        self.initrd = initrd
        self.cmdline = cmdline
    }

    /// Why a SPEC cannot be read.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var spec: String
        public var reason: String
        public var description: String {
            "cannot read guest '\(spec)': \(reason) (use builtin, disk:FILE[,format=raw|qcow2] or kernel:FILE[,initrd=FILE][,cmdline=TEXT])"
        }
    }

    /// Parses a SPEC (see the type's description).
    public init(parsing text: String) throws(ParseError) {
        func fail(_ reason: String) -> ParseError { ParseError(spec: text, reason: reason) }
        /// The value of `,name=` and everything after it, cut off the end of `rest`.
        func take(_ name: String, from rest: inout Substring) -> String? {
            guard let r = rest.firstRange(of: ",\(name)=") else { return nil }
            defer { rest = rest[..<r.lowerBound] }
            return String(rest[r.upperBound...])
        }
        if text == "builtin" {
            self = .builtin
            return
        }
        if text.hasPrefix("disk:") {
            var rest = Substring(text.dropFirst("disk:".count))
            let format = take("format", from: &rest)
            if let format, format != "raw" && format != "qcow2" { throw fail("format must be raw or qcow2, not '\(format)'") }
            guard !rest.isEmpty else { throw fail("no FILE after disk:") }
            self.init(kind: .disk, path: String(rest), format: format)
            return
        }
        if text.hasPrefix("kernel:") {
            var rest = Substring(text.dropFirst("kernel:".count))
            let cmdline = take("cmdline", from: &rest)
            let initrd = take("initrd", from: &rest)
            if initrd?.isEmpty == true { throw fail("initrd= names no file") }
            guard !rest.isEmpty else { throw fail("no FILE after kernel:") }
            guard !rest.contains(",") else { throw fail("unknown option in '\(rest)' (kernel: takes initrd= and cmdline=, cmdline last)") }
            self.init(kind: .kernel, path: String(rest), initrd: initrd, cmdline: cmdline)
            return
        }
        throw fail("it starts with neither builtin, disk: nor kernel:")
    }

    /// The SPEC text that parses back to this value.
    public var description: String {
        switch kind {
        case .builtin: return "builtin"
        case .disk: return "disk:\(path ?? "")" + (format.map { ",format=\($0)" } ?? "")
        case .kernel: return "kernel:\(path ?? "")" + (initrd.map { ",initrd=\($0)" } ?? "") + (cmdline.map { ",cmdline=\($0)" } ?? "")
        }
    }

    /// The files the spec names (the image or kernel, then the initrd).
    public var files: [String] { [path, initrd].compactMap { $0 } }
}

/// How a lab's guest was run and addressed, as the lab state records it.
public struct LabGuest: Codable, Sendable, Equatable {
    /// How the guest learns its address.
    public enum Addressing: String, Codable, Sendable {
        /// On its kernel command line (the built-in guest's `np.ip=`).
        case commandLine = "command-line"
        /// From the lab's DHCP server (busybox udhcpd in the lab's namespace), by its MAC.
        case dhcp
        /// The guest has it configured itself (`--guest-address`); the lab only routes to it.
        case `static`
    }

    public var spec: GuestSpec
    /// Disk image format as QEMU was told it (raw or qcow2).
    public var diskFormat: String?
    public var memoryMiB: Int
    public var vcpus: Int
    /// Extra QEMU arguments (`--qemu-commandline`).
    public var qemuArguments: [String]
    public var addressing: Addressing
    /// The guest NIC's MAC (the DHCP server's static lease is for it).
    public var mac: String

    public init(spec: GuestSpec, diskFormat: String? = nil, memoryMiB: Int, vcpus: Int, qemuArguments: [String] = [],
                addressing: Addressing, mac: String) {
        self.spec = spec
        self.diskFormat = diskFormat
        self.memoryMiB = memoryMiB
        self.vcpus = vcpus
        self.qemuArguments = qemuArguments
        self.addressing = addressing
        self.mac = mac
    }
}
