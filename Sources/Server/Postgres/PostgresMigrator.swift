import Logging
import PostgresNIO

/// Where a database's schema stands against the migrations this binary knows.
public struct PostgresMigrationStatus: Sendable, Hashable, CustomStringConvertible {
    /// One migration recorded in `gc_schema_migrations`.
    public struct Applied: Sendable, Hashable {
        public var version: Int
        public var description: String
        /// When it was applied, by the database's clock (ISO 8601, UTC).
        public var appliedAt: String
    }

    /// The highest version applied (0: none, an empty database).
    public var currentVersion: Int
    /// The highest version this binary knows (``PostgresSchema/currentVersion``).
    public var knownVersion: Int
    /// Every migration recorded, oldest first.
    public var applied: [Applied]
    /// Versions this binary knows that are not applied yet, in order.
    public var pending: [Int]

    /// Whether the schema is exactly what this binary expects.
    public var isCurrent: Bool { pending.isEmpty && currentVersion == knownVersion }
    /// Whether the database was migrated by a newer binary than this one.
    public var isNewerThanKnown: Bool { currentVersion > knownVersion }

    /// `schema version 1 of 1, pending: none`.
    public var description: String {
        "schema version \(currentVersion) of \(knownVersion), pending: \(pending.isEmpty ? "none" : pending.map(String.init).joined(separator: ", "))"
    }
}

/// Why the schema cannot be used or migrated.
public enum PostgresMigrationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The database holds a migration this binary does not know: a newer
    /// gc-sidecar migrated it. Running on would misread its rows.
    case schemaTooNew(database: Int, known: Int)

    public var description: String {
        switch self {
        case .schemaTooNew(let database, let known):
            "schema version \(database) is newer than this gc-sidecar knows (\(known)): upgrade gc-sidecar"
        }
    }
}

/// Applies ``PostgresSchema/migrations`` to a database, each once, in order,
/// however many sidecars start at once.
///
/// Each pending migration runs in its own transaction that first takes
/// `pg_advisory_xact_lock(PostgresSchema.advisoryLockKey)`, creates
/// `gc_schema_migrations (version, description, applied_at)` if missing,
/// and re-reads the applied versions under the lock: a migration another
/// sidecar applied meanwhile is skipped, and a failed one rolls back whole
/// (PostgreSQL's DDL is transactional). A database whose schema is newer
/// than this binary knows is refused (``PostgresMigrationError/schemaTooNew(database:known:)``)
/// before anything is changed.
public struct PostgresMigrator: Sendable {
    /// The migrations applied, in version order.
    public let migrations: [PostgresSchema.Migration]
    /// The advisory lock that serializes migrators.
    public let lockKey: Int64
    public let logger: Logger

    /// The table that records applied migrations.
    public static let table = "gc_schema_migrations"

    /// - Parameters:
    ///   - migrations: in increasing version order (tests pass their own).
    ///   - lockKey: the advisory lock key.
    public init(
        migrations: [PostgresSchema.Migration] = PostgresSchema.migrations,
        lockKey: Int64 = PostgresSchema.advisoryLockKey,
        logger: Logger
    ) {
        self.migrations = migrations.sorted { $0.version < $1.version }
        self.lockKey = lockKey
        self.logger = logger
    }

    /// The highest version among ``migrations``.
    public var knownVersion: Int { migrations.last?.version ?? 0 }

    /// Reads where the schema stands; changes nothing and takes no lock.
    public func status(on connection: PostgresConnection) async throws -> PostgresMigrationStatus {
        let applied = try await readApplied(on: connection)
        return status(applied: applied)
    }

    /// Applies every pending migration and returns the status after.
    ///
    /// - Throws: ``PostgresMigrationError/schemaTooNew(database:known:)``
    ///   when the database is ahead of this binary; the database's error when
    ///   a migration fails (that migration is rolled back, earlier ones stay).
    @discardableResult
    public func migrate(on connection: PostgresConnection) async throws -> PostgresMigrationStatus {
        // A look without the lock first: sidecars that find the schema
        // current (every start but the first) do not queue on the lock.
        let before = status(applied: try await readApplied(on: connection))
        try refuseNewer(before)
        if before.pending.isEmpty { return before }

        for migration in migrations where before.pending.contains(migration.version) {
            try await apply(migration, on: connection)
        }
        let after = status(applied: try await readApplied(on: connection))
        try refuseNewer(after)
        return after
    }

    /// Applies `migration` unless, under the lock, it turns out applied.
    private func apply(_ migration: PostgresSchema.Migration, on connection: PostgresConnection) async throws {
        let applied: Bool = try await Self.unwrappingTransactionErrors {
            try await connection.withTransaction(logger: logger) { connection in
                try await applyLocked(migration, on: connection)
            }
        }
        if applied {
            logger.notice("applied schema migration", metadata: [
                "version": "\(migration.version)", "description": "\(migration.description)",
            ])
        } else {
            logger.debug("schema migration already applied by another sidecar", metadata: ["version": "\(migration.version)"])
        }
    }

    /// Inside the migration's transaction: takes the lock, then applies
    /// `migration` unless it is recorded already. Returns whether it applied it.
    private func applyLocked(_ migration: PostgresSchema.Migration, on connection: PostgresConnection) async throws -> Bool {
        try await connection.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: logger)
        try await connection.query(PostgresQuery(unsafeSQL: Self.createTable), logger: logger)
        var versions: [Int] = []
        for try await version in try await connection.query("SELECT version FROM gc_schema_migrations", logger: logger).decode(Int.self) {
            versions.append(version)
        }
        if let newest = versions.max(), newest > knownVersion {
            throw PostgresMigrationError.schemaTooNew(database: newest, known: knownVersion)
        }
        if versions.contains(migration.version) { return false }
        for statement in migration.sql {
            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
        }
        try await connection.query(
            "INSERT INTO gc_schema_migrations (version, description) VALUES (\(migration.version), \(migration.description))",
            logger: logger)
        return true
    }

    /// postgres-nio wraps whatever ended a transaction in a
    /// `PostgresTransactionError`; callers want the cause (the server's error,
    /// or ``PostgresMigrationError``).
    private static func unwrappingTransactionErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PostgresTransactionError {
            throw error.closureError ?? error.commitError ?? error.beginError ?? error
        }
    }

    private static let createTable = """
        CREATE TABLE IF NOT EXISTS gc_schema_migrations (
            version integer PRIMARY KEY,
            description text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """

    /// The recorded migrations, oldest first; none when the table is missing.
    private func readApplied(on connection: PostgresConnection) async throws -> [PostgresMigrationStatus.Applied] {
        let exists = try await connection.query("SELECT to_regclass('gc_schema_migrations') IS NOT NULL", logger: logger)
            .decode(Bool.self)
        var tableExists = false
        for try await value in exists { tableExists = value }
        guard tableExists else { return [] }
        let rows = try await connection.query("""
            SELECT version, description, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            FROM gc_schema_migrations ORDER BY version
            """, logger: logger)
        var applied: [PostgresMigrationStatus.Applied] = []
        for try await (version, description, at) in rows.decode((Int, String, String).self) {
            applied.append(.init(version: version, description: description, appliedAt: at))
        }
        return applied
    }

    private func status(applied: [PostgresMigrationStatus.Applied]) -> PostgresMigrationStatus {
        let versions = Set(applied.map(\.version))
        return PostgresMigrationStatus(
            currentVersion: versions.max() ?? 0,
            knownVersion: knownVersion,
            applied: applied,
            pending: migrations.map(\.version).filter { !versions.contains($0) })
    }

    private func refuseNewer(_ status: PostgresMigrationStatus) throws {
        if status.isNewerThanKnown {
            throw PostgresMigrationError.schemaTooNew(database: status.currentVersion, known: status.knownVersion)
        }
    }
}
