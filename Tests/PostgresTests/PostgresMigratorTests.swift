import Logging
import PostgresNIO
@testable import Server
import Testing

@Suite("PostgresMigrator against a real PostgreSQL")
struct PostgresMigratorTests {
    let logger = Logger(label: "test")

    /// Three migrations that fail or leave a trace when applied twice: a
    /// table created without IF NOT EXISTS, and one row per application
    /// (the second one slow, to widen the window of a race).
    static let counting: [PostgresSchema.Migration] = [
        .init(version: 1, description: "log table", sql: [
            "CREATE TABLE applied_log (version integer NOT NULL)",
            "INSERT INTO applied_log VALUES (1)",
        ]),
        .init(version: 2, description: "slow", sql: [
            "SELECT pg_sleep(0.2)",
            "INSERT INTO applied_log VALUES (2)",
        ]),
        .init(version: 3, description: "another table", sql: [
            "CREATE TABLE third (id integer)",
            "INSERT INTO applied_log VALUES (3)",
        ]),
    ]

    @Test("8 migrators starting at once apply each migration exactly once, and all end current")
    func concurrentMigratorsApplyOnce() async throws {
        let database = try await SharedPostgres.freshDatabase()
        let logger = self.logger
        let statuses = try await withThrowingTaskGroup(of: PostgresMigrationStatus.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try await database.withConnection(logger: logger) { connection in
                        try await PostgresMigrator(migrations: Self.counting, logger: logger).migrate(on: connection)
                    }
                }
            }
            var statuses: [PostgresMigrationStatus] = []
            for try await status in group { statuses.append(status) }
            return statuses
        }
        #expect(statuses.count == 8)
        for status in statuses {
            #expect(status.isCurrent)
            #expect(status.currentVersion == 3)
            #expect(status.pending.isEmpty)
        }
        #expect(try await queryTexts(database, "SELECT version::text FROM applied_log ORDER BY version") == ["1", "2", "3"])
        #expect(try await queryTexts(database, "SELECT version::text FROM gc_schema_migrations ORDER BY version") == ["1", "2", "3"])
    }

    @Test("8 sidecars' migrators over the real schema: every table once, version recorded once")
    func concurrentRealSchema() async throws {
        let database = try await SharedPostgres.freshDatabase()
        let logger = self.logger
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    _ = try await database.withConnection(logger: logger) { connection in
                        try await PostgresMigrator(logger: logger).migrate(on: connection)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await queryTexts(database, "SELECT count(*)::text FROM gc_schema_migrations") == ["\(PostgresSchema.migrations.count)"])
        let tables = try await queryTexts(database, "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        for table in ["gc_events", "gc_jobs", "gc_leases", "gc_objects", "gc_quota", "gc_schema_migrations", "gc_sessions", "gc_sidecars", "gc_stats"] {
            #expect(tables.contains(table), "\(table) missing")
        }
        #expect(try await queryTexts(database, "SELECT count(*)::text FROM gc_stats") == ["64"])
    }

    @Test("status: an empty database is version 0 with everything pending; it reports what a newer binary would apply")
    func status() async throws {
        let database = try await SharedPostgres.freshDatabase()
        let logger = self.logger
        let (empty, afterOne, newer) = try await database.withConnection(logger: logger) { connection in
            let empty = try await PostgresMigrator(migrations: Self.counting, logger: logger).status(on: connection)
            let afterOne = try await PostgresMigrator(migrations: Array(Self.counting.prefix(1)), logger: logger).migrate(on: connection)
            let newer = try await PostgresMigrator(migrations: Self.counting, logger: logger).status(on: connection)
            return (empty, afterOne, newer)
        }
        #expect(empty.currentVersion == 0)
        #expect(empty.knownVersion == 3)
        #expect(empty.pending == [1, 2, 3])
        #expect(empty.applied.isEmpty)
        #expect(afterOne.currentVersion == 1 && afterOne.knownVersion == 1 && afterOne.isCurrent)
        #expect(afterOne.applied.map(\.description) == ["log table"])
        #expect(afterOne.applied.first?.appliedAt.hasSuffix("Z") == true)
        #expect(newer.currentVersion == 1)
        #expect(newer.pending == [2, 3])
        #expect(!newer.isCurrent)
        // status() changed nothing.
        #expect(try await queryTexts(database, "SELECT count(*)::text FROM gc_schema_migrations") == ["1"])
    }

    @Test("a schema newer than the binary knows is refused with a clear message, and left alone")
    func newerSchemaRefused() async throws {
        let database = try await SharedPostgres.freshDatabase()
        let logger = self.logger
        try await database.withConnection(logger: logger) { connection in
            _ = try await PostgresMigrator(migrations: Self.counting, logger: logger).migrate(on: connection)
        }
        let older = PostgresMigrator(migrations: Array(Self.counting.prefix(1)), logger: logger)
        await #expect(throws: PostgresMigrationError.schemaTooNew(database: 3, known: 1)) {
            try await database.withConnection(logger: logger) { connection in
                _ = try await older.migrate(on: connection)
            }
        }
        #expect(PostgresMigrationError.schemaTooNew(database: 3, known: 1).description
                == "schema version 3 is newer than this gc-sidecar knows (1): upgrade gc-sidecar")
        let status = try await database.withConnection(logger: logger) { try await older.status(on: $0) }
        #expect(status.isNewerThanKnown)
        #expect(try await queryTexts(database, "SELECT count(*)::text FROM gc_schema_migrations") == ["3"])
    }

    @Test("a newer version that appears while migrating (another binary's) is refused under the lock, unwrapped")
    func newerSchemaFoundUnderTheLock() async throws {
        let database = try await SharedPostgres.freshDatabase()
        let logger = self.logger
        // Migration 1 records a version 99 as a newer binary would; the
        // re-read under the lock before migration 2 must refuse to go on.
        let sneaky: [PostgresSchema.Migration] = [
            .init(version: 1, description: "one", sql: ["INSERT INTO gc_schema_migrations (version, description) VALUES (99, 'newer')"]),
            .init(version: 2, description: "two", sql: ["CREATE TABLE never_made (id integer)"]),
        ]
        await #expect(throws: PostgresMigrationError.schemaTooNew(database: 99, known: 2)) {
            try await database.withConnection(logger: logger) { connection in
                _ = try await PostgresMigrator(migrations: sneaky, logger: logger).migrate(on: connection)
            }
        }
        #expect(try await queryTexts(database, "SELECT coalesce(to_regclass('never_made')::text, 'absent')") == ["absent"])
    }

    @Test("a failing migration rolls back whole; the ones before it stay applied")
    func failingMigrationRollsBack() async throws {
        let database = try await SharedPostgres.freshDatabase()
        let logger = self.logger
        let broken = [
            Self.counting[0],
            PostgresSchema.Migration(version: 2, description: "broken", sql: [
                "CREATE TABLE half_done (id integer)",
                "SELECT * FROM no_such_table",
            ]),
        ]
        await #expect(throws: PSQLError.self) {
            try await database.withConnection(logger: logger) { connection in
                _ = try await PostgresMigrator(migrations: broken, logger: logger).migrate(on: connection)
            }
        }
        #expect(try await queryTexts(database, "SELECT version::text FROM gc_schema_migrations") == ["1"])
        #expect(try await queryTexts(database, "SELECT coalesce(to_regclass('half_done')::text, 'absent')") == ["absent"])
        #expect(try await queryTexts(database, "SELECT coalesce(to_regclass('applied_log')::text, 'absent')") == ["applied_log"])
    }

    @Test("a database error's text names the server's message and SQLSTATE")
    func errorText() async throws {
        let database = try await SharedPostgres.freshDatabase()
        let logger = self.logger
        do {
            try await database.withConnection(logger: logger) { connection in
                _ = try await connection.query("SELECT * FROM no_such_table", logger: logger)
            }
            Issue.record("the query succeeded")
        } catch {
            let text = PostgresFailure.describe(error)
            #expect(text.contains("no_such_table") && text.contains("42P01"), "\(text)")
        }
    }
}
