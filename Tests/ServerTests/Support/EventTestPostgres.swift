import Logging
import PostgresNIO
import Server
import TestPostgres

/// One throwaway PostgreSQL for the event tests (TemporaryPostgres removes
/// it when the test process exits); each test gets a fresh database.
enum EventTestPostgres {
    private static let server = Task { try await TemporaryPostgres.start() }

    /// A new empty database with the gc schema applied, as a client configuration.
    static func freshDatabase() async throws -> PostgresClient.Configuration {
        let url = try DatabaseURL(parsing: try await server.value.createDatabase() + "?sslmode=disable")
        let configuration = try url.clientConfiguration(maxConnections: 40)
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

/// Runs `body` with a fresh database (the gc schema applied) and a running
/// client of it; `body` may open more clients of the configuration (other
/// sidecars' pools) with ``withPostgresClient(_:_:)``.
func withEventDatabase(_ body: (PostgresClient.Configuration, PostgresClient) async throws -> Void) async throws {
    let configuration = try await EventTestPostgres.freshDatabase()
    try await withPostgresClient(configuration) { client in try await body(configuration, client) }
}

/// Runs `body` with a running client of `configuration`.
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
