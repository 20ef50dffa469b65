#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetprobeCore
import NetprobeSystem

/// Writes a `--timestamps-out` file (see `ClientRecordFormat`) through one reusable buffer.
///
/// `add` never throws, so it can sit in a load run's `onRequest` hook: the first write error is
/// kept, later entries are dropped, and `finish()` reports it.
public final class ClientRecordWriter {
    public let path: String
    private let fd: Int32
    private let buffer: UnsafeMutableRawPointer
    private let capacity = 1 << 18
    private var used = 0
    private var firstError: Int32?
    private var closed = false

    /// Creates (or truncates) `path` and writes the header.
    public init(path: String) throws(TraceError) {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TraceError(file: path, offset: 0, "cannot create: \(Errno(rawValue: errno).message)") }
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        let header = ClientRecordFormat.header()
        header.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        used = header.count
    }

    deinit {
        if !closed { try? finish() }
        buffer.deallocate()
    }

    /// Declares a connection; call before adding requests that use it.
    public func add(_ connection: ClientConnection) {
        reserveEntry()
        ClientRecordFormat.encode(connection.entry, into: buffer + used)
        used += ClientRecordFormat.entryLength
    }

    /// Appends a request.
    @inline(__always)
    public func add(_ record: ClientRequestRecord) {
        reserveEntry()
        ClientRecordFormat.encode(record.entry, into: buffer + used)
        used += ClientRecordFormat.entryLength
    }

    /// Writes what is buffered and closes the file; throws the first write error of the file's life.
    public func finish() throws(TraceError) {
        guard !closed else { return }
        flush()
        closed = true
        if close(fd) != 0 && firstError == nil { firstError = errno }
        if let code = firstError {
            throw TraceError(file: path, offset: 0, "writing the timestamps failed: \(Errno(rawValue: code).message)")
        }
    }

    @inline(__always)
    private func reserveEntry() {
        if used + ClientRecordFormat.entryLength > capacity { flush() }
    }

    private func flush() {
        var done = 0
        while done < used && firstError == nil && !closed {
            let n = write(fd, buffer + done, used - done)
            if n > 0 {
                done += n
            } else if n < 0 && errno != EINTR {
                firstError = errno
            }
        }
        used = 0
    }
}

/// Reads a `--timestamps-out` file entry by entry, in bounded memory.
///
/// ```swift
/// let reader = try ClientRecordReader(path: "load.ts")
/// while let r = try reader.next() { print(r.client, r.requestOffset, r.latencyNs) }
/// ```
public final class ClientRecordReader {
    public let path: String
    /// Connections declared so far, by index.
    public private(set) var connections: [Int: ClientConnection] = [:]
    private let fd: Int32
    private let buffer: UnsafeMutableRawPointer
    private let capacity = 1 << 16 - (1 << 16) % ClientRecordFormat.entryLength
    private var start = 0
    private var end = 0
    private var fileOffset: Int64 = Int64(ClientRecordFormat.headerLength)
    private var atEOF = false

    /// Opens `path` and checks its header.
    public init(path: String) throws(TraceError) {
        self.path = path
        let opened = open(path, O_RDONLY | O_CLOEXEC)
        guard opened >= 0 else { throw TraceError(file: path, offset: 0, "cannot open: \(Errno(rawValue: errno).message)") }
        var header = [UInt8](repeating: 0, count: ClientRecordFormat.headerLength)
        let n = header.withUnsafeMutableBytes { read(opened, $0.baseAddress!, $0.count) }
        let problem = header.withUnsafeBytes { raw in
            ClientRecordFormat.headerProblem(UnsafeRawBufferPointer(rebasing: raw[0..<max(0, n)]))
        }
        if let problem {
            close(opened)
            throw TraceError(file: path, offset: 0, problem)
        }
        fd = opened
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit {
        close(fd)
        buffer.deallocate()
    }

    /// The next request; connection entries are absorbed into `connections` on the way. nil at
    /// the end of the file. Throws on a truncated entry or a request of an undeclared connection.
    public func next() throws(TraceError) -> ClientRequestRecord? {
        while let entry = try nextEntry() {
            switch ClientRecordFormat.decode(entry) {
            case let .connection(c):
                connections[Int(c.index)] = ClientConnection(c)
            case let .request(r):
                if let c = connections[Int(r.connection)], let record = ClientRequestRecord(r, connection: c) { return record }
                throw TraceError(file: path, offset: fileOffset - Int64(ClientRecordFormat.entryLength),
                                 "a request entry with an unknown command (\(r.command)) or undeclared connection (\(r.connection))")
            case .unknown:
                continue
            }
        }
        return nil
    }

    /// The next entry, whatever its kind: valid until the next call. nil at the end of the file;
    /// throws on a truncated entry.
    private func nextEntry() throws(TraceError) -> UnsafeRawBufferPointer? {
        let length = ClientRecordFormat.entryLength
        if end - start < length {
            try refill()
            if end == start { return nil }
            if end - start < length {
                throw TraceError(file: path, offset: fileOffset,
                                 "the file ends inside an entry (\(end - start) of \(length) bytes)")
            }
        }
        let entry = UnsafeRawBufferPointer(start: buffer + start, count: length)
        start += length
        fileOffset += Int64(length)
        return entry
    }

    /// Cuts the rest of the file into self-contained blocks of records (the form a trace stores,
    /// see `ClientRecordFormat.BlockBuilder`) and hands them to `body` one at a time, so memory
    /// holds one block whatever the file's size.
    public func forEachBlock(maximumRequests: Int = 20_000, _ body: ([UInt8]) throws -> Void) throws {
        var builder = ClientRecordFormat.BlockBuilder(maximumRequests: maximumRequests)
        while let entry = try nextEntry() {
            if let block = builder.add(entry) { try body(block) }
        }
        if let block = builder.finish() { try body(block) }
    }

    /// Reads a whole file: its connections in index order and every request.
    public static func readAll(path: String) throws(TraceError) -> (connections: [ClientConnection], records: [ClientRequestRecord]) {
        let reader = try ClientRecordReader(path: path)
        var records: [ClientRequestRecord] = []
        while let r = try reader.next() { records.append(r) }
        return (reader.connections.values.sorted { $0.index < $1.index }, records)
    }

    private func refill() throws(TraceError) {
        if start > 0 {
            buffer.copyMemory(from: buffer + start, byteCount: end - start)
            end -= start
            start = 0
        }
        while end < capacity && !atEOF {
            let n = read(fd, buffer + end, capacity - end)
            if n > 0 {
                end += n
            } else if n == 0 {
                atEOF = true
            } else if errno != EINTR {
                throw TraceError(file: path, offset: fileOffset + Int64(end), "read failed: \(Errno(rawValue: errno).message)")
            }
        }
    }
}
