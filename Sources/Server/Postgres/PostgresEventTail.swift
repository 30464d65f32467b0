import LeaseFSM
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Feeds one sidecar's ``EventHub`` from `gc_events`, so `WatchLeases`
/// serves PostgreSQL mode as it serves Raft mode.
///
/// It reads the sequenced events after the last position it published
/// (`WHERE position > $last ORDER BY position LIMIT n`) and publishes them
/// with ``LeaseEvent/index`` = position and ``LeaseEvent/position`` = 0,
/// so a watcher's `after_index` is a position, the same on every sidecar.
/// It starts at the table's newest position (``EventHub/startFeed(after:)``);
/// older events are the hub's backfill (``PostgresEventLog``).
///
/// It reads when woken by `LISTEN gc_events` (the sequencer's NOTIFY), by
/// ``poke()``, and in any case every ``Options/pollInterval``: the fallback
/// while LISTEN is unavailable (an engine without it, or its connection
/// dropped: it is re-established with backoff). The LISTEN connection is
/// one connection of the pool, held for as long as it listens.
///
/// Latency: with LISTEN, a few ms after the sequencer's commit; without,
/// half a poll interval on average (125 ms by default), one at worst.
public final class PostgresEventTail: Service, Sendable {
    /// How the tail runs.
    public struct Options: Sendable {
        /// Time between reads when nothing wakes the tail earlier.
        public var pollInterval: Duration = .milliseconds(250)
        /// Events read at once, at most; a full batch is followed at once by
        /// the next read. Kept below postgres-nio's row buffer target (256):
        /// a result the reader keeps up with never waits on backpressure,
        /// the state in which postgres-nio 1.33.2 traps if the database
        /// closes the connection (DESIGN.md, "PostgreSQL mode", known issue).
        public var batchSize = 200
        /// Whether to `LISTEN gc_events` (false: poll only).
        public var listen = true
        /// Wait before re-establishing LISTEN after it failed; it doubles
        /// per failure up to 30 s.
        public var listenRetry: Duration = .seconds(1)

        public init() {}
    }

    /// Where the tail is.
    public struct Status: Sendable, Hashable {
        /// The last position published into the hub; nil until the tail
        /// first reached the database.
        public var position: UInt64?
        /// Whether a LISTEN connection is established now.
        public var listening: Bool
    }

    private let client: PostgresClient
    private let log: PostgresEventLog
    private let hub: EventHub
    private let options: Options
    private let logger: Logger
    private let wake = WakeSignal()
    private let state = Mutex(Status(position: nil, listening: false))

    /// A tail publishing into `hub` (constructed with `log` as its
    /// ``EventBackfill`` source).
    public init(client: PostgresClient, log: PostgresEventLog, hub: EventHub, options: Options = Options(), logger: Logger) {
        self.client = client
        self.log = log
        self.hub = hub
        self.options = options
        self.logger = logger
    }

    /// Where the tail is now.
    public var status: Status { state.withLock { $0 } }

    /// Reads now: new events were numbered (this sidecar's sequencer's
    /// `onSequenced`).
    public func poke() {
        wake.signal()
    }

    /// Reads and listens until graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                if self.options.listen {
                    group.addTask { await self.listenLoop() }
                }
                group.addTask { await self.readLoop() }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// Reads every poll interval or when woken, back to back while full
    /// batches come; after failures backs off up to 5 s.
    private func readLoop() async {
        await wake.runPasses(every: options.pollInterval, maxDoublings: 4, maxBackoff: .seconds(5), logger: logger,
                             failureMessage: "event tail: reading gc_events failed; retrying") {
            try await readOnce()
        }
    }

    /// One read: starts the feed at the table's head the first time, then
    /// publishes what was numbered since. Returns whether the batch was
    /// full (more may be waiting).
    @discardableResult
    func readOnce() async throws -> Bool {
        let position: UInt64
        if let known = state.withLock({ $0.position }) {
            position = known
        } else {
            let head = try await log.head()
            hub.startFeed(after: head)
            state.withLock { $0.position = head }
            logger.debug("event tail: started", metadata: ["position": "\(head)"])
            position = head
        }
        let batch = try await log.read(after: position, limit: options.batchSize)
        if let pruned = batch.prunedThrough {
            // Paused past the retention bound: the events in between are gone
            // everywhere; watchers behind them are told (compacted).
            logger.warning("event tail: events were pruned before this sidecar published them", metadata: [
                "after": "\(position)", "prunedThrough": "\(pruned)",
            ])
            hub.markUnavailable(through: pruned)
        }
        hub.publish(batch.events)
        if let through = batch.through {
            state.withLock { $0.position = through }
        }
        if let undecodable = batch.undecodable {
            // Stop here rather than let watchers pass it unknowingly; a
            // sidecar of the newer build serves them meanwhile.
            throw undecodable
        }
        return batch.full
    }

    private func listenLoop() async {
        var failures = 0
        var loggedUnavailable = false
        while !Task.isCancelled {
            var listened = false
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: PostgresEventSequencer.channel) { notifications in
                        listened = true
                        self.state.withLock { $0.listening = true }
                        // Anything numbered before LISTEN took effect was not announced.
                        self.wake.signal()
                        for try await _ in notifications { self.wake.signal() }
                    }
                }
            } catch {
                if Task.isCancelled { break }
                if !loggedUnavailable || listened {
                    logger.warning("event tail: LISTEN \(PostgresEventSequencer.channel) is unavailable; polling meanwhile", metadata: [
                        "error": "\(PostgresFailure.describe(error))", "pollInterval": "\(options.pollInterval)",
                    ])
                    loggedUnavailable = true
                }
            }
            state.withLock { $0.listening = false }
            failures = listened ? 1 : failures + 1
            let delay = min(options.listenRetry * (1 << min(failures - 1, 5)), .seconds(30))
            try? await Task.sleep(for: delay)
        }
    }
}
