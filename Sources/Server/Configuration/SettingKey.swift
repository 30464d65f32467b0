/// One setting of `gc-sidecar`: its names in the three places it can be set
/// (a command-line flag, an environment variable, a config-file key), its
/// default, its meaning, and whether its value is secret.
///
/// ``SettingKey/all`` is the one list of settings: flag parsing, the config
/// file, unknown-name warnings, the effective-configuration log line, the
/// README table and `deploy/systemd/gc-sidecar.env.example` all come from it
/// (`gc-sidecar config markdown`, `gc-sidecar config env-example`,
/// `scripts/generate-config-docs.sh`; `ConfigDocsTests` fails when they drift).
public struct SettingKey: Sendable, Identifiable {
    /// How a setting's default is shown, and whether it can be checked
    /// against the code.
    public enum Default: Sendable, Hashable {
        /// A literal value; `SettingKeyTableTests` checks that an empty
        /// configuration really has it.
        case value(String)
        /// Unset by default (shown as "none", with an explanation of what
        /// unset means, if any).
        case none(String?)
        /// Follows another setting or is computed (shown as the text given).
        case derived(String)
    }

    /// Where settings are grouped in `--help`, the README and the env example.
    public enum Group: String, Sendable, CaseIterable {
        case node = "Node and listen addresses"
        case cluster = "Cluster and Raft"
        case storage = "Storage"
        case leases = "Leases and watchers"
        case cleanup = "Cleanup"
        case security = "Security"
        case logging = "Logging and configuration"
    }

    /// The environment variable (`GC_CLEANUP_MAX_CONCURRENCY`); also the
    /// name every error message uses.
    public let environmentName: String
    /// Older variables read when `environmentName` is unset, in order
    /// (`LOG_LEVEL`, `RUST_LOG` for `GC_LOG_LEVEL`).
    public let environmentAliases: [String]
    /// The flag without dashes (`cleanup-max-concurrency`); also the
    /// config-file key.
    public let flagName: String
    /// What kind of value it takes, in a word or two (`port`, `seconds`).
    public let valueName: String
    public let defaultValue: Default
    /// What it means, in a sentence or two (Markdown, backticks allowed).
    public let summary: String
    public let group: Group
    /// Whether its value must never be logged or printed (shown as `<redacted>`).
    public let isSecret: Bool
    /// Whether a config file may set it (`GC_CONFIG_FILE` itself cannot).
    public let isFileKey: Bool
    /// A value to show in examples when the default is not a value.
    public let example: String?
    /// The value in effect, read back from a parsed configuration; nil for
    /// settings that ``SidecarConfig`` does not keep (the effective value is
    /// then the one given, or the default).
    let effective: (@Sendable (SidecarConfig) -> String)?

    public var id: String { environmentName }

    /// `--cleanup-max-concurrency`.
    public var flag: String { "--" + flagName }

    init(
        _ environmentName: String, flag: String? = nil, aliases: [String] = [], _ valueName: String,
        default defaultValue: Default, group: Group, secret: Bool = false, fileKey: Bool = true,
        example: String? = nil, _ summary: String, effective: (@Sendable (SidecarConfig) -> String)? = nil
    ) {
        self.environmentName = environmentName
        self.environmentAliases = aliases
        self.flagName = flag ?? Self.flagName(forEnvironmentName: environmentName)
        self.valueName = valueName
        self.defaultValue = defaultValue
        self.summary = summary
        self.group = group
        self.isSecret = secret
        self.isFileKey = fileKey
        self.example = example
        self.effective = effective
    }

    /// `GC_CLEANUP_MAX_CONCURRENCY` → `cleanup-max-concurrency`;
    /// `DATABASE_URL` → `database-url`.
    static func flagName(forEnvironmentName name: String) -> String {
        let bare = name.hasPrefix("GC_") ? String(name.dropFirst(3)) : name
        return bare.lowercased().replacingUnderscores()
    }

    /// The default as shown to people ("none" for unset ones).
    public var defaultText: String {
        switch defaultValue {
        case .value(let v): v
        case .none: "none"
        case .derived(let text): text
        }
    }

    /// The setting called `name` in a config file: the flag name, with `_`
    /// accepted for `-` and the variable name (`GC_SERVER_PORT`) accepted too.
    public static func fileKey(named name: String) -> SettingKey? {
        let normalized = normalizedFileKey(name)
        return all.first { $0.isFileKey && $0.flagName == normalized }
    }

    /// The setting whose flag is `--name`.
    public static func flag(named name: String) -> SettingKey? {
        all.first { $0.flagName == name }
    }

    /// The setting read from the environment variable `name` (or one of its aliases).
    public static func environment(named name: String) -> SettingKey? {
        all.first { $0.environmentName == name || $0.environmentAliases.contains(name) }
    }

    static func normalizedFileKey(_ name: String) -> String {
        var key = name.trimmingWhitespace().lowercased().replacingUnderscores()
        if key.hasPrefix("gc-") { key.removeFirst(3) }
        return key
    }
}

extension String {
    fileprivate func replacingUnderscores() -> String {
        String(map { $0 == "_" ? "-" : $0 })
    }
}
