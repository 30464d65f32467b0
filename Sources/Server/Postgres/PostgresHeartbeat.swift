import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// This sidecar's row in `gc_sidecars`, kept fresh while it runs, so `gcctl
/// cluster status` in PostgreSQL mode lists the live sidecars; and the
/// queries that answer it.
///
/// Every ``interval`` the row is upserted with the name, address, version,
/// start time, `last_seen` (the database's clock) and the cleanup claims
/// held now. On shutdown (graceful, or the task cancelled) the row is
/// deleted, unless another process took the name over meanwhile. A sidecar
/// that died without deleting it drops out of ``liveSidecars(within:)``
/// once its `last_seen` is old; its row stays until a sidecar of that name
/// starts again.
///
/// Run it after the `PostgresClient` in the `ServiceGroup` (services shut
/// down in reverse order), so the pool still runs when the row is deleted.
public final class PostgresHeartbeat: Service, Sendable {
    /// One sidecar as its heartbeat last wrote it.
    public struct Sidecar: Hashable, Sendable {
        public var name: String
        /// Where its clients reach it (its gRPC address).
        public var address: String
        public var version: String
        /// When it started, Unix milliseconds (the database's clock).
        public var startedAt: Int64
        /// Its last heartbeat, Unix milliseconds (the database's clock).
        public var lastSeen: Int64
        /// Cleanup jobs it held claims on then.
        public var claims: Int
    }

    /// The database behind the sidecars.
    public struct DatabaseStatus: Hashable, Sendable {
        /// `SHOW server_version`, e.g. `15.14 (Debian 15.14-0+deb12u1)`.
        public var serverVersion: String
        /// `pg_database_size(current_database())`.
        public var sizeBytes: Int64
        /// Connections this sidecar's pool may open (`GC_MAX_DB_CONNECTIONS`).
        public var poolSize: Int
    }

    /// The production heartbeat interval.
    public static let defaultInterval = Duration.seconds(3)
    /// How long a sidecar counts as live after its last heartbeat, by default.
    public static let defaultLiveWindow = Duration.seconds(15)

    let store: PostgresLeaseStore
    /// This sidecar's name (the row's key; the cleanup claims' owner).
    public let name: String
    public let address: String
    public let interval: Duration
    let poolSize: Int
    let claims: @Sendable () -> Int
    let clock: any Clock<Duration>
    let logger: Logger
    /// `started_at` as the first heartbeat wrote it.
    private let startedAt = Mutex<Int64?>(nil)

    /// - Parameters:
    ///   - store: the database.
    ///   - name: this sidecar's name; unique among the sidecars over one database.
    ///   - address: where clients reach it.
    ///   - poolSize: its pool's size, reported by ``databaseStatus()``.
    ///   - claims: how many cleanup claims it holds now
    ///     (``PostgresCleanupService/claimsHeld``).
    ///   - clock: what the loop sleeps on.
    public init(store: PostgresLeaseStore, name: String, address: String, poolSize: Int,
                claims: @escaping @Sendable () -> Int, interval: Duration = PostgresHeartbeat.defaultInterval,
                clock: any Clock<Duration> = ContinuousClock(), logger: Logger) {
        self.store = store
        self.name = name
        self.address = address
        self.poolSize = poolSize
        self.claims = claims
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await repeatingPass("heartbeat", logger: self.logger, clock: self.clock) {
                try await self.beat()
                return self.interval
            }
        }
        await removeRow()
    }

    /// Writes this sidecar's row now.
    public func beat() async throws {
        let logger = self.logger
        let now = store.nowSQL
        let (name, address, version) = (self.name, self.address, SidecarVersion.current)
        let started = startedAt.withLock { $0 }
        let claims = Int32(clamping: self.claims())
        let written: Int64? = try await store.transaction("write the heartbeat of \(name)") { connection in
            let rows = try await connection.query("""
                WITH clock AS (SELECT \(unescaped: now) AS now)
                INSERT INTO gc_sidecars (name, address, version, started_at, last_seen, claims)
                SELECT \(name), \(address), \(version), COALESCE(\(started)::bigint, clock.now), clock.now, \(claims) FROM clock
                ON CONFLICT (name) DO UPDATE SET address = EXCLUDED.address, version = EXCLUDED.version,
                    started_at = EXCLUDED.started_at, last_seen = EXCLUDED.last_seen, claims = EXCLUDED.claims
                RETURNING started_at
                """, logger: logger)
            var value: Int64?
            for try await startedAt in rows.decode(Int64.self) { value = startedAt }
            return value
        }
        if started == nil, let written { startedAt.withLock { $0 = $0 ?? written } }
    }

    /// Deletes this sidecar's row, if it is still this process's (same
    /// start time), giving up after five seconds (the database may be gone).
    private func removeRow() async {
        guard let started = startedAt.withLock({ $0 }) else { return }
        let (store, name, logger) = (self.store, self.name, self.logger)
        // Its own task: the caller may be cancelled, and the row should still go.
        let delete = Task {
            try await store.transaction("delete the heartbeat of \(name)") { connection in
                _ = try await connection.query(
                    "DELETE FROM gc_sidecars WHERE name = \(name) AND started_at = \(started)", logger: logger)
            }
        }
        let timeout = Task { [clock] in
            try? await sleep(on: clock, for: .seconds(5))
            delete.cancel()
        }
        let result = await delete.result
        timeout.cancel()
        if case .failure(let error) = result {
            logger.warning("could not delete this sidecar's heartbeat row; it drops out of the live list when it ages", metadata: [
                "error": "\(error)",
            ])
        }
    }

    /// The sidecars whose last heartbeat is at most `within` old on the
    /// database's clock, by name.
    public func liveSidecars(within: Duration = PostgresHeartbeat.defaultLiveWindow) async throws -> [Sidecar] {
        let logger = self.logger
        let now = store.nowSQL
        let window = within.components.seconds * 1000 + within.components.attoseconds / 1_000_000_000_000_000
        return try await store.reading("list the live sidecars") { connection in
            let rows = try await connection.query("""
                SELECT name, address, version, started_at, last_seen, claims FROM gc_sidecars
                WHERE last_seen >= \(unescaped: now) - \(window) ORDER BY name
                """, logger: logger)
            var sidecars: [Sidecar] = []
            for try await (name, address, version, startedAt, lastSeen, claims)
                in rows.decode((String, String, String, Int64, Int64, Int32).self) {
                sidecars.append(Sidecar(name: name, address: address, version: version, startedAt: startedAt,
                                        lastSeen: lastSeen, claims: Int(claims)))
            }
            return sidecars
        }
    }

    /// The server's version, the database's size and this sidecar's pool size.
    public func databaseStatus() async throws -> DatabaseStatus {
        let logger = self.logger
        let poolSize = self.poolSize
        return try await store.reading("read the database's status") { connection in
            let rows = try await connection.query(
                "SELECT current_setting('server_version'), pg_database_size(current_database())", logger: logger)
            for try await (version, size) in rows.decode((String, Int64).self) {
                return DatabaseStatus(serverVersion: version, sizeBytes: size, poolSize: poolSize)
            }
            throw StoreError(.unavailable, "PostgreSQL answered no row for its version and size")
        }
    }
}
