#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A file netprobe writes because the user named it (`capture -w`, `report -w`, `compare -w`),
/// opened by one rule:
///
/// - a path that does not exist is created as a new file (`O_CREAT | O_EXCL | O_NOFOLLOW`: if
///   something appears there meanwhile, the open fails instead of following it);
/// - an existing regular file is replaced (emptied, as tcpdump -w does), unless `policy` protects
///   it: `report` and `compare` never write over a file they read, nor over a file whose first
///   bytes the caller refuses (any pcap or pcapng: their -o writes the report, not packets);
/// - an existing character device (/dev/null, /dev/full) is written to as it is;
/// - anything else is refused with the reason: a symbolic link (netprobe never writes through
///   one: a link planted at the output path must not make it empty another file), a directory,
///   a FIFO, a socket, a block device.
///
/// The checks are made on the descriptor that is then written (`fstat` after an `O_NOFOLLOW`
/// open), so the path cannot be swapped between check and use. Owns its descriptor and closes it
/// in `deinit`.
public final class OutputFile {
    /// What may be replaced besides a new file.
    public enum Policy: Sendable {
        /// An existing regular file is replaced whatever it holds (capture -w, like tcpdump -w).
        case replaceRegularFile
        /// An existing regular file is replaced unless it is one of `inputs` (the files being
        /// read, compared by device and inode; "-" stands for standard input) or `refuse` gives a
        /// reason when shown its first bytes ("holds a pcapng trace: ...").
        case replaceUnless(inputs: [String], refuse: @Sendable ([UInt8]) -> String?)
    }

    public let path: String
    /// The open descriptor (closed in deinit).
    public let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit { _ = Glibc.close(descriptor) }

    /// Bytes of an existing file shown to `Policy.replaceUnless`'s `refuse`.
    public static let headLength = 16

    /// Creates `path`, or opens and empties the existing file there when `policy` allows it.
    public static func create(path: String, policy: Policy) throws(OutputFileError) -> OutputFile {
        guard !path.isEmpty else { throw OutputFileError(path: path, "an empty file name") }
        for _ in 0..<8 {
            do {
                let fd = try systemCall("open") { open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644) }
                return OutputFile(path: path, descriptor: fd)
            } catch where error.errno.rawValue != EEXIST {
                throw OutputFileError(path: path, "cannot create it", errno: error.errno)
            } catch {}
            // Something is there: open it without following a link and look at what it is.
            let existing: Int32
            do {
                existing = try openExisting(path)
            } catch {
                switch error.errno.rawValue {
                case ENOENT: continue // removed meanwhile: create it
                case ELOOP: throw OutputFileError(path: path, symbolicLinkRefusal)
                case EISDIR: throw OutputFileError(path: path, "is a directory: name a file")
                case ENXIO: throw OutputFileError(path: path, kindRefusal("a FIFO or a socket"))
                default: throw OutputFileError(path: path, "cannot open it", errno: error.errno)
                }
            }
            let file = OutputFile(path: path, descriptor: existing)
            var st = stat()
            guard fstat(existing, &st) == 0 else { throw OutputFileError(path: path, "cannot examine it", errno: Errno(rawValue: errno)) }
            try check(st, path: path, policy: policy, read: { readHead(existing) })
            _ = fcntl(existing, F_SETFL, fcntl(existing, F_GETFL) & ~O_NONBLOCK)
            if st.st_mode & S_IFMT == S_IFREG {
                do { _ = try systemCall("ftruncate") { ftruncate(existing, 0) } } catch {
                    throw OutputFileError(path: path, "cannot empty it", errno: error.errno)
                }
            }
            return file
        }
        throw OutputFileError(path: path, "it keeps appearing and disappearing while netprobe opens it")
    }

    /// Whether `create(path:policy:)` would refuse `path`, without creating or changing anything:
    /// lets a command say so before it spends time reading or capturing. (`create` checks again.)
    public static func check(path: String, policy: Policy) throws(OutputFileError) {
        guard !path.isEmpty else { throw OutputFileError(path: path, "an empty file name") }
        var st = stat()
        guard lstat(path, &st) == 0 else {
            let code = errno
            if code == ENOENT { return }
            throw OutputFileError(path: path, "cannot examine it", errno: Errno(rawValue: code))
        }
        if st.st_mode & S_IFMT == S_IFLNK { throw OutputFileError(path: path, symbolicLinkRefusal) }
        try check(st, path: path, policy: policy, read: {
            guard let fd = try? systemCall("open", { open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) }) else { return nil }
            defer { _ = Glibc.close(fd) }
            return readHead(fd)
        })
    }

    /// Writes all of `bytes` (retrying short writes and EINTR); a failure names the file and the
    /// system's reason.
    public func write(_ bytes: some Collection<UInt8>) throws(OutputFileError) {
        if let code = writeAll(descriptor, bytes) {
            throw OutputFileError(path: path, "writing failed", errno: code)
        }
    }

    /// Writes `text` to standard output and checks that it got there (a full disk or a closed
    /// pipe is an error, not a silent loss). Anything `print` left in stdio's buffer goes first.
    public static func writeStandardOutput(_ text: String) throws(OutputFileError) {
        fflush(nil)
        if let code = writeAll(STDOUT_FILENO, text.utf8) {
            throw OutputFileError(path: "standard output", "writing failed", errno: code)
        }
    }

    static let symbolicLinkRefusal =
        "is a symbolic link: netprobe does not write through links (it could empty the file the link points to); remove the link or name the file itself"

    static func kindRefusal(_ kind: String) -> String {
        "is \(kind): netprobe writes only new files, existing regular files and character devices such as /dev/null"
    }

    /// O_RDWR to be able to read the first bytes; O_WRONLY when the file is not readable.
    private static func openExisting(_ path: String) throws(SystemCallError) -> Int32 {
        do {
            return try systemCall("open") { open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) }
        } catch where error.errno.rawValue == EACCES {
            return try systemCall("open") { open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) }
        }
    }

    /// The first `headLength` bytes (fewer for a short file); nil when they cannot be read.
    private static func readHead(_ fd: Int32) -> [UInt8]? {
        var head = [UInt8](repeating: 0, count: headLength)
        guard let got = try? systemCall("pread", { head.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, headLength, 0) } }) else {
            return nil
        }
        return Array(head.prefix(got))
    }

    /// The policy's verdict on an existing file; `read()` gives its first bytes (nil: unreadable).
    private static func check(_ st: stat, path: String, policy: Policy, read: () -> [UInt8]?) throws(OutputFileError) {
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFCHR: return
        case S_IFDIR: throw OutputFileError(path: path, "is a directory: name a file")
        case S_IFIFO: throw OutputFileError(path: path, kindRefusal("a FIFO"))
        case S_IFSOCK: throw OutputFileError(path: path, kindRefusal("a socket"))
        case S_IFBLK: throw OutputFileError(path: path, kindRefusal("a block device"))
        case S_IFLNK: throw OutputFileError(path: path, symbolicLinkRefusal)
        default: throw OutputFileError(path: path, kindRefusal("not a regular file"))
        }
        guard case let .replaceUnless(inputs, refuse) = policy else { return }
        for input in inputs {
            var other = stat()
            let found = input == "-" ? fstat(STDIN_FILENO, &other) == 0 : stat(input, &other) == 0
            if found && other.st_dev == st.st_dev && other.st_ino == st.st_ino {
                throw OutputFileError(path: path, "is \(input == "-" ? "standard input, " : "")the file being read: writing the report there would destroy it; name another file (-o writes the report, not packets)")
            }
        }
        guard let head = read() else {
            throw OutputFileError(path: path, "exists and cannot be read to check what it holds; remove it first or name another file")
        }
        if let reason = refuse(head) { throw OutputFileError(path: path, reason) }
    }
}

/// Why an output file could not be opened or written: names the file, what netprobe was doing
/// and the reason.
public struct OutputFileError: Error, CustomStringConvertible, Sendable, Equatable {
    public var path: String
    public var message: String

    public init(path: String, _ message: String, errno: Errno? = nil) {
        self.path = path
        self.message = errno.map { "\(message): \($0.message)" } ?? message
    }

    public var description: String { "\(path): \(message)" }
}

/// Writes every byte to `fd`, retrying short writes and EINTR; nil when done, else why not
/// (ENOSPC for a write that made no progress).
private func writeAll(_ fd: Int32, _ bytes: some Collection<UInt8>) -> Errno? {
    let result = bytes.withContiguousStorageIfAvailable { writeAll(fd, UnsafeRawBufferPointer($0)) }
    return result ?? Array(bytes).withUnsafeBytes { writeAll(fd, $0) }
}

private func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer) -> Errno? {
    var done = 0
    while done < raw.count {
        do {
            let n = try systemCall("write") { Glibc.write(fd, raw.baseAddress! + done, raw.count - done) }
            if n == 0 { return Errno(rawValue: ENOSPC) }
            done += n
        } catch {
            return error.errno
        }
    }
    return nil
}
