/// A configuration read from flags, the environment and a config file, with
/// what it took to get there.
public struct LoadedConfiguration: Sendable {
    /// The validated configuration.
    public let config: SidecarConfig
    /// Each setting's value and source before validation.
    public let settings: ResolvedSettings
    /// Every setting's value in effect, secrets redacted (log it once).
    public let effective: EffectiveConfiguration
    /// Names that are not settings (`GC_*` variables, config-file keys),
    /// each with the nearest setting: log them as warnings.
    public var warnings: [String] { settings.warnings }
}

extension SidecarConfig {
    /// Reads the configuration with the precedence flag > environment >
    /// config file > default.
    ///
    /// - Parameters:
    ///   - arguments: setting flags (`--cleanup-max-concurrency 64`,
    ///     `--server-port=6000`), see ``SettingFlags``.
    ///   - environment: the process environment.
    ///   - configFile: the `--config` file, if given; else `GC_CONFIG_FILE`
    ///     from `environment`, if set.
    /// - Throws: ``Error`` for an unknown flag, an unreadable or malformed
    ///   config file, or the first setting with an unusable value (saying
    ///   which flag or file key set it when it was not the environment).
    public static func load(arguments: [String], environment: [String: String], configFile: String? = nil) throws(Error) -> LoadedConfiguration {
        var flags = try SettingFlags.parse(arguments)
        if let configFile { flags["GC_CONFIG_FILE"] = configFile }
        let path = [flags["GC_CONFIG_FILE"], environment["GC_CONFIG_FILE"]]
            .compactMap { $0?.trimmingWhitespace() }.first { !$0.isEmpty }
        var file: ConfigFile?
        if let path { file = try ConfigFile.read(path) }
        let settings = ResolvedSettings(flags: flags, environment: environment, file: file)
        let config: SidecarConfig
        do {
            config = try SidecarConfig(environment: settings.values)
        } catch {
            throw settings.locate(error)
        }
        return LoadedConfiguration(config: config, settings: settings, effective: EffectiveConfiguration(config: config, settings: settings))
    }
}
