import NetprobeModel
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A forward-only window over a file, read with `read(2)` into one reusable buffer.
///
/// Memory is bounded by the largest block asked for (never more than `maximumWindow`), not by the
/// file size: a trace of any length streams through the same buffer. Bytes handed out by
/// `bytes(at:count:)` stay valid until the next call that refills the window.
final class ByteSource {
    let path: String
    private let fd: Int32
    private let ownsFD: Bool
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    /// Valid bytes are buffer[start..<end]; `start` corresponds to file offset `bufferOffset`.
    private var start = 0
    private var end = 0
    private var bufferOffset: Int64 = 0
    private var atEOF = false
    /// The largest window a caller may ask for; a bigger request is a damaged or hostile file.
    let maximumWindow: Int

    /// Opens `path` for reading ("-" reads standard input).
    init(path: String, initialCapacity: Int = 1 << 20, maximumWindow: Int = 64 << 20) throws {
        self.path = path
        if path == "-" {
            fd = 0
            ownsFD = false
        } else {
            let opened = open(path, O_RDONLY | O_CLOEXEC)
            if opened < 0 {
                throw TraceError(file: path, offset: 0, "cannot open: \(String(cString: strerror(errno)))")
            }
            fd = opened
            ownsFD = true
        }
        capacity = max(initialCapacity, 4096)
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        self.maximumWindow = maximumWindow
    }

    /// A source over bytes already in memory (fuzzing, tests, data from elsewhere).
    init(bytes: [UInt8], name: String, maximumWindow: Int = 64 << 20) {
        path = name
        fd = -1
        ownsFD = false
        capacity = max(bytes.count, 16)
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 16), alignment: 16)
        bytes.withUnsafeBytes { if let base = $0.baseAddress { storage.copyMemory(from: base, byteCount: bytes.count) } }
        buffer = storage
        end = bytes.count
        atEOF = true
        self.maximumWindow = maximumWindow
    }

    deinit {
        buffer.deallocate()
        if ownsFD { close(fd) }
    }

    /// File offset of the first byte not yet consumed.
    var offset: Int64 { bufferOffset }

    /// Makes `count` bytes available from the current position. Returns the number available,
    /// which is smaller than `count` only at the end of the file.
    func available(_ count: Int) throws -> Int {
        precondition(count <= maximumWindow, "window larger than the cap; callers check first")
        if end - start >= count || atEOF { return min(count, end - start) }
        if count > capacity {
            var newCapacity = capacity
            while newCapacity < count { newCapacity *= 2 }
            newCapacity = min(newCapacity, maximumWindow)
            let newBuffer = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
            newBuffer.copyMemory(from: buffer + start, byteCount: end - start)
            buffer.deallocate()
            buffer = newBuffer
            capacity = newCapacity
            end -= start
            start = 0
        } else if start > 0 {
            (buffer).copyMemory(from: buffer + start, byteCount: end - start)
            end -= start
            start = 0
        }
        while end - start < count && !atEOF {
            let n = read(fd, buffer + end, capacity - end)
            if n > 0 {
                end += n
            } else if n == 0 {
                atEOF = true
            } else if errno != EINTR {
                throw TraceError(file: path, offset: bufferOffset + Int64(end - start),
                                 "read failed: \(String(cString: strerror(errno)))")
            }
        }
        return min(count, end - start)
    }

    /// The next `count` bytes without consuming them; the caller made them available first.
    func peek(_ count: Int) -> UnsafeRawBufferPointer {
        precondition(end - start >= count)
        return UnsafeRawBufferPointer(start: buffer + start, count: count)
    }

    /// Consumes `count` bytes (which must be available).
    func skip(_ count: Int) {
        precondition(end - start >= count)
        start += count
        bufferOffset += Int64(count)
    }

    /// Consumes `count` bytes that may extend past the buffered window (used for huge blocks that
    /// are skipped without being read into memory). Returns the number actually skipped.
    func skipLarge(_ count: Int64) throws -> Int64 {
        var remaining = count
        while remaining > 0 {
            let have = try available(Int(min(remaining, Int64(capacity))))
            if have == 0 { break }
            skip(have)
            remaining -= Int64(have)
        }
        return count - remaining
    }
}
