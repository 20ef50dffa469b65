import Foundation

/// netprobe's JSON: pretty-printed, keys sorted, slashes as they are. Every JSON file and
/// `--format json` output goes through it, so the same value always gives the same bytes.
public enum JSONOutput {
    public static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
