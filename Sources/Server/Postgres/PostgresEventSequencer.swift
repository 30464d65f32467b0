import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Numbers the events of `gc_events` in commit order, so that a watcher
/// reading by position never skips one (DESIGN.md, "PostgreSQL mode").
///
/// Writers insert events with no position. Any sidecar may run a
/// sequencer; each pass is one transaction that
///
/// 1. takes `pg_try_advisory_xact_lock(advisoryLockKey)`, and gives up the
///    pass if another sidecar's sequencer holds it;
/// 2. numbers the unsequenced rows it can see, in id order, at most
///    ``Options/batchSize`` of them, from the highest position so far plus
///    one (so positions have no gaps);
/// 3. `NOTIFY gc_events` (payload: the highest position) if it numbered any.
///
/// Why positions follow commit order: a pass sees only committed rows, and
/// passes run one at a time and each starts its numbering statement after
/// the previous one committed, so every position a pass gives is above
/// every position any reader could have seen. A row inserted with a lower
/// id that commits later simply gets a higher position.
///
/// Without the advisory lock (an engine that lacks it, detected on the
/// first pass, or ``Options/useAdvisoryLock`` off) passes on several
/// sidecars may overlap; the order still holds: a pass renumbers no row
/// (`position IS NULL` is re-checked on the row it updates), and an
/// overlapping pass that would reuse or interleave positions fails on the
/// unique index on `position` and is retried. Only work is wasted.
///
/// Latency: a pass runs every ``Options/interval`` (20 ms) while idle, at
/// once after ``poke()`` (the local store committed an event), and back to
/// back while full batches come. An event is numbered within one interval
/// plus one pass (a few ms) of its commit, two intervals when another
/// sidecar's pass held the lock; then watchers are woken by the NOTIFY.
/// Idle cost: one index probe per interval per sidecar.
public final class PostgresEventSequencer: Service, Sendable {
    /// How the sequencer runs.
    public struct Options: Sendable {
        /// Time between passes while there is nothing to number.
        public var interval: Duration = .milliseconds(20)
        /// Rows numbered per pass, at most.
        public var batchSize = 1_000
        /// Serialize passes across sidecars with an advisory lock (turned
        /// off by itself on an engine that lacks them).
        public var useAdvisoryLock = true
        /// `NOTIFY gc_events` after numbering (turned off by itself on an
        /// engine that lacks it; watchers then poll).
        public var notify = true

        public init() {}
    }

    /// What one pass did.
    public enum Pass: Sendable, Hashable {
        /// Nothing was waiting for a position.
        case idle
        /// Another sidecar's sequencer holds the lock; it will do the work.
        case busy
        /// `count` events were numbered, the last of them `through`.
        case numbered(count: Int, through: UInt64)
    }

    /// `pg_try_advisory_xact_lock` key that serializes passes ("gc-evseq").
    public static let advisoryLockKey: Int64 = 0x6763_2D65_7673_6571
    /// The `LISTEN/NOTIFY` channel that announces newly numbered events.
    public static let channel = "gc_events"

    private struct Features {
        var advisoryLock: Bool
        var notify: Bool
    }

    private let client: PostgresClient
    private let options: Options
    private let logger: Logger
    private let onSequenced: @Sendable (UInt64) -> Void
    private let wake = WakeSignal()
    private let features: Mutex<Features>

    /// A sequencer over `client`'s pool. `onSequenced` is called with the
    /// highest position after each pass that numbered events (e.g. to wake
    /// this sidecar's ``PostgresEventTail`` without waiting for the NOTIFY).
    public init(client: PostgresClient, options: Options = Options(), logger: Logger,
                onSequenced: @escaping @Sendable (UInt64) -> Void = { _ in }) {
        self.client = client
        self.options = options
        self.logger = logger
        self.onSequenced = onSequenced
        self.features = Mutex(Features(advisoryLock: options.useAdvisoryLock, notify: options.notify))
    }

    /// Runs a pass now (rather than at the next interval): call it after
    /// committing a transaction that inserted events.
    public func poke() {
        wake.signal()
    }

    /// Runs passes until graceful shutdown (place it before the gRPC server
    /// in the service group, so it still numbers the events of the drain).
    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.loop() }
    }

    /// Passes every interval, back to back while full batches come; after
    /// failures (a database down) backs off up to 2 s.
    private func loop() async {
        await wake.runPasses(every: options.interval, maxDoublings: 7, maxBackoff: .seconds(2), logger: logger,
                             failureMessage: "event sequencer: pass failed; retrying") {
            if case .numbered(let count, _) = try await sequenceOnce() { return count >= options.batchSize }
            return false
        }
    }

    /// One pass (see the type's documentation).
    ///
    /// - Throws: when the database cannot be reached or the pass conflicts
    ///   with another (lock-less mode); nothing was numbered then.
    @discardableResult
    public func sequenceOnce() async throws -> Pass {
        // Cheap, outside any transaction: the partial index of unsequenced rows.
        let pending = try await client.query(
            "SELECT EXISTS (SELECT 1 FROM gc_events WHERE position IS NULL)", logger: logger)
        var any = false
        for try await exists in pending.decode(Bool.self) { any = exists }
        guard any else { return .idle }
        while true {
            let current = features.withLock { $0 }
            do {
                let pass = try await numberingTransaction(current)
                if case .numbered(_, let through) = pass { onSequenced(through) }
                return pass
            } catch let error as PostgresTransactionError {
                guard let missing = error.closureError as? MissingFeature else { throw error }
                // The transaction was rolled back; run it again without.
                features.withLock { f in
                    switch missing.feature {
                    case .advisoryLock: f.advisoryLock = false
                    case .notify: f.notify = false
                    }
                }
                logger.warning("event sequencer: the database lacks \(missing.feature.rawValue); continuing without it", metadata: [
                    "error": "\(PostgresFailure.describe(missing.error))",
                    "consequence": "\(missing.feature.consequence)",
                ])
            }
        }
    }

    /// A statement the database did not support.
    private struct MissingFeature: Error {
        enum Feature: String {
            case advisoryLock = "advisory locks (pg_try_advisory_xact_lock)"
            case notify = "NOTIFY (pg_notify)"

            var consequence: String {
                switch self {
                case .advisoryLock: "sequencer passes on several sidecars may overlap; the unique index on position keeps the order, at the cost of retried passes"
                case .notify: "watchers learn of new events by polling (PostgresEventTail's poll interval)"
                }
            }
        }

        var feature: Feature
        var error: any Error
    }

    private func numberingTransaction(_ features: Features) async throws -> Pass {
        let logger = self.logger
        let batchSize = Int64(max(1, options.batchSize))
        return try await client.withTransaction(logger: logger) { connection -> Pass in
            if features.advisoryLock {
                var held = false
                do {
                    let rows = try await connection.query("SELECT pg_try_advisory_xact_lock(\(Self.advisoryLockKey))", logger: logger)
                    for try await granted in rows.decode(Bool.self) { held = granted }
                } catch where PostgresFailure.isUnsupported(error) {
                    throw MissingFeature(feature: .advisoryLock, error: error)
                }
                guard held else { return .busy }
            }
            // A new statement, so a new snapshot: it sees the last pass's
            // commit (that pass released the lock only after committing).
            let rows = try await connection.query("""
                WITH base AS (SELECT coalesce(max(position), 0)::bigint AS p FROM gc_events),
                     batch AS (
                         SELECT id, row_number() OVER (ORDER BY id) AS n
                         FROM (SELECT id FROM gc_events WHERE position IS NULL ORDER BY id LIMIT \(batchSize)) unsequenced)
                UPDATE gc_events e SET position = base.p + batch.n
                FROM base, batch
                WHERE e.id = batch.id AND e.position IS NULL
                RETURNING e.position
                """, logger: logger)
            var count = 0
            var through: Int64 = 0
            for try await position in rows.decode(Int64.self) {
                count += 1
                through = max(through, position)
            }
            guard count > 0 else { return .idle }
            if features.notify {
                do {
                    try await connection.query("SELECT pg_notify(\(Self.channel), \(String(through)))", logger: logger)
                } catch where PostgresFailure.isUnsupported(error) {
                    throw MissingFeature(feature: .notify, error: error)
                }
            }
            return .numbered(count: count, through: UInt64(through))
        }
    }
}
