import Foundation
import Logging

/// The value every setting has once flags, environment, config file and
/// defaults are merged, with secrets redacted: what `gc-sidecar` logs once
/// at start and `gc-sidecar config show` prints.
public struct EffectiveConfiguration: Sendable {
    /// One setting's value in effect.
    public struct Entry: Sendable, Hashable {
        /// The variable name (`GC_SERVER_PORT`).
        public var name: String
        /// The value in effect, secrets replaced by `<redacted>`.
        public var value: String
        public var source: SettingSource
    }

    /// Every setting of ``SettingKey/all``, in its order.
    public let entries: [Entry]
    /// The config file read, if any.
    public let configFile: String?

    /// The text that stands for a secret.
    public static let redacted = "<redacted>"

    public init(config: SidecarConfig, settings: ResolvedSettings) {
        configFile = settings.configFile
        entries = SettingKey.all.map { key in
            let given = ([key.environmentName] + key.environmentAliases).lazy.compactMap { settings.values[$0] }.first
            let value = key.effective?(config) ?? given ?? key.defaultText
            return Entry(name: key.environmentName, value: Self.redact(value, secret: key.isSecret), source: settings.source(of: key))
        }
    }

    /// Log metadata: `settings` (name → value) and `from` (name → flag, env
    /// or file, for the values not at their default).
    public var metadata: Logger.Metadata {
        var settings: Logger.Metadata = [:]
        var from: Logger.Metadata = [:]
        for entry in entries {
            settings[entry.name] = .string(entry.value)
            if entry.source != .default { from[entry.name] = .string(entry.source.rawValue) }
        }
        var metadata: Logger.Metadata = ["settings": .dictionary(settings), "from": .dictionary(from)]
        if let configFile { metadata["config_file"] = .string(configFile) }
        return metadata
    }

    /// One `NAME=value` line per setting, the source of non-default values
    /// in a trailing comment.
    public func rendered() -> String {
        entries.map { entry in
            entry.source == .default ? "\(entry.name)=\(entry.value)" : "\(entry.name)=\(entry.value)  # \(entry.source.rawValue)"
        }.joined(separator: "\n") + "\n"
    }

    /// A secret's value becomes `<redacted>` (a URL keeps all but its
    /// password: `postgres://gc:<redacted>@db:5432/gc`); in any other value a
    /// URL's password is redacted too. "none" (unset) stays.
    static func redact(_ value: String, secret: Bool) -> String {
        if let withoutPassword = redactingURLPassword(value) { return withoutPassword }
        if secret, value != "none", !value.isEmpty { return redacted }
        return value
    }

    /// `scheme://user:password@host...` with the password replaced; nil when
    /// `value` holds no URL with a password.
    static func redactingURLPassword(_ value: String) -> String? {
        guard let schemeEnd = value.range(of: "://") else { return nil }
        let authorityStart = schemeEnd.upperBound
        let authorityEnd = value[authorityStart...].firstIndex(where: { "/?#".contains($0) }) ?? value.endIndex
        let authority = value[authorityStart..<authorityEnd]
        guard let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") else { return nil }
        return String(value[..<authority.index(after: colon)]) + redacted + String(value[at...])
    }
}
