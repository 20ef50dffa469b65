import Foundation
import NetprobeCore

/// One field of a tracepoint's record, as the tracefs `format` file describes it.
public struct TracepointField: Sendable, Equatable {
    public var name: String
    /// The C type as the kernel writes it ("unsigned int", "const void *", "__data_loc char[]").
    public var type: String
    /// Byte offset from the start of the record, and size in bytes.
    public var offset: Int
    public var size: Int
    public var isSigned: Bool

    public init(name: String, type: String, offset: Int, size: Int, isSigned: Bool) {
        self.name = name
        self.type = type
        self.offset = offset
        self.size = size
        self.isSigned = isSigned
    }

    /// A `__data_loc` field: a u32 whose low 16 bits are the data's offset from the record's start
    /// and whose high 16 bits its length (a string's includes its NUL).
    public var isDataLocation: Bool { type.hasPrefix("__data_loc") }
}

/// Why a tracefs `format` text could not be read: the line (1-based) and what was wrong.
public struct TracepointFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var message: String
    public var description: String { "line \(line): \(message)" }
}

/// A tracepoint's layout from tracefs `events/GROUP/NAME/format`: its id (the perf_event_open
/// config) and where each field lies in the raw record. netprobe never hard-codes these: they
/// change between kernel versions.
public struct TracepointFormat: Sendable, Equatable {
    public var name: String
    public var id: UInt32
    /// The common fields (common_type, common_pid ...) first, then the event's own.
    public var fields: [TracepointField]
    /// The `print fmt:` line's text, after the label.
    public var printFormat: String

    /// Parses the text of a `format` file.
    public static func parse(_ text: String) throws(TracepointFormatError) -> TracepointFormat {
        var name: String?
        var id: UInt32?
        var fields: [TracepointField] = []
        var printFormat = ""
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line == "format:" { continue }
            if let v = line.removingPrefix("name:") {
                name = v.trimmingCharacters(in: .whitespaces)
            } else if let v = line.removingPrefix("ID:") {
                guard let n2 = UInt32(v.trimmingCharacters(in: .whitespaces)) else {
                    throw TracepointFormatError(line: n + 1, message: "ID is not a number: \(v)")
                }
                id = n2
            } else if let v = line.removingPrefix("print fmt:") {
                printFormat = v.trimmingCharacters(in: .whitespaces)
            } else if line.hasPrefix("field:") {
                fields.append(try parseField(line, line: n + 1))
            } else {
                throw TracepointFormatError(line: n + 1, message: "unexpected line: \(line.prefix(80))")
            }
        }
        guard let name else { throw TracepointFormatError(line: 1, message: "no name: line") }
        guard let id else { throw TracepointFormatError(line: 1, message: "no ID: line") }
        guard !fields.isEmpty else { throw TracepointFormatError(line: 1, message: "no fields") }
        return TracepointFormat(name: name, id: id, fields: fields, printFormat: printFormat)
    }

    /// `field:unsigned int len;\toffset:16;\tsize:4;\tsigned:0;`
    private static func parseField(_ text: String, line: Int) throws(TracepointFormatError) -> TracepointField {
        var declaration: String?
        var offset: Int?, size: Int?, signed: Bool?
        for part in text.split(separator: ";") {
            let p = part.trimmingCharacters(in: .whitespaces)
            if p.isEmpty { continue }
            guard let colon = p.firstIndex(of: ":") else {
                throw TracepointFormatError(line: line, message: "expected key:value, found \(p)")
            }
            let key = p[..<colon], value = String(p[p.index(after: colon)...])
            switch key {
            case "field": declaration = value
            case "offset": offset = Int(value)
            case "size": size = Int(value)
            case "signed": signed = value == "1"
            default: break // newer kernels may add keys
            }
        }
        guard let declaration, let offset, let size, let signed else {
            throw TracepointFormatError(line: line, message: "a field needs field:, offset:, size: and signed: (\(text.prefix(80)))")
        }
        // The name is the last word, without an array suffix: "char comm[16]", "__data_loc char[] name".
        var words = declaration.split(separator: " ").map(String.init)
        guard var last = words.popLast(), !words.isEmpty else {
            throw TracepointFormatError(line: line, message: "cannot tell the type from the name in \(declaration)")
        }
        var type = words.joined(separator: " ")
        if let bracket = last.firstIndex(of: "[") {
            type += String(last[bracket...])
            last = String(last[..<bracket])
        }
        return TracepointField(name: last, type: type, offset: offset, size: size, isSigned: signed)
    }

    public subscript(field name: String) -> TracepointField? { fields.first { $0.name == name } }

    /// The names `__print_symbolic(REC->field, { 2, "NOT_SPECIFIED" }, ...)` gives a field's values
    /// in `print fmt` (kfree_skb's drop reasons); empty when there are none.
    public func symbols(of field: String) -> [UInt64: String] {
        guard let start = printFormat.range(of: "__print_symbolic(REC->\(field),") else { return [:] }
        var out: [UInt64: String] = [:]
        var rest = printFormat[start.upperBound...]
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else { break }
            let pair = rest[rest.index(after: open)..<close]
            let parts = pair.split(separator: ",", maxSplits: 1)
            if parts.count == 2, let value = UInt64(parts[0].trimmingCharacters(in: .whitespaces)) {
                out[value] = parts[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
            rest = rest[rest.index(after: close)...]
            // The list ends at the call's closing parenthesis.
            if rest.drop(while: { $0 == " " }).first == ")" { break }
        }
        return out
    }
}

/// The tracing file system: where it is mounted and what its events are.
public struct Tracefs: Sendable {
    /// The mount point in use (/sys/kernel/tracing, or the old /sys/kernel/debug/tracing).
    public var root: String

    public static let defaultMount = "/sys/kernel/tracing"
    static let candidates = [defaultMount, "/sys/kernel/debug/tracing"]

    /// Finds tracefs. With `mountIfNeeded`, mounts it at /sys/kernel/tracing when nothing is
    /// mounted there yet (mount(2); needs root): the kernel has it, only the mount is missing.
    public static func locate(mountIfNeeded: Bool) throws(KernelEventRecorderError) -> Tracefs {
        for c in candidates where FileManager.default.fileExists(atPath: c + "/events") {
            return Tracefs(root: c)
        }
        // Mounted but closed to this user (tracefs is root's: mode 0700).
        if geteuid() != 0, access(defaultMount, X_OK) != 0, errno == EACCES {
            throw .notPermitted("\(defaultMount) is readable only by root (tracefs): run as root")
        }
        var tried = ""
        if mountIfNeeded, FileManager.default.fileExists(atPath: defaultMount) {
            if mount("nodev", defaultMount, "tracefs", 0, nil) == 0, FileManager.default.fileExists(atPath: defaultMount + "/events") {
                return Tracefs(root: defaultMount)
            }
            tried = " (mounting it failed: \(String(cString: strerror(errno))))"
        }
        throw .noTracefs("tracefs is not mounted at \(candidates.joined(separator: " or "))\(tried): as root, `mount -t tracefs nodev \(defaultMount)`")
    }

    /// The format of tracepoint GROUP:NAME.
    public func format(group: String, name: String) throws(KernelEventRecorderError) -> TracepointFormat {
        let path = "\(root)/events/\(group)/\(name)/format"
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            if !FileManager.default.fileExists(atPath: "\(root)/events/\(group)/\(name)") {
                throw .tracepointMissing("\(group):\(name)", path: path)
            }
            throw .notPermitted("cannot read \(path): \(error.localizedDescription) (reading tracefs needs root)")
        }
        do {
            return try TracepointFormat.parse(text)
        } catch {
            throw .badFormat("\(group):\(name)", "\(path): \(error)")
        }
    }
}

extension String {
    fileprivate func removingPrefix(_ prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil
    }
}
