import Foundation

/// Where `capture` finds the password for Redis's INFO: `--redis-password-file FILE` (its first
/// line), else the environment variable `REDISCLI_AUTH` (redis-cli's own). Never from the command
/// line itself (it would show in `ps` and in shell history), never stored.
public enum RedisPassword {
    public static let environmentVariable = "REDISCLI_AUTH"

    /// The password, or nil when neither source gives one. A file that cannot be read or holds
    /// nothing is an error naming it.
    public static func load(file: String?, environment: [String: String]) throws -> String? {
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw CaptureError("cannot read --redis-password-file \(file)")
            }
            let text = String(decoding: data, as: UTF8.self)
            let line = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map {
                $0.hasSuffix("\r") ? $0.dropLast() : $0
            } ?? ""
            guard !line.isEmpty else { throw CaptureError("--redis-password-file \(file) holds no password on its first line") }
            return String(line)
        }
        if let value = environment[environmentVariable], !value.isEmpty { return value }
        return nil
    }
}
