import Foundation

/// netprobe's JSON: pretty-printed, keys sorted, slashes as they are. Every JSON file and
/// `--format json` output goes through it, so the same value always gives the same bytes.
public enum JSONOutput {
    public static func encode(_ value: some Encodable) throws -> String {
        try encode(value, formatting: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// The same on one line: a record of a stream (`stats --format json` prints one per interval,
    /// JSON Lines), which a script reads line by line as it comes.
    public static func encodeLine(_ value: some Encodable) throws -> String {
        try encode(value, formatting: [.sortedKeys, .withoutEscapingSlashes])
    }

    private static func encode(_ value: some Encodable, formatting: JSONEncoder.OutputFormatting) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = formatting
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
