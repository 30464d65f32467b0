import LeaseFSM
import Logging
import PostgresNIO

/// Several client commands applied in one transaction (group commit; see
/// ``PostgresWriteBatcher``).
///
/// The batch locks the union of its commands' rows in the global order
/// with three statements whatever its size, draws one index per command
/// (increasing in the batch's order, after every lock), applies the
/// commands one after another to one machine of those rows, takes the
/// quota units of the leases it created in one statement, and writes back
/// and inserts the events once. Each command's result is its own: a
/// refused one changes nothing but its session's memory of the answer,
/// exactly as when applied alone. Two commands on one object simply see
/// each other, in order, as in Raft mode's log.
extension PostgresLeaseStore {
    /// Thrown inside a batch's transaction (rolling it back) when the batch
    /// cannot be applied as one: a quota shard lacks room for its new leases
    /// or it made more cleanup jobs than one index numbers. The batcher
    /// then applies the commands one by one, each on the single-command
    /// path, which redivides quota capacity or refuses with the exact count.
    struct BatchNeedsSplitting: Error {}

    /// The commands ``PostgresWriteBatcher`` puts together: the clients'
    /// writes. The reaper's expiries, cleanup outcomes and renewal batches
    /// are batches already and run alone.
    static func isBatchable(_ command: LeaseCommand) -> Bool {
        switch command {
        case .create, .renew, .release: true
        case .renewals, .expire, .cleanupOutcome, .cleanupOutcomes, .retryDeadLetters: false
        }
    }

    /// Applies `batch` (batchable commands, in order) in the transaction of
    /// `connection`; returns each command's result, in the batch's order.
    ///
    /// - Throws: ``BatchNeedsSplitting`` (see there); database failures.
    func apply(batch: [PostgresWriteBatcher.Command], on connection: PostgresConnection) async throws
        -> [Result<CommandResult, LeaseError>] {
        var rows = PostgresLockedRows(connection: connection, logger: logger, nowSQL: nowSQL,
                                      clockOffset: clockOffsetMilliseconds)
        var leaseIDs: [LeaseID] = [], objects: [ObjectKey] = [], objectsOfLeases = false
        for item in batch {
            switch item.command {
            case .create(let create): objects.append(create.object)
            case .renew(let renew): leaseIDs += renew.leaseIDs
            case .release(let release):
                leaseIDs.append(release.leaseID)
                objectsOfLeases = true
            case .renewals, .expire, .cleanupOutcome, .cleanupOutcomes, .retryDeadLetters:
                throw StoreError(.unavailable, "internal error: a \(item.command.kindName) command was put in a write batch")
            }
        }
        try await rows.lock(sessions: batch.compactMap { $0.origin?.clientID }, leases: leaseIDs,
                            objectsOfLeases: objectsOfLeases, objects: objects, count: batch.count)
        let now = rows.now, indexes = rows.indexes
        // The batch's jobs are numbered after its first index; the others'
        // numbers go unused, so ids stay unique.
        let firstJob = indexes[0] * Self.jobsPerIndex
        var machine = try LeaseStateMachine(slice: rows.slice, limits: limits, jobSequence: firstJob)
        let before = machine
        var results: [Result<CommandResult, LeaseError>] = []
        var events: [LeaseEvent] = []
        results.reserveCapacity(batch.count)
        for (item, index) in zip(batch, indexes) {
            let output = machine.apply(StampedCommand(item.command, stamp: now, origin: item.origin), index: index)
            results.append(output.result)
            events += output.events
        }
        let changes = machine.changes(since: before)
        if let lastJob = changes.jobs.map(\.job.id).max(), lastJob >= firstJob + Self.jobsPerIndex {
            throw BatchNeedsSplitting()
        }
        // Quota: a unit for each lease the batch created that is still
        // active; back for each that was active and ended.
        var newLeases: [String: Int] = [:], fresh: [LeaseID] = []
        var ended: [(service: String, shard: Int16)] = []
        var shards = rows.quotaShards
        for (lease, _) in changes.leases {
            if let old = before.lease(lease.id) {
                if old.isActive && !lease.isActive { ended.append((lease.serviceID, shards[lease.id] ?? 0)) }
            } else if lease.isActive {
                newLeases[lease.serviceID, default: 0] += 1
                fresh.append(lease.id)
            }
        }
        if !newLeases.isEmpty {
            guard try await quota.reserveAll(newLeases, shard: rows.shard, on: connection, logger: logger) else {
                throw BatchNeedsSplitting()
            }
            for id in fresh { shards[id] = rows.shard }
        }
        try await quota.release(ended, on: connection, logger: logger)
        try await rows.write(changes, quotaShards: shards, stats: machine.stats, statsShard: rows.shard)
        try await PostgresEventWriter.insert(events, on: connection, logger: logger)
        return results
    }
}
