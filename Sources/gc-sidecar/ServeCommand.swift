import ArgumentParser
import Foundation
import Logging
import Server

/// `gc-sidecar serve` (the default): runs this node until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run this node (the default when no subcommand is given).",
        discussion: ConfigDocs.helpText()
    )

    @Option(name: .customLong("config"), help: ArgumentHelp("A YAML file of settings (also GC_CONFIG_FILE).", valueName: "file"))
    var configFile: String?

    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("Settings as --name value or --name=value (listed below).", valueName: "setting"))
    var settings: [String] = []

    func run() async throws {
        // SIGHUP means "reload certificates and the policy" once the node
        // runs; until then (a large log can take a while to load) it must
        // not kill the process, which is its default.
        signal(SIGHUP, SIG_IGN)
        let environment = ProcessInfo.processInfo.environment
        // Two malloc arenas instead of up to 16 on 2 cores: memory freed in
        // one arena is not reused by the others (DESIGN.md, "Memory").
        HeapTrimmer.limitArenas(to: 2, environment: environment)
        // Large blocks mapped on their own, so freeing them returns them (DESIGN.md, "Memory").
        HeapTrimmer.fixMmapThreshold(environment: environment)
        let loaded: LoadedConfiguration
        do {
            loaded = try SidecarConfig.load(arguments: settings, environment: environment, configFile: configFile)
        } catch {
            FileHandle.standardError.write(Data("gc-sidecar: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let config = loaded.config
        LoggingSetup.bootstrap(level: config.logLevel, format: config.logFormat)
        let logger = Logger(label: "gc-sidecar")
        for warning in loaded.warnings {
            logger.warning("\(warning)")
        }
        logger.info("starting", metadata: [
            "version": "\(SidecarVersion.current)", "grpc": "\(config.host):\(config.port)",
            "storage": "\(config.storageBackend.rawValue)",
            "data_dir": "\(config.storageBackend == .sqlite ? config.dataDirectory : "-")",
            "database": "\(config.database.map { "\($0)" } ?? "-")",
        ])
        logger.info("configuration", metadata: loaded.effective.metadata)
        let run: @Sendable () async throws -> Void
        do {
            if config.storageBackend == .postgres {
                let sidecar = try PostgresSidecar(config: config, logger: logger)
                run = { try await sidecar.run() }
            } else {
                let sidecar = try Sidecar(config: config, logger: logger)
                run = { try await sidecar.run() }
            }
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
        do {
            try await run()
            logger.info("stopped")
        } catch {
            logger.critical("stopped on error", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
    }
}
