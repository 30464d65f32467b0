import Logging
@testable import Server
import Testing

@Suite("Flags, environment, config file: precedence")
struct ConfigPrecedenceTests {
    private func file(_ yaml: String) throws -> ConfigFile {
        try ConfigFile.parse(yaml, path: "test.yaml")
    }

    @Test("flag beats environment beats file beats default")
    func precedence() throws {
        let yaml = try file("""
            cleanup-max-concurrency: 10
            server-port: 6001
            metrics-port: 6002
            """)
        let settings = ResolvedSettings(
            flags: try SettingFlags.parse(["--cleanup-max-concurrency", "30"]),
            environment: ["GC_CLEANUP_MAX_CONCURRENCY": "20", "GC_SERVER_PORT": "7001"],
            file: yaml
        )
        let config = try SidecarConfig(environment: settings.values)
        #expect(config.cleanupLimits.maxConcurrency == 30)
        #expect(config.port == 7001)
        #expect(config.metricsPort == 6002)
        #expect(config.raftPort == 50052)
        let sources = Dictionary(uniqueKeysWithValues: SettingKey.all.map { ($0.environmentName, settings.source(of: $0)) })
        #expect(sources["GC_CLEANUP_MAX_CONCURRENCY"] == .flag)
        #expect(sources["GC_SERVER_PORT"] == .environment)
        #expect(sources["GC_METRICS_PORT"] == .file)
        #expect(sources["GC_RAFT_PORT"] == .default)
    }

    @Test("flags take --name value and --name=value; the last repeat wins")
    func flagSyntax() throws {
        let flags = try SettingFlags.parse(["--server-port=6000", "--node-id", "n7", "--server-port", "6001"])
        #expect(flags == ["GC_SERVER_PORT": "6001", "GC_NODE_ID": "n7"])
    }

    @Test("an unknown flag fails naming the nearest one; a flag without a value fails")
    func badFlags() {
        #expect {
            _ = try SettingFlags.parse(["--cleanup-max-concurency", "5"])
        } throws: { error in
            "\(error)".contains("--cleanup-max-concurency") && "\(error)".contains("did you mean --cleanup-max-concurrency?")
        }
        #expect {
            _ = try SettingFlags.parse(["--server-port"])
        } throws: { error in
            (error as? SidecarConfig.Error)?.variable == "--server-port" && "\(error)".contains("needs a value")
        }
        #expect(throws: SidecarConfig.Error.self) { _ = try SettingFlags.parse(["serve-now"]) }
    }

    @Test("the environment's older log-level names beat the file; a flag beats them all")
    func logLevelAliases() throws {
        let yaml = try file("log-level: debug")
        let fromEnvironment = ResolvedSettings(flags: [:], environment: ["RUST_LOG": "error"], file: yaml)
        #expect(try SidecarConfig(environment: fromEnvironment.values).logLevel == .error)
        let fromFile = ResolvedSettings(flags: [:], environment: [:], file: yaml)
        #expect(try SidecarConfig(environment: fromFile.values).logLevel == .debug)
        let fromFlag = ResolvedSettings(flags: ["GC_LOG_LEVEL": "trace"], environment: ["LOG_LEVEL": "error"], file: yaml)
        #expect(try SidecarConfig(environment: fromFlag.values).logLevel == .trace)
    }

    @Test("a bad value keeps its message and says which flag or file key set it")
    func errorsNameTheirOrigin() throws {
        #expect {
            _ = try SidecarConfig.load(arguments: ["--server-port", "70000"], environment: [:])
        } throws: { error in
            guard let error = error as? SidecarConfig.Error else { return false }
            return error.variable == "GC_SERVER_PORT" && error.description.contains("set by --server-port")
                && error.description.contains("0...65535")
        }
        #expect {
            _ = try SidecarConfig.load(arguments: [], environment: ["GC_CLEANUP_INTERVAL": "0"])
        } throws: { error in
            "\(error)" == "invalid configuration: GC_CLEANUP_INTERVAL: '0' is invalid: expected a whole number in 1...31536000 seconds"
        }
    }

    @Test("the config file comes from --config, else GC_CONFIG_FILE; a missing one is an error naming it")
    func configFileLocation() {
        #expect {
            _ = try SidecarConfig.load(arguments: [], environment: ["GC_CONFIG_FILE": "/nonexistent/gc.yaml"])
        } throws: { error in
            (error as? SidecarConfig.Error)?.variable == "GC_CONFIG_FILE" && "\(error)".contains("/nonexistent/gc.yaml")
        }
        #expect {
            _ = try SidecarConfig.load(arguments: [], environment: ["GC_CONFIG_FILE": "/nonexistent/a.yaml"], configFile: "/nonexistent/b.yaml")
        } throws: { error in
            "\(error)".contains("/nonexistent/b.yaml")
        }
    }

    @Test("no flags, no file: the same configuration as from the environment alone")
    func environmentOnlyIsUnchanged() throws {
        let environment = ["GC_NODE_ID": "n2", "GC_PEERS": "n1=127.0.0.1:7001,n2=127.0.0.1:7002", "GC_STORAGE_BACKEND": "memory"]
        let loaded = try SidecarConfig.load(arguments: [], environment: environment)
        #expect(loaded.config == (try SidecarConfig(environment: environment)))
        #expect(loaded.warnings.isEmpty)
    }
}
