/// Where a setting's value came from.
public enum SettingSource: String, Sendable, Hashable {
    case flag
    case environment = "env"
    case file
    case `default`
}

/// The settings given on the command line, in the environment and in a
/// config file, merged with the precedence flag > environment > file >
/// default, and the warnings about names that are not settings.
///
/// The merge produces the environment-style map that
/// ``SidecarConfig/init(environment:)`` validates, so every value, wherever
/// it came from, is checked by the same code with the same messages.
public struct ResolvedSettings: Sendable {
    /// Variable name → value, as if everything had come from the environment.
    public private(set) var values: [String: String] = [:]
    /// Variable name → where its value came from (absent: default).
    public private(set) var sources: [String: SettingSource] = [:]
    /// Names that are not settings, each with the nearest setting.
    public private(set) var warnings: [String] = []
    /// The config file read, if any.
    public private(set) var configFile: String?

    /// Merges the three sources.
    ///
    /// - Parameters:
    ///   - flags: from ``SettingFlags/parse(_:)`` (variable name → value).
    ///   - environment: the process environment; unknown `GC_*` names are
    ///     warned about, other names ignored.
    ///   - file: from ``ConfigFile/parse(_:path:)`` (variable name → value).
    public init(flags: [String: String], environment: [String: String], file: ConfigFile? = nil) {
        configFile = file?.path
        warnings += UnknownSettings.environmentWarnings(environment)
        warnings += file?.warnings ?? []
        for key in SettingKey.all {
            if let value = flags[key.environmentName] {
                set(key.environmentName, value, from: .flag)
                continue
            }
            let fromEnvironment = ([key.environmentName] + key.environmentAliases).filter { environment[$0]?.trimmingWhitespace().isEmpty == false }
            if !fromEnvironment.isEmpty {
                // Aliases keep their own names: their syntax and error
                // messages (RUST_LOG) are theirs.
                for name in fromEnvironment {
                    set(name, environment[name] ?? "", from: .environment)
                }
                continue
            }
            if let value = file?.values[key.environmentName] {
                set(key.environmentName, value, from: .file)
            }
        }
    }

    private mutating func set(_ name: String, _ value: String, from source: SettingSource) {
        values[name] = value
        sources[name] = source
    }

    /// Where `key` got its value.
    public func source(of key: SettingKey) -> SettingSource {
        for name in [key.environmentName] + key.environmentAliases {
            if let s = sources[name] { return s }
        }
        return .default
    }

    /// Adds to an error where its value came from when that was not the
    /// environment (a flag or the config file), so the message points at
    /// what to fix.
    func locate(_ error: SidecarConfig.Error) -> SidecarConfig.Error {
        guard let key = SettingKey.environment(named: error.variable) else { return error }
        var located = error
        switch source(of: key) {
        case .flag: located.origin = "set by \(key.flag)"
        case .file: located.origin = "set by '\(key.flagName)' in \(configFile ?? "the config file")"
        case .environment, .default: break
        }
        return located
    }
}

/// Parses the settings given as flags: `--name value` or `--name=value`, for
/// every setting's flag name; the last of repeated flags wins.
public enum SettingFlags {
    /// - Throws: ``SidecarConfig/Error`` naming an unknown flag (with the
    ///   nearest known one) or a flag without a value.
    public static func parse(_ arguments: [String]) throws(SidecarConfig.Error) -> [String: String] {
        var values: [String: String] = [:]
        var i = arguments.startIndex
        while i < arguments.endIndex {
            let argument = arguments[i]
            i += 1
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw .init(variable: argument, message: "unexpected argument; settings are given as --name value (gc-sidecar serve --help lists them)")
            }
            var name = String(argument.dropFirst(2))
            var value: String?
            if let eq = name.firstIndex(of: "=") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let key = SettingKey.flag(named: name) else {
                let hint = UnknownSettings.nearest(to: name, among: SettingKey.all.map(\.flagName)).map { "; did you mean --\($0)?" } ?? ""
                throw .init(variable: "--\(name)", message: "unknown flag\(hint) (gc-sidecar serve --help lists the settings)")
            }
            if value == nil {
                guard i < arguments.endIndex, !arguments[i].hasPrefix("--") else {
                    throw .init(variable: key.flag, message: "needs a value (\(key.flag) <\(key.valueName)>)")
                }
                value = arguments[i]
                i += 1
            }
            values[key.environmentName] = value
        }
        return values
    }
}
