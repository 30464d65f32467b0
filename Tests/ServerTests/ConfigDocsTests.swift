import Foundation
@testable import Server
import Testing

/// The README table and the systemd env example are generated from the
/// table of settings; these fail when someone edits one and not the other
/// (fix: `scripts/generate-config-docs.sh`).
@Suite("Configuration docs in sync with the table")
struct ConfigDocsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func read(_ path: String) throws -> String {
        try String(contentsOf: Self.root.appendingPathComponent(path), encoding: .utf8)
    }

    @Test("README.md's configuration table is the generated one")
    func readme() throws {
        let readme = try read("README.md")
        let begin = try #require(readme.range(of: ConfigDocs.markdownBegin), "README.md lacks the generated-table markers")
        let end = try #require(readme.range(of: ConfigDocs.markdownEnd, range: begin.upperBound..<readme.endIndex))
        let committed = String(readme[begin.lowerBound..<end.upperBound]) + "\n"
        #expect(committed == ConfigDocs.markdown(), "README.md's table is stale: run scripts/generate-config-docs.sh")
    }

    @Test("deploy/systemd/gc-sidecar.env.example is the generated one")
    func envExample() throws {
        #expect(try read("deploy/systemd/gc-sidecar.env.example") == ConfigDocs.envExample(),
                "the env example is stale: run scripts/generate-config-docs.sh")
    }

    @Test("every setting appears in the README, the env example and --help")
    func everySettingDocumented() throws {
        let markdown = ConfigDocs.markdown()
        let env = ConfigDocs.envExample()
        let help = ConfigDocs.helpText()
        for key in SettingKey.all {
            #expect(markdown.contains("`\(key.environmentName)`"), "\(key.environmentName) missing from the README table")
            #expect(env.contains("\(key.environmentName)="), "\(key.environmentName) missing from the env example")
            #expect(help.contains("\(key.flag) <"), "\(key.flag) missing from --help")
        }
    }

    @Test("the env example, read as an environment, is a valid configuration without warnings")
    func envExampleIsValid() throws {
        var environment: [String: String] = [:]
        for line in ConfigDocs.envExample().split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            environment[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        #expect(environment["GC_NODE_ID"] == "n1")
        let loaded = try SidecarConfig.load(arguments: [], environment: environment)
        #expect(loaded.warnings.isEmpty)
        #expect(loaded.config.peers.count == 3)
    }
}
