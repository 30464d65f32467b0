@testable import Server
import Testing

@Suite("The YAML config file")
struct ConfigFileTests {
    @Test("keys are flag names; _ for -, variable names and lists are accepted; null leaves a setting unset")
    func parsing() throws {
        let file = try ConfigFile.parse("""
            # one node of three
            node-id: n2
            server_port: 6000
            GC_METRICS_PORT: 0
            peers:
              - n1=10.0.0.1:50052
              - n2=10.0.0.2:50052
            cleanup-allow: [files.internal, 10.0.0.0/8]
            data-dir: ~
            log-format: json
            """, path: "gc.yaml")
        #expect(file.values == [
            "GC_NODE_ID": "n2", "GC_SERVER_PORT": "6000", "GC_METRICS_PORT": "0",
            "GC_PEERS": "n1=10.0.0.1:50052,n2=10.0.0.2:50052", "GC_CLEANUP_ALLOW": "files.internal,10.0.0.0/8",
            "GC_LOG_FORMAT": "json",
        ])
        #expect(file.warnings.isEmpty)
        let config = try SidecarConfig(environment: ResolvedSettings(flags: [:], environment: [:], file: file).values)
        #expect(config.peers.count == 2)
        #expect(config.logFormat == .json)
        #expect(config.dataDirectory == "./gc-data/n2")
    }

    @Test("an unknown key is a warning with its line and the nearest key, not an error")
    func unknownKey() throws {
        let file = try ConfigFile.parse("node-id: n1\ncleanup-max-concurency: 5\nfavourite-colour: blue\n", path: "gc.yaml")
        #expect(file.warnings == [
            "gc.yaml:2: 'cleanup-max-concurency' is not a setting; did you mean 'cleanup-max-concurrency'?",
            "gc.yaml:3: 'favourite-colour' is not a setting (gc-sidecar serve --help lists them)",
        ])
        #expect(file.values == ["GC_NODE_ID": "n1"])
    }

    @Test("an empty file sets nothing")
    func empty() throws {
        #expect(try ConfigFile.parse("", path: "gc.yaml").values.isEmpty)
        #expect(try ConfigFile.parse("# nothing yet\n", path: "gc.yaml").values.isEmpty)
    }

    @Test("malformed files are refused naming the file, the line and what to write", arguments: [
        ("node-id: [n1\n", "is not valid YAML"),
        ("- a\n- b\n", "must be a mapping of settings"),
        ("tls-cert-file:\n  path: /x\n", "gc.yaml:1: 'tls-cert-file' must be a value"),
        ("node-id: n1\nnode_id: n2\n", "gc.yaml:2: 'node-id' is set twice"),
        ("config: other.yaml\n", "'config' is not a setting"),
    ])
    func malformed(yaml: String, message: String) {
        do {
            let file = try ConfigFile.parse(yaml, path: "gc.yaml")
            // The config file cannot name another config file: a warning.
            #expect(file.warnings.contains { $0.contains(message) }, "\(file.warnings)")
        } catch {
            #expect(error.description.contains(message), "\(error)")
            #expect(!error.description.contains("\n"))
        }
    }
}
