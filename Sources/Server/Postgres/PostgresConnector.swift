import Logging
import PostgresNIO
import Synchronization

/// Waits at start-up for the database to answer and its schema to be
/// current, so that a database that is down (or not up yet) is retried
/// rather than a crash loop.
///
/// Each attempt opens one connection, applies pending migrations
/// (``PostgresMigrator``) and closes it; a failed attempt is retried after a
/// capped exponential backoff. ``state`` says where it stands (for
/// `/readyz` and health); a state change is logged once, not every attempt.
/// Only what no retry can fix stops it: a schema newer than this binary
/// knows, or a TLS file that cannot be read.
public final class PostgresConnector: Sendable {
    /// Where the connector stands.
    public enum State: Sendable, Hashable, CustomStringConvertible {
        /// Not connected yet: attempts made so far, and why the last failed.
        case connecting(attempts: Int, lastError: String?)
        /// The database answered and its schema is current.
        case ready(PostgresMigrationStatus)
        /// Given up: what must be fixed before a restart.
        case failed(String)

        public var isReady: Bool {
            if case .ready = self { return true }
            return false
        }

        /// `connecting (attempt 3: cannot connect to ...)`, `ready (schema version 1 of 1, ...)`, `failed: ...`.
        public var description: String {
            switch self {
            case .connecting(let attempts, let lastError):
                guard let lastError else { return "connecting" }
                return "connecting (attempt \(attempts): \(lastError))"
            case .ready(let status):
                return "ready (\(status))"
            case .failed(let reason):
                return "failed: \(reason)"
            }
        }
    }

    /// Delays between attempts: `initial`, then twice the last, at most
    /// `maximum`, each spread by ±`jitter` (so sidecars that lost the
    /// database together do not return in step).
    public struct Backoff: Sendable, Hashable {
        public var initial: Duration
        public var maximum: Duration
        /// A fraction in 0...1.
        public var jitter: Double

        public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5), jitter: Double = 0.2) {
            self.initial = initial
            self.maximum = max(initial, maximum)
            self.jitter = min(1, max(0, jitter))
        }

        /// The delay before attempt `attempt + 1` (attempt counts from 1),
        /// without jitter.
        public func baseDelay(afterAttempt attempt: Int) -> Duration {
            var delay = initial
            for _ in 1..<max(1, attempt) {
                delay *= 2
                if delay >= maximum { return maximum }
            }
            return min(delay, maximum)
        }

        func delay(afterAttempt attempt: Int) -> Duration {
            let base = baseDelay(afterAttempt: attempt)
            guard jitter > 0 else { return base }
            return base * Double.random(in: (1 - jitter)...(1 + jitter))
        }
    }

    public let database: DatabaseURL
    public let migrator: PostgresMigrator
    public let backoff: Backoff
    /// Whether an attempt applies pending migrations (`true`), or only
    /// checks that none is pending and the schema is not newer.
    public let appliesMigrations: Bool
    /// How long one attempt (connect, migrate) may take before it is
    /// abandoned and retried.
    public let attemptTimeout: Duration
    private let logger: Logger
    private let current = Mutex<State>(.connecting(attempts: 0, lastError: nil))

    /// - Parameters:
    ///   - database: `DATABASE_URL`.
    ///   - migrator: applies the schema (its logger logs the migrations).
    ///   - appliesMigrations: false to wait for another sidecar (or `gc-sidecar
    ///     migrate`) to migrate; the connector then stays connecting while
    ///     migrations are pending.
    ///   - attemptTimeout: how long one attempt may take; generous, since a
    ///     migration of a large table (or waiting for another sidecar's)
    ///     takes what it takes.
    public init(database: DatabaseURL, migrator: PostgresMigrator, logger: Logger,
                backoff: Backoff = Backoff(), appliesMigrations: Bool = true,
                attemptTimeout: Duration = .seconds(300)) {
        self.attemptTimeout = attemptTimeout
        self.database = database
        self.migrator = migrator
        self.logger = logger
        self.backoff = backoff
        self.appliesMigrations = appliesMigrations
    }

    /// The state now (cheap; safe from any thread).
    public var state: State { current.withLock { $0 } }

    /// Tries until the database answers with a current schema.
    ///
    /// - Returns: the schema's status once ready (``state`` is `.ready`).
    /// - Throws: ``PostgresMigrationError`` or ``DatabaseURL/SetupError``
    ///   when no retry can help (``state`` is `.failed`), or
    ///   `CancellationError` when the task is cancelled (shutdown).
    public func connect() async throws -> PostgresMigrationStatus {
        let started = ContinuousClock.now
        var attempts = 0
        var loggedError: String?
        while true {
            try Task.checkCancellation()
            attempts += 1
            do {
                let status = try await PostgresAttemptTimeout.run(limit: attemptTimeout) { try await self.attempt() }
                current.withLock { $0 = .ready(status) }
                logger.info("database ready", metadata: [
                    "database": "\(database)", "schema_version": "\(status.currentVersion)",
                    "attempts": "\(attempts)", "waited_ms": "\((ContinuousClock.now - started).milliseconds)",
                ])
                return status
            } catch {
                if Task.isCancelled { throw CancellationError() }
                let reason = PostgresFailure.describe(error)
                if error is PostgresMigrationError || error is DatabaseURL.SetupError {
                    current.withLock { $0 = .failed(reason) }
                    logger.critical("database cannot be used", metadata: ["database": "\(database)", "error": "\(reason)"])
                    throw error
                }
                current.withLock { $0 = .connecting(attempts: attempts, lastError: reason) }
                if reason != loggedError {
                    loggedError = reason
                    logger.warning("waiting for the database; retrying with backoff", metadata: [
                        "database": "\(database)", "error": "\(reason)", "attempt": "\(attempts)",
                    ])
                }
            }
            try await Task.sleep(for: backoff.delay(afterAttempt: attempts))
        }
    }

    /// A pending migration while ``appliesMigrations`` is false.
    struct MigrationsPending: Error, CustomStringConvertible {
        var status: PostgresMigrationStatus
        var description: String { "\(status): waiting for `gc-sidecar migrate` or a sidecar that migrates" }
    }

    private func attempt() async throws -> PostgresMigrationStatus {
        let migrator = self.migrator
        let applies = appliesMigrations
        return try await database.withConnection(logger: logger) { connection in
            if applies {
                return try await migrator.migrate(on: connection)
            }
            let status = try await migrator.status(on: connection)
            if status.isNewerThanKnown {
                throw PostgresMigrationError.schemaTooNew(database: status.currentVersion, known: status.knownVersion)
            }
            guard status.pending.isEmpty else { throw MigrationsPending(status: status) }
            return status
        }
    }
}

extension Duration {
    /// Whole milliseconds.
    fileprivate var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
