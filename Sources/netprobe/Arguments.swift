import ArgumentParser
import NetprobeCore

/// A duration option as typed: "500ms", "10s", "1m30s", "2" (seconds), read by `TimeSpan`, the one
/// duration syntax of every command.
///
/// Taking the text and checking it in `validate()` (rather than making `TimeSpan` the option's
/// type) lets the error say what is wrong in words: "--duration must be positive, got -5"
/// instead of ArgumentParser's "The value '-5' is invalid". Declare such options with
/// `parsing: .unconditional`, else "-5" is read as an option and the error is "Missing value".
struct DurationArgument: ExpressibleByArgument, Sendable {
    let text: String

    init(argument: String) { text = argument }
    init(_ span: TimeSpan) { text = span.description }

    /// How help shows a default ("10s", "2m").
    var defaultValueDescription: String { text }

    /// The length, or a message naming `option`, the value and what it takes.
    func checked(_ option: String) throws -> TimeSpan {
        if let span = TimeSpan(parsing: text) { return span }
        if text.hasPrefix("--") || text.isEmpty {
            throw ValidationError("\(option) needs a duration such as 500ms, 10s or 1m30s, got '\(text)'")
        }
        let unsigned = text.hasPrefix("-") ? String(text.dropFirst()) : text
        let number = unsigned.prefix { $0.isNumber || $0 == "." }
        let isZero = Double(number) == 0 && unsigned.dropFirst(number.count).allSatisfy(\.isLetter)
        if isZero || (text.hasPrefix("-") && TimeSpan(parsing: unsigned) != nil) {
            throw ValidationError("\(option) must be positive, got \(text)")
        }
        throw ValidationError("\(option) takes a duration such as 500ms, 10s or 1m30s (at most 100 years), got '\(text)'")
    }
}

/// Range checks of numeric options, with the message a user needs ("-c must be at least 1, got
/// -5"). Numeric options are declared with `parsing: .unconditional` (arrays:
/// `.unconditionalSingleValue`) so that a negative number reaches these checks.
enum ArgumentCheck {
    static func positive<T: Numeric & Comparable>(_ value: T?, _ option: String) throws {
        guard let value, !(value > 0) else { return }
        throw ValidationError("\(option) must be positive, got \(value)")
    }

    static func range(_ value: Int?, _ bounds: ClosedRange<Int>, _ option: String) throws {
        guard let value, !bounds.contains(value) else { return }
        if bounds.lowerBound == 1 && value < 1 {
            throw ValidationError("\(option) must be at least 1, got \(value)")
        }
        throw ValidationError("\(option) must be between \(bounds.lowerBound) and \(bounds.upperBound), got \(value)")
    }

    /// TCP ports given as `--port` (Int, so that 0, -1 and 70000 get this message rather than a
    /// parse error).
    static func ports(_ values: [Int], _ option: String = "--port") throws -> Set<UInt16> {
        for v in values { try range(v, 1...65_535, option) }
        return Set(values.map { UInt16($0) })
    }

    /// The value given under the current spelling or under an old one kept (hidden) for scripts.
    static func either<T>(_ current: T?, _ currentName: String, old: T?, _ oldName: String) throws -> T? {
        if current != nil && old != nil {
            throw ValidationError("\(oldName) is the old spelling of \(currentName): give one of them")
        }
        return current ?? old
    }
}
