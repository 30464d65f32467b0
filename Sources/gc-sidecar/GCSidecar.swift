import ArgumentParser
import Foundation
import Logging
import Server

/// `gc-sidecar`: runs one node, configured from the environment (see README).
@main
struct GCSidecar {
    static func main() async {
        // Offline data-directory commands (README, Backup and recovery).
        let arguments = Array(CommandLine.arguments.dropFirst())
        switch arguments.first {
        case "restore": return await RestoreCommand.main(Array(arguments.dropFirst()))
        case "recover": return await RecoverCommand.main(Array(arguments.dropFirst()))
        default: break
        }
        // SIGHUP means "reload certificates and the policy" once the node
        // runs; until then (a large log can take a while to load) it must
        // not kill the process, which is its default.
        signal(SIGHUP, SIG_IGN)
        // Two malloc arenas instead of up to 16 on 2 cores: memory freed in
        // one arena is not reused by the others (DESIGN.md, "Memory").
        HeapTrimmer.limitArenas(to: 2, environment: ProcessInfo.processInfo.environment)
        let config: SidecarConfig
        do {
            config = try SidecarConfig(environment: ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("gc-sidecar: \(error)\n".utf8))
            exit(2)
        }
        LoggingSetup.bootstrap(level: config.logLevel)
        let logger = Logger(label: "gc-sidecar")
        logger.info("starting", metadata: [
            "version": "\(SidecarVersion.current)", "grpc": "\(config.host):\(config.port)",
            "storage": "\(config.storageBackend.rawValue)",
            "data_dir": "\(config.storageBackend == .sqlite ? config.dataDirectory : "-")",
        ])
        let sidecar: Sidecar
        do {
            sidecar = try Sidecar(config: config, logger: logger)
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            exit(1)
        }
        do {
            try await sidecar.run()
            logger.info("stopped")
        } catch {
            logger.critical("stopped on error", metadata: ["error": "\(error)"])
            exit(1)
        }
    }
}
