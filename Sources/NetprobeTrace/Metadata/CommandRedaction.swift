/// Credentials taken out of a load command line before it is stored (the trace's run metadata,
/// hence the report) or printed.
///
/// `netprobe capture -- redis-benchmark -a s3cr3t ...` runs the command as given; what netprobe
/// keeps of it has the secrets replaced by `<redacted>`:
/// - the value of a password or user option of redis-cli, redis-benchmark, memtier_benchmark and
///   redis-server: `-a X`, `--pass X`, `--password X`, `--user X`, `--auth X`,
///   `--authenticate X`, `--requirepass X`, `--masterauth X`, `--masteruser X`, also written
///   `--pass=X` (and `-aX` for the short one);
/// - the user and password of a URI: `redis://user:pass@host` (any scheme) keeps only the host;
/// - every argument after an `AUTH` word (`redis-cli AUTH user pass`, `HELLO 3 AUTH user pass`),
///   and the value after `requirepass`, `masterauth`, `masteruser` (`CONFIG SET requirepass X`);
/// - environment assignments (`env REDISCLI_AUTH=x redis-cli`) whose upper-case name speaks of a
///   password, authentication, secret or token.
/// A command line inside one argument (`sh -c 'redis-cli -a X ping'`) is redacted word by word
/// (split at spaces; shell quoting inside it is not interpreted).
/// `--askpass` (redis-cli reads the password from the terminal) carries nothing to hide. Redacting
/// twice changes nothing, so traces written before this existed are redacted when reported.
public enum CommandRedaction {
    public static let placeholder = "<redacted>"

    /// Options whose next argument (or `=value`) is a password or a user name.
    static let secretOptions: Set<String> = [
        "-a", "--pass", "--password", "--user", "--auth", "--authenticate", "--requirepass", "--masterauth",
        "--masteruser",
    ]

    /// Words in an environment variable's name that mark its value as a secret.
    static let secretNameParts = ["PASS", "AUTH", "SECRET", "TOKEN"]

    /// `argv` with its credentials replaced by `placeholder`.
    public static func redact(_ argv: [String]) -> [String] {
        var out: [String] = []
        out.reserveCapacity(argv.count)
        var hideNext = false
        var afterAuth = false
        for arg in argv {
            if afterAuth || hideNext {
                out.append(arg == placeholder ? arg : placeholder)
                hideNext = false
                continue
            }
            if let assignment = redactedAssignment(arg) {
                out.append(assignment)
            } else if secretOptions.contains(arg) {
                out.append(arg)
                hideNext = true
            } else if let eq = arg.firstIndex(of: "="), arg.hasPrefix("--"), secretOptions.contains(String(arg[..<eq])) {
                out.append(arg[..<eq] + "=" + placeholder)
            } else if arg.hasPrefix("-a"), !arg.hasPrefix("--"), arg.count > 2 {
                out.append("-a" + placeholder)
            } else if ["REQUIREPASS", "MASTERAUTH", "MASTERUSER"].contains(arg.uppercased()) {
                out.append(arg) // CONFIG SET requirepass VALUE
                hideNext = true
            } else if arg.uppercased() == "AUTH" {
                out.append(arg)
                afterAuth = true
            } else if arg.contains(" ") {
                // A command line in one argument (sh -c '...'): the same rules on its words.
                let words = arg.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
                out.append(redact(words).joined(separator: " "))
            } else {
                out.append(redactedURIs(arg))
            }
        }
        return out
    }

    /// `NAME=value` with a secret-sounding upper-case NAME (an environment assignment, as
    /// `env REDISCLI_AUTH=x ...` or `sh -c` take them), redacted; nil for anything else.
    private static func redactedAssignment(_ arg: String) -> String? {
        guard let eq = arg.firstIndex(of: "="), eq != arg.startIndex else { return nil }
        let name = arg[..<eq]
        guard name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isUppercase || $0.isNumber)) }) else { return nil }
        guard secretNameParts.contains(where: { name.contains($0) }) else { return nil }
        return name + "=" + placeholder
    }

    /// Every `scheme://user:pass@host` in `arg` as `scheme://<redacted>@host`.
    private static func redactedURIs(_ arg: String) -> String {
        guard arg.contains("://"), arg.contains("@") else { return arg }
        var out = ""
        var rest = Substring(arg)
        while let marker = rest.range(of: "://") {
            out += rest[..<marker.upperBound]
            rest = rest[marker.upperBound...]
            // The authority ends at the first '/', '?' or '#'; user info ends at its last '@'.
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
            if let at = rest[..<authorityEnd].lastIndex(of: "@") {
                out += placeholder
                rest = rest[at...]
            }
        }
        return out + rest
    }
}
