import Logging
import PostgresNIO
@testable import Server
import TestPostgres
import Testing

@Suite("PostgresConnector: waiting for the database at start-up")
struct PostgresConnectorTests {
    static let quick = PostgresConnector.Backoff(initial: .milliseconds(20), maximum: .milliseconds(200), jitter: 0)

    @Test("the backoff doubles from its initial delay up to its cap")
    func backoff() {
        let backoff = PostgresConnector.Backoff(initial: .milliseconds(100), maximum: .seconds(1))
        let delays = (1...6).map { backoff.baseDelay(afterAttempt: $0) }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1)])
        #expect(PostgresConnector.Backoff().baseDelay(afterAttempt: 1000) == .seconds(5))
    }

    @Test("a database that is down is retried, shown as connecting with the reason, logged once; once up, ready and migrated")
    func waitsForDatabase() async throws {
        let postgres = try await TemporaryPostgres.start()
        defer { postgres.remove() }
        try await postgres.stop()
        let database = try DatabaseURL(parsing: postgres.url + "?sslmode=disable&connect_timeout=2")
        let logs = CapturedLogs()
        let connector = PostgresConnector(database: database, migrator: PostgresMigrator(logger: logs.logger()),
                                          logger: logs.logger(), backoff: Self.quick)
        #expect(connector.state == .connecting(attempts: 0, lastError: nil))
        let connecting = Task { try await connector.connect() }
        try await waitUntil(30, "several failed attempts") {
            if case .connecting(let attempts, let error?) = connector.state { return attempts >= 5 && error.contains("refused") }
            return false
        }
        let whileDown = logs.all.filter { $0.message.contains("waiting for the database") }
        #expect(whileDown.count == 1, "five refused attempts, one warning: \(whileDown.map(\.metadata))")
        #expect(whileDown.first?.level == .warning)
        #expect(whileDown.first?.metadata["error"]?.contains("Connection refused") == true)
        try await postgres.startAgain()
        let status = try await withDeadline(30, "connect after the database came back") { try await connecting.value }
        #expect(status.isCurrent)
        #expect(connector.state == .ready(status))
        #expect(connector.state.isReady)
        // While the server starts, the reason may change ("the database
        // system is starting up"): a new warning per new reason, never two
        // in a row for the same one.
        let waiting = logs.all.filter { $0.message.contains("waiting for the database") }.map { $0.metadata["error"] ?? "" }
        #expect(zip(waiting, waiting.dropFirst()).allSatisfy { $0 != $1 }, "\(waiting)")
        #expect(logs.all.filter { $0.message == "database ready" }.count == 1)
        #expect(try await queryTexts(database, "SELECT count(*)::text FROM gc_schema_migrations") == ["1"])
    }

    @Test("a schema newer than this binary is a failure no retry fixes: the connector stops with the reason")
    func newerSchemaFails() async throws {
        let database = try await SharedPostgres.freshDatabase()
        let logger = Logger(label: "test")
        try await database.withConnection(logger: logger) { connection in
            _ = try await PostgresMigrator(logger: logger).migrate(on: connection)
            _ = try await connection.query("INSERT INTO gc_schema_migrations (version, description) VALUES (999, 'future')", logger: logger)
        }
        let connector = PostgresConnector(database: database, migrator: PostgresMigrator(logger: logger), logger: logger, backoff: Self.quick)
        await #expect(throws: PostgresMigrationError.schemaTooNew(database: 999, known: PostgresSchema.currentVersion)) {
            _ = try await withDeadline(30, "connect") { try await connector.connect() }
        }
        #expect(connector.state == .failed("schema version 999 is newer than this gc-sidecar knows (\(PostgresSchema.currentVersion)): upgrade gc-sidecar"))
    }

    @Test("without applying migrations, the connector waits while one is pending and becomes ready once another migrates")
    func waitsForAnotherMigrator() async throws {
        let database = try await SharedPostgres.freshDatabase()
        let logger = Logger(label: "test")
        let connector = PostgresConnector(database: database, migrator: PostgresMigrator(logger: logger), logger: logger,
                                          backoff: Self.quick, appliesMigrations: false)
        let connecting = Task { try await connector.connect() }
        try await waitUntil(30, "a pending-migration attempt") {
            if case .connecting(_, let error?) = connector.state { return error.contains("pending") }
            return false
        }
        #expect(try await queryTexts(database, "SELECT coalesce(to_regclass('gc_leases')::text, 'absent')") == ["absent"])
        try await database.withConnection(logger: logger) { connection in
            _ = try await PostgresMigrator(logger: logger).migrate(on: connection)
        }
        let status = try await withDeadline(30, "connect after the migration") { try await connecting.value }
        #expect(status.isCurrent)
    }

    @Test("cancelling connect (shutdown) ends it promptly")
    func cancellation() async throws {
        // Port 1 on loopback: refused at once, so the connector is in its backoff.
        let database = try DatabaseURL(parsing: "postgresql://gc@127.0.0.1:1/gc?sslmode=disable")
        let connector = PostgresConnector(database: database, migrator: PostgresMigrator(logger: Logger(label: "test")),
                                          logger: Logger(label: "test"),
                                          backoff: .init(initial: .seconds(30), maximum: .seconds(30)))
        let connecting = Task { try await connector.connect() }
        try await waitUntil(30, "the first failed attempt") {
            if case .connecting(let attempts, _) = connector.state { return attempts >= 1 }
            return false
        }
        connecting.cancel()
        await #expect(throws: CancellationError.self) {
            _ = try await withDeadline(10, "cancelled connect") { try await connecting.value }
        }
    }

    @Test("a pg_ctl restart -m immediate drops connections; the server is back, data intact, when restartImmediately returns")
    func immediateRestart() async throws {
        let postgres = try await TemporaryPostgres.start()
        defer { postgres.remove() }
        let database = try DatabaseURL(parsing: postgres.url + "?sslmode=disable")
        let logger = Logger(label: "test")
        try await database.withConnection(logger: logger) { connection in
            _ = try await PostgresMigrator(logger: logger).migrate(on: connection)
            _ = try await connection.query("INSERT INTO gc_sidecars VALUES ('a', 'x', 'v', 1, 1, 0)", logger: logger)
            try await postgres.restartImmediately()
            // The connection notices that its server went away...
            try await PostgresAttemptTimeout.run(limit: .seconds(10)) { try await connection.closeFuture.get() }
            #expect(connection.isClosed)
        }
        #expect(try await queryTexts(database, "SELECT name FROM gc_sidecars") == ["a"])
    }
}
