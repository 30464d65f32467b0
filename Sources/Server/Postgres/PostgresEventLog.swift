import LeaseFSM
import Logging
import NIOCore
import PostgresNIO

/// The sequenced events of `gc_events`, read by position: what a sidecar's
/// ``PostgresEventTail`` publishes, and the ``EventBackfill`` source its
/// ``EventHub`` serves older resumes from, so a watcher that moves to
/// another sidecar resumes where it was.
///
/// Positions are gap-free (``PostgresEventSequencer`` numbers each batch
/// from the highest position plus one, in one transaction) and the retention
/// pass only deletes a prefix of them, keeping the newest
/// (``PostgresEventRetention``). So a read after position `p` whose first
/// row is not `p + 1` proves that the events in between were pruned.
public struct PostgresEventLog: EventBackfill {
    /// One read of the table.
    public struct Batch: Sendable, Hashable {
        /// The events read, in position order; each has ``LeaseEvent/index``
        /// = its position and ``LeaseEvent/position`` = 0.
        public var events: [LeaseEvent] = []
        /// The position of the last event in ``events``; nil when empty.
        public var through: UInt64? { events.last?.index }
        /// Set when events right after the requested position were pruned:
        /// the read resumed after this position instead.
        public var prunedThrough: UInt64?
        /// Set when the read stopped at an event this build cannot decode
        /// (a newer sidecar wrote a kind it does not know): the events
        /// before it are in ``events``; nothing after it is read, so no
        /// watcher passes it unknowingly (decision 0038's rule, applied to
        /// events).
        public var undecodable: Undecodable?
        /// Whether the batch was full: more may follow at once.
        public var full = false
    }

    /// An event this build cannot decode.
    public struct Undecodable: Error, Sendable, Hashable, CustomStringConvertible {
        public var position: UInt64
        public var reason: String

        public var description: String {
            "the event at position \(position) cannot be decoded by this build (\(reason)); upgrade this sidecar, or resume on an upgraded one"
        }
    }

    let client: PostgresClient
    let logger: Logger

    /// A log read through `client`'s pool.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// The highest position numbered so far (0: none yet).
    public func head() async throws -> UInt64 {
        let rows = try await client.query("SELECT coalesce(max(position), 0)::bigint FROM gc_events", logger: logger)
        for try await head in rows.decode(Int64.self) { return UInt64(clamping: head) }
        return 0
    }

    /// Up to `limit` sequenced events after position `after`, in order, in
    /// one statement (one snapshot: a concurrent prune is seen entirely or
    /// not at all).
    public func read(after: UInt64, limit: Int) async throws -> Batch {
        let rows = try await client.query("""
            SELECT position, record FROM gc_events
            WHERE position > \(Int64(clamping: after)) ORDER BY position LIMIT \(Int64(max(1, limit)))
            """, logger: logger)
        var batch = Batch()
        var count = 0
        for try await (position, record) in rows.decode((Int64, ByteBuffer).self) {
            let at = UInt64(clamping: position)
            if count == 0 && at > after &+ 1 { batch.prunedThrough = at - 1 }
            count += 1
            do {
                batch.events.append(try PostgresEventRecord.decode(record.readableBytesView, position: at))
            } catch {
                batch.undecodable = Undecodable(position: at, reason: error.description)
                break
            }
        }
        batch.full = count >= limit && batch.undecodable == nil
        return batch
    }

    /// ``EventBackfill``: the events after `index`, or
    /// ``EventHub/WatchError/compacted(requested:oldestRetained:)`` when
    /// some of them were pruned, or a ``StoreError`` (UNAVAILABLE) naming an
    /// event this build cannot decode once the watch reached it.
    public func events(after index: UInt64, limit: Int) async throws -> [LeaseEvent] {
        let batch: Batch
        do {
            batch = try await read(after: index, limit: limit)
        } catch {
            throw StoreError(.unavailable, "gc_events: \(PostgresFailure.describe(error))")
        }
        if let pruned = batch.prunedThrough {
            throw EventHub.WatchError.compacted(requested: index, oldestRetained: pruned + 1)
        }
        if batch.events.isEmpty, let undecodable = batch.undecodable {
            throw StoreError(.unavailable, "\(undecodable)")
        }
        return batch.events
    }
}

/// What the PostgreSQL event loops need to know about a failed statement.
extension PostgresFailure {
    /// The SQLSTATE of `error`, looking inside a transaction's error.
    static func sqlState(of error: any Error) -> String? {
        if let error = error as? PSQLError { return error.serverInfo?[.sqlState] }
        if let error = error as? PostgresTransactionError {
            return (error.closureError ?? error.commitError ?? error.beginError).flatMap(sqlState(of:))
        }
        return nil
    }

    /// Whether `error` says the server lacks the function or feature (an
    /// engine that speaks the wire protocol without `LISTEN/NOTIFY` or
    /// advisory locks): undefined_function, feature_not_supported,
    /// syntax_error (an engine that does not parse the statement).
    static func isUnsupported(_ error: any Error) -> Bool {
        guard let state = sqlState(of: error) else { return false }
        return state == "42883" || state == "0A000" || state == "42601"
    }
}
