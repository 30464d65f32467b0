import Foundation
import Yams

/// A YAML config file (`--config FILE` / `GC_CONFIG_FILE`): a mapping of
/// settings by flag name, e.g.
///
/// ```yaml
/// node-id: n1
/// peers: [n1=10.0.0.11:50052, n2=10.0.0.12:50052, n3=10.0.0.13:50052]
/// cleanup-max-concurrency: 64
/// ```
///
/// `_` may stand for `-`, and variable names (`GC_SERVER_PORT`) are accepted
/// as keys too. A list is joined with commas (for `peers` and
/// `cleanup-allow`); an empty value (`key:` or `~`) leaves the setting
/// unset. Values are validated with the environment's rules. An unknown key
/// is a warning naming the nearest setting, not an error.
public struct ConfigFile: Sendable {
    /// Where it was read from (shown in messages).
    public let path: String
    /// Variable name → value.
    public private(set) var values: [String: String] = [:]
    /// Keys that are not settings, with the nearest one.
    public private(set) var warnings: [String] = []

    /// Reads and parses the file at `path`.
    ///
    /// - Throws: ``SidecarConfig/Error`` (variable `GC_CONFIG_FILE`) when the
    ///   file cannot be read or is not a YAML mapping of settings.
    public static func read(_ path: String) throws(SidecarConfig.Error) -> ConfigFile {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .init(variable: "GC_CONFIG_FILE", message: "cannot read \(path): \(error.localizedDescription)")
        }
        return try parse(text, path: path)
    }

    /// Parses YAML `text` (from `path`, named in messages).
    public static func parse(_ text: String, path: String) throws(SidecarConfig.Error) -> ConfigFile {
        var file = ConfigFile(path: path)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            let detail = "\(error)".split(separator: "\n").joined(separator: " ").prefix(200)
            throw .init(variable: "GC_CONFIG_FILE", message: "\(path) is not valid YAML: \(detail)")
        }
        guard let root else { return file }  // empty file: no settings
        guard let mapping = root.mapping else {
            throw .init(variable: "GC_CONFIG_FILE", message: "\(path) must be a mapping of settings (e.g. cleanup-max-concurrency: 64), not a \(kind(of: root))")
        }
        let fileKeys = SettingKey.all.filter(\.isFileKey).map(\.flagName)
        for (keyNode, valueNode) in mapping {
            let name = keyNode.string ?? "\(keyNode)"
            let at = keyNode.mark.map { "\(path):\($0.line)" } ?? path
            guard let key = SettingKey.fileKey(named: name) else {
                let suggestion = UnknownSettings.nearest(to: SettingKey.normalizedFileKey(name), among: fileKeys)
                file.warnings.append("\(at): " + UnknownSettings.warning("'\(name)'", suggestion: suggestion.map { "'\($0)'" }))
                continue
            }
            guard let value = try scalarText(valueNode, key: key, at: at) else { continue }
            guard file.values.updateValue(value, forKey: key.environmentName) == nil else {
                throw .init(variable: "GC_CONFIG_FILE", message: "\(at): '\(key.flagName)' is set twice")
            }
        }
        return file
    }

    private init(path: String) {
        self.path = path
    }

    /// A scalar's text, or a list of scalars joined with commas; nil for null.
    private static func scalarText(_ node: Node, key: SettingKey, at: String) throws(SidecarConfig.Error) -> String? {
        switch node {
        case .scalar(let scalar):
            if node.null != nil { return nil }
            return scalar.string
        case .sequence(let sequence):
            var items: [String] = []
            for item in sequence {
                guard case .scalar(let scalar) = item else {
                    throw .init(variable: key.environmentName, message: "\(at): '\(key.flagName)' must be a value or a list of values, not a list of \(kind(of: item))s")
                }
                items.append(scalar.string)
            }
            return items.joined(separator: ",")
        case .mapping, .alias:
            throw .init(variable: key.environmentName, message: "\(at): '\(key.flagName)' must be a value (\(key.valueName)), not a \(kind(of: node))")
        }
    }

    private static func kind(of node: Node) -> String {
        switch node {
        case .scalar: "value"
        case .sequence: "list"
        case .mapping: "mapping"
        case .alias: "alias"
        }
    }
}
