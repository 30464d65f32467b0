import Logging
import PostgresNIO
import Server
import TestPostgres

/// The PostgreSQL-mode tests' databases: all on the test process's one
/// throwaway server (``TemporaryPostgres/shared()``, started on first use and
/// removed when the process exits), each test in a database of its own.
/// A test that stops or restarts its server starts one for itself with
/// `TemporaryPostgres.start()` instead.
enum SharedTestPostgres {
    /// A new database on the shared server with the gc schema applied
    /// (`PostgresSchema.migrations`, statement by statement), as the
    /// configuration of a pool of at most `maxConnections` connections (user
    /// `gc`, no TLS, the sidecar's own connection options).
    static func freshDatabase(maxConnections: Int = 40) async throws -> PostgresClient.Configuration {
        let url = try DatabaseURL(parsing: try await TemporaryPostgres.shared().createDatabase() + "?sslmode=disable")
        let configuration = try url.clientConfiguration(maxConnections: maxConnections)
        try await withPostgresClient(configuration) { client in
            for migration in PostgresSchema.migrations {
                for statement in migration.sql {
                    try await client.query(PostgresQuery(unsafeSQL: statement), logger: quietLogger)
                }
            }
        }
        return configuration
    }
}

/// Runs `body` with a fresh database (``SharedTestPostgres/freshDatabase(maxConnections:)``)
/// and a running client of it; `body` may open more clients of the
/// configuration (other sidecars' pools) with ``withPostgresClient(_:_:)``.
func withFreshDatabase<T: Sendable>(
    maxConnections: Int = 40, _ body: (PostgresClient.Configuration, PostgresClient) async throws -> T
) async throws -> T {
    let configuration = try await SharedTestPostgres.freshDatabase(maxConnections: maxConnections)
    return try await withPostgresClient(configuration) { client in try await body(configuration, client) }
}

/// Runs `body` with a running client of `configuration`; the pool runs for
/// exactly as long as `body`.
func withPostgresClient<T: Sendable>(
    _ configuration: PostgresClient.Configuration, _ body: (PostgresClient) async throws -> T
) async throws -> T {
    let client = PostgresClient(configuration: configuration, backgroundLogger: quietLogger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        return try await body(client)
    }
}
