import Foundation
import LeaseFSM
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The lease store of `GC_STORAGE_BACKEND=postgres`: the state lives in
/// PostgreSQL, shared by any number of stateless sidecars (DESIGN.md,
/// "PostgreSQL mode").
///
/// A write is one transaction: lock the rows the command touches (`FOR
/// UPDATE`, in one global order: session, leases, objects, jobs, quota
/// shards), draw the command's index from `gc_command_index` and the time
/// from the database's clock, run LeaseFSM's own transition on a machine of
/// just those rows, and write back what it changed, with the quota counters,
/// the running totals and the events. So the rules are LeaseFSM's, exactly
/// as every Raft node applies them, and time is the database's.
public final class PostgresLeaseStore: Sendable {
    public let limits: LeaseLimits
    /// Lease events, fed from `gc_events` by the event tail.
    public let events: EventHub
    let client: PostgresClient
    let logger: Logger
    let quota: PostgresQuota
    /// Group commit of the clients' creates, renewals and releases.
    let writes: PostgresWriteBatcher
    /// Statements retried when PostgreSQL aborts a transaction to resolve a
    /// deadlock or a serialization conflict (nothing was applied).
    static let maxConflictRetries = 8
    /// How long one transaction or read may take before it is abandoned
    /// and reported as unavailable (a transaction's commit as unknown).
    /// postgres-nio can leave a query written just as its connection
    /// closes (a database crash) waiting forever; without this bound the
    /// caller would wait with it (a sidecar's outcome batcher, dispatcher
    /// or reaper stalled for good). The abandoned attempt is cancelled and
    /// left to end on its own.
    static let attemptLimit: Duration = .seconds(15)
    /// Milliseconds added to the database's clock (tests move time forward
    /// with ``advanceClockForTesting(by:)``; always 0 in a sidecar).
    private let clockOffset = Mutex<Int64>(0)
    /// Why the last write could not reach the database, until one succeeds.
    private let lastFailure = Mutex<String?>(nil)

    /// The database's time in Unix milliseconds, as an SQL expression.
    var nowSQL: String {
        "((extract(epoch from clock_timestamp()) * 1000)::bigint + \(clockOffsetMilliseconds))"
    }

    /// What ``advanceClockForTesting(by:)`` added to the database's clock.
    var clockOffsetMilliseconds: Int64 { clockOffset.withLock { $0 } }

    /// Moves this store's view of the database's clock forward by `milliseconds`
    /// (tests of expiry and retries; no sidecar calls it).
    public func advanceClockForTesting(by milliseconds: Int64) {
        clockOffset.withLock { $0 += milliseconds }
    }

    /// - Parameters:
    ///   - client: the connection pool (run as a service by the sidecar).
    ///   - limits: the lease rules; every sidecar over one database should
    ///     use the same (each enforces its own on the commands it writes).
    ///   - writeTransactions: most transactions applying the clients'
    ///     writes at once; the writes arriving meanwhile wait and are
    ///     applied together (``PostgresWriteBatcher``). Leave the rest of
    ///     the pool to the reaper, the cleanups, the events and the reads.
    public init(client: PostgresClient, limits: LeaseLimits, events: EventHub, logger: Logger,
                writeTransactions: Int = 2) {
        self.client = client
        self.limits = limits
        self.events = events
        self.logger = logger
        self.quota = PostgresQuota(limits: limits)
        self.writes = PostgresWriteBatcher(maxInFlight: writeTransactions)
    }

    /// Run once the schema is current, before serving: every quota scope
    /// divides its capacity again at its next create, so a changed
    /// `GC_MAX_LEASES` or `GC_MAX_LEASES_PER_SERVICE` applies.
    public func prepareForService() async throws {
        let logger = self.logger
        try await transaction("prepare the quota counters") { connection in
            try await PostgresQuota.resetCapacities(on: connection, logger: logger)
        }
    }

    /// Stamps and applies `command` in one transaction; returns its result
    /// once committed (durable in PostgreSQL).
    ///
    /// - Throws: ``LeaseError`` when the rules refused it (nothing changed
    ///   but the client session's memory of the answer); ``StoreError``
    ///   when the database could not be reached or the commit's outcome is
    ///   unknown (retry with the same `origin` to apply it at most once).
    public func propose(_ command: LeaseCommand, origin: ClientOrigin?) async throws -> CommandResult {
        guard Self.isBatchable(command) else { return try await applyAlone(command, origin: origin) }
        return try await writes.apply(.init(command: command, origin: origin)) { batch in await self.run(batch) }
    }

    /// `command` in a transaction of its own.
    private func applyAlone(_ command: LeaseCommand, origin: ClientOrigin?) async throws -> CommandResult {
        let outcome = try await transaction("apply \(command.kindName)") { connection in
            try await self.apply(command, origin: origin, on: connection)
        }
        return try outcome.get()
    }

    private func outcome(of item: PostgresWriteBatcher.Command) async -> Result<CommandResult, any Error> {
        do {
            return .success(try await applyAlone(item.command, origin: item.origin))
        } catch {
            return .failure(error)
        }
    }

    /// Applies a batch of the write batcher: alone when it is one command;
    /// else in one transaction, or, when it cannot be applied as one
    /// (``BatchNeedsSplitting``), each command alone, concurrently.
    private func run(_ batch: [PostgresWriteBatcher.Command]) async -> [Result<CommandResult, any Error>] {
        if batch.count == 1 {
            return [await outcome(of: batch[0])]
        }
        do {
            let results = try await transaction("apply a batch of \(batch.count) writes") { connection in
                try await self.apply(batch: batch, on: connection)
            }
            return results.map { $0.mapError { $0 as any Error } }
        } catch is BatchNeedsSplitting {
            return await withTaskGroup(of: (Int, Result<CommandResult, any Error>).self) { group in
                for (index, item) in batch.enumerated() {
                    group.addTask { (index, await self.outcome(of: item)) }
                }
                var outcomes = [Result<CommandResult, any Error>](
                    repeating: .failure(StoreError(.unavailable, "internal error: unanswered")), count: batch.count)
                for await (index, outcome) in group { outcomes[index] = outcome }
                return outcomes
            }
        } catch {
            return Array(repeating: .failure(error), count: batch.count)
        }
    }

    /// Runs `body` in a transaction, retrying it when PostgreSQL aborted it
    /// for a deadlock or serialization conflict; maps database failures to
    /// ``StoreError``.
    func transaction<R: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> R) async throws -> R {
        var attempt = 0
        let client = self.client, logger = self.logger
        while true {
            attempt += 1
            do {
                let result = try await PostgresAttemptTimeout.run(limit: Self.attemptLimit) {
                    try await client.withTransaction(logger: logger) { connection in
                        try await body(connection)
                    }
                }
                if lastFailure.withLock({ $0 != nil }) { lastFailure.withLock { $0 = nil } }
                return result
            } catch let error as PostgresTransactionError {
                if let inner = error.closureError as? LeaseError { throw inner }
                if let inner = error.closureError as? StoreError { throw inner }
                if let inner = error.closureError as? BatchNeedsSplitting { throw inner }
                let cause = error.commitError ?? error.closureError ?? error.beginError
                if attempt < Self.maxConflictRetries, let cause, Self.isConflict(cause) { continue }
                let failure = storeError(what, cause, commitUnknown: error.commitError != nil)
                lastFailure.withLock { $0 = failure.message }
                throw failure
            } catch let error as LeaseError {
                throw error
            } catch let error as StoreError {
                throw error
            } catch let error as BatchNeedsSplitting {
                throw error
            } catch {
                // Abandoned after attemptLimit: it may still commit.
                let failure = storeError(what, error, commitUnknown: error is PostgresAttemptTimedOut)
                lastFailure.withLock { $0 = failure.message }
                throw failure
            }
        }
    }

    /// A read outside any transaction, with failures mapped to ``StoreError``.
    func reading<R: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> R) async throws -> R {
        let client = self.client
        do {
            return try await PostgresAttemptTimeout.run(limit: Self.attemptLimit) {
                try await client.withConnection { connection in try await body(connection) }
            }
        } catch let error as StoreError {
            throw error
        } catch let error as LeaseStateMachine.DecodingError {
            throw StoreError(.unavailable, "\(what): a row in the database is not one of this build's records: \(error)")
        } catch {
            throw storeError(what, error, commitUnknown: false)
        }
    }

    private func storeError(_ what: String, _ cause: (any Error)?, commitUnknown: Bool) -> StoreError {
        let detail = cause.map(Self.describe) ?? "unknown error"
        if commitUnknown {
            return StoreError(.unavailable, "PostgreSQL: the commit of \(what) did not answer (\(detail)); it may or may not have been applied: retry with the same origin")
        }
        return StoreError(.unavailable, "PostgreSQL: cannot \(what): \(detail)")
    }

    /// Deadlock detected (40P01), serialization failure (40001) or a key a
    /// concurrent transaction inserted first (23505): the transaction was
    /// rolled back and may simply be run again.
    static func isConflict(_ error: any Error) -> Bool {
        guard let psql = error as? PSQLError, let state = psql.serverInfo?[.sqlState] else { return false }
        // 23505: a unique violation on a key this transaction found absent
        // (a new object or lease) that a concurrent one inserted first.
        return state == "40P01" || state == "40001" || state == "23505"
    }

    /// One line saying what went wrong, with PostgreSQL's own message when there is one.
    static func describe(_ error: any Error) -> String {
        if let psql = error as? PSQLError {
            if let message = psql.serverInfo?[.message] {
                return "\(message) (SQLSTATE \(psql.serverInfo?[.sqlState] ?? "?"))"
            }
            return "\(psql.code)"
        }
        return "\(error)"
    }
}

extension PostgresLeaseStore: LeaseStore {
    /// Any sidecar reaps and delivers: claims keep them from doubling up.
    public var mayRunCleanup: Bool { true }

    /// There is no leader to confirm: claims fence deliveries instead.
    public func confirmLeadership() async -> Bool { true }

    /// Why the last write could not reach PostgreSQL, until one succeeds.
    public var healthProblem: String? { lastFailure.withLock { $0 } }
}

extension LeaseCommand {
    /// What the command does, for log lines and errors.
    var kindName: String {
        switch self {
        case .create: "create"
        case .renew: "renew"
        case .release: "release"
        case .expire: "expire"
        case .cleanupOutcome, .cleanupOutcomes: "cleanup outcome"
        case .retryDeadLetters: "retry of dead letters"
        case .renewals: "renewals"
        }
    }
}
