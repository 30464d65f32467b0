import Logging
import PostgresNIO
import ServiceLifecycle

/// Deletes old sequenced events from `gc_events`, so the table that lets
/// watchers resume on any sidecar stays bounded.
///
/// An event goes once it is beyond ``Policy/maxEvents`` newer events or
/// older than ``Policy/maxAge`` (by its `at`, the database's clock),
/// whichever comes first; by default the table keeps the last 1,000,000
/// events and at most 24 hours of them (about 150–250 MB of rows). A pass
/// only deletes a prefix of positions and never the newest event, which is
/// what lets ``PostgresEventLog`` tell a pruned gap from no events: a
/// watcher resuming from before the prefix is told `compacted` (gRPC
/// OUT_OF_RANGE), as when a Raft node no longer retains its position.
///
/// Every sidecar runs it; passes that overlap only repeat work (the second
/// finds the rows gone). Needs nothing beyond plain SQL.
public struct PostgresEventRetention: Service {
    /// What to keep and how often to prune.
    public struct Policy: Sendable {
        /// Newest events always kept (unless older than ``maxAge``).
        public var maxEvents: Int64 = 1_000_000
        /// Events older than this go (unless among the newest).
        public var maxAge: Duration = .seconds(24 * 3600)
        /// Time between pruning rounds.
        public var interval: Duration = .seconds(60)
        /// Rows deleted per statement, at most (a round repeats statements
        /// while they delete full batches, up to 100 of them).
        public var batchSize: Int64 = 10_000

        public init() {}
    }

    private let client: PostgresClient
    private let policy: Policy
    private let logger: Logger

    /// Pruning through `client`'s pool by `policy`.
    public init(client: PostgresClient, policy: Policy = Policy(), logger: Logger) {
        self.client = client
        self.policy = policy
        self.logger = logger
    }

    /// Prunes every ``Policy/interval`` until graceful shutdown.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: policy.interval)
                await pruneRound()
            }
        }
    }

    private func pruneRound() async {
        var total = 0
        do {
            for _ in 0..<100 {
                let deleted = try await pruneOnce()
                total += deleted
                if Int64(deleted) < policy.batchSize { break }
            }
            if total > 0 { logger.debug("event retention: pruned events", metadata: ["deleted": "\(total)"]) }
        } catch {
            if Task.isCancelled { return }
            logger.warning("event retention: pruning gc_events failed; retrying next round", metadata: [
                "error": "\(PostgresFailure.describe(error))",
            ])
        }
    }

    /// One statement: deletes up to ``Policy/batchSize`` of the oldest
    /// events that are beyond the bounds. Returns how many.
    @discardableResult
    public func pruneOnce() async throws -> Int {
        let keep = max(1, policy.maxEvents)
        let maxAge = policy.maxAge.components
        let maxAgeMs = maxAge.seconds &* 1000 &+ maxAge.attoseconds / 1_000_000_000_000_000
        let rows = try await client.query("""
            WITH head AS (SELECT max(position) AS h FROM gc_events),
                 oldest AS (
                     SELECT position, at FROM gc_events WHERE position IS NOT NULL
                     ORDER BY position LIMIT \(max(1, policy.batchSize))),
                 cut AS (
                     SELECT max(o.position) AS c FROM oldest o, head
                     WHERE o.position < head.h
                       AND (o.position <= head.h - \(keep)
                            OR o.at < (extract(epoch from clock_timestamp()) * 1000)::bigint - \(maxAgeMs))),
                 deleted AS (DELETE FROM gc_events WHERE position <= (SELECT c FROM cut) RETURNING 1)
            SELECT count(*) FROM deleted
            """, logger: logger)
        var count: Int64 = 0
        for try await deleted in rows.decode(Int64.self) { count = deleted }
        return Int(count)
    }
}
