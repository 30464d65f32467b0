import LeaseFSM
import Logging
import NIOCore
import PostgresNIO

/// One command, applied inside a transaction.
extension PostgresLeaseStore {
    /// How many cleanup jobs one command may create: job ids are
    /// `index * jobsPerIndex + 1 ...`, unique without a second sequence.
    static let jobsPerIndex: UInt64 = 1000

    func apply(_ command: LeaseCommand, origin: ClientOrigin?, on connection: PostgresConnection) async throws
        -> Result<CommandResult, LeaseError> {
        var rows = PostgresLockedRows(connection: connection, logger: logger, nowSQL: nowSQL,
                                      clockOffset: clockOffsetMilliseconds)
        if let origin { try await rows.lockSession(origin.clientID) }
        switch command {
        case .create(let create):
            try await rows.lockObject(create.object)
        case .renew(let renew):
            try await rows.lockLeases(renew.leaseIDs, withObjects: false)
        case .renewals(let items):
            try await rows.lockLeases(items.map(\.leaseID), withObjects: false)
        case .release(let release):
            try await rows.lockLeases([release.leaseID], withObjects: true)
        case .expire(let expire):
            try await rows.lockLeases(expire.leaseIDs, withObjects: true)
        case .cleanupOutcome(let outcome):
            try await rows.lockJobs([outcome.jobID])
        case .cleanupOutcomes(let outcomes):
            try await rows.lockJobs(outcomes.map(\.jobID))
        case .retryDeadLetters(let retry):
            try await rows.lockJobs(retry.jobIDs)
        }
        // Drawn by the last locking statement, after the locks: per object,
        // indexes (fencing tokens, incarnations) grow in commit order.
        let (index, now) = (rows.index, rows.now)
        guard index > 0 else { throw StoreError(.unavailable, "PostgreSQL: no command index was drawn") }
        let stamped = StampedCommand(command, stamp: now, origin: origin)
        let jobSequence = index * Self.jobsPerIndex
        var machine = try LeaseStateMachine(slice: rows.slice, limits: limits, jobSequence: jobSequence)
        var before = machine
        var output = machine.apply(stamped, index: index)
        var shards = rows.quotaShards
        // Only a lease this command created takes quota: a replayed answer
        // (same origin) names a lease created by the first attempt.
        if case .success(.created(let lease)) = output.result, machine.lease(lease.id) != nil {
            switch try await quota.reserve(service: lease.serviceID, shard: rows.shard, on: connection, logger: logger) {
            case .reserved(let shard):
                shards[lease.id] = shard
            case .refused(let counts):
                // Apply again with the real counts, so the refusal (and the
                // session's memory of it) is the state machine's own.
                machine = try LeaseStateMachine(slice: rows.slice, limits: limits, jobSequence: jobSequence, activeCounts: counts)
                before = machine
                output = machine.apply(stamped, index: index)
            }
        }
        let changes = machine.changes(since: before)
        var ended: [(service: String, shard: Int16)] = []
        for (lease, _) in changes.leases where !lease.isActive && before.lease(lease.id)?.isActive == true {
            ended.append((lease.serviceID, shards[lease.id] ?? 0))
        }
        try await quota.release(ended, on: connection, logger: logger)
        try await rows.write(changes, quotaShards: shards, stats: machine.stats, statsShard: rows.shard)
        try await PostgresEventWriter.insert(output.events, on: connection, logger: logger)
        return output.result
    }
}
