import ArgumentParser
import Foundation
import Logging
import Server

/// `gc-sidecar migrate`: applies the PostgreSQL schema's pending migrations
/// (``PostgresMigrator``) and prints where the schema stands; `--status`
/// only prints. Sidecars also migrate at start, so this is for operators
/// who migrate before a rollout, or want to see the schema's version.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the PostgreSQL schema's pending migrations and print its status (GC_STORAGE_BACKEND=postgres).",
        discussion: """
            Reads DATABASE_URL (and the other settings) like serve; GC_STORAGE_BACKEND defaults to postgres here. \
            Migrations are applied in order, each in its own transaction under an advisory lock, so running this \
            while sidecars start is safe. Exits 1 with a one-line error when the database cannot be reached or its \
            schema is newer than this gc-sidecar knows, 2 when the configuration is invalid.
            """)

    @Flag(name: .long, help: "Only print the schema's status; change nothing.")
    var status = false

    @Option(name: .customLong("config"), help: ArgumentHelp("A YAML file of settings (also GC_CONFIG_FILE).", valueName: "file"))
    var configFile: String?

    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("Settings as for serve (--database-url URL).", valueName: "setting"))
    var settings: [String] = []

    func run() async throws {
        let config = try postgresConfig()
        guard let database = config.database else { try invalid("DATABASE_URL is not set") }
        LoggingSetup.bootstrap(level: config.logLevel, format: config.logFormat)
        let logger = Logger(label: "gc-sidecar.migrate")
        let migrator = PostgresMigrator(logger: logger)
        let statusOnly = status
        let outcome: (before: PostgresMigrationStatus, after: PostgresMigrationStatus)
        do {
            outcome = try await database.withConnection(logger: logger) { connection in
                let before = try await migrator.status(on: connection)
                if statusOnly || before.isNewerThanKnown { return (before, before) }
                return (before, try await migrator.migrate(on: connection))
            }
        } catch {
            try fail("\(PostgresFailure.describe(error)) (\(database))")
        }
        print(Self.report(database: database, before: outcome.before, after: outcome.after, statusOnly: statusOnly), terminator: "")
        if outcome.after.isNewerThanKnown {
            try fail(PostgresMigrationError.schemaTooNew(database: outcome.after.currentVersion, known: outcome.after.knownVersion).description)
        }
    }

    /// The postgres configuration: GC_STORAGE_BACKEND defaults to postgres
    /// here; set to anything else, it is an error.
    private func postgresConfig() throws -> SidecarConfig {
        var environment = ProcessInfo.processInfo.environment
        let first = try load(environment)
        guard first.config.storageBackend != .postgres else { return first.config }
        guard first.settings.values["GC_STORAGE_BACKEND"] == nil else {
            try invalid("GC_STORAGE_BACKEND is \(first.config.storageBackend.rawValue): migrate is for GC_STORAGE_BACKEND=postgres")
        }
        environment["GC_STORAGE_BACKEND"] = "postgres"
        return try load(environment).config
    }

    private func load(_ environment: [String: String]) throws -> LoadedConfiguration {
        do {
            return try SidecarConfig.load(arguments: settings, environment: environment, configFile: configFile)
        } catch {
            try invalid("\(error)")
        }
    }

    /// What the command prints on stdout.
    static func report(database: DatabaseURL, before: PostgresMigrationStatus, after: PostgresMigrationStatus, statusOnly: Bool) -> String {
        let appliedNow = after.applied.filter { applied in !before.applied.contains { $0.version == applied.version } }
        var lines = [
            "database        \(database)",
            "schema version  \(after.currentVersion) (this gc-sidecar knows \(after.knownVersion))",
        ]
        if !statusOnly {
            lines.append("applied now     \(appliedNow.isEmpty ? "none" : appliedNow.map { "\($0.version)" }.joined(separator: ", "))")
        }
        lines.append("pending         \(after.pending.isEmpty ? "none" : after.pending.map(String.init).joined(separator: ", "))")
        if after.applied.isEmpty {
            lines.append("history         none (an empty database)")
        } else {
            lines.append("history")
            for applied in after.applied {
                lines.append("  \(applied.version)  \(applied.appliedAt)  \(applied.description)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The database could not be reached or used: exit status 1.
    private func fail(_ message: String) throws -> Never {
        FileHandle.standardError.write(Data("gc-sidecar migrate: \(message)\n".utf8))
        throw ExitCode(1)
    }

    /// The configuration is invalid: exit status 2, as `config show`.
    private func invalid(_ message: String) throws -> Never {
        FileHandle.standardError.write(Data("gc-sidecar migrate: \(message)\n".utf8))
        throw ExitCode(2)
    }
}
