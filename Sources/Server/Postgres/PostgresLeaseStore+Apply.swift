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
        var rows = PostgresLockedRows(connection: connection, logger: logger)
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
        // Drawn after the locks: per object, indexes (fencing tokens,
        // incarnations) grow in the order the object's commands commit.
        let (index, now) = try await Self.drawIndex(now: nowSQL, on: connection, logger: logger)
        let stamped = StampedCommand(command, stamp: now, origin: origin)
        let jobSequence = index * Self.jobsPerIndex
        var machine = try LeaseStateMachine(slice: rows.slice, limits: limits, jobSequence: jobSequence)
        var before = machine
        var output = machine.apply(stamped, index: index)
        var shards = rows.quotaShards
        if case .success(.created(let lease)) = output.result {
            switch try await quota.reserve(service: lease.serviceID, on: connection, logger: logger) {
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
        try await rows.write(changes, quotaShards: shards)
        try await Self.add(machine.stats, shard: PostgresQuota.shard(for: connection), on: connection, logger: logger)
        try await PostgresEventWriter.insert(output.events, on: connection, logger: logger)
        return output.result
    }

    /// The next command index and the database's time (Unix ms).
    static func drawIndex(now: String, on connection: PostgresConnection, logger: Logger) async throws -> (UInt64, WallTime) {
        let rows = try await connection.query("SELECT nextval('gc_command_index'), \(unescaped: now)", logger: logger)
        for try await (index, now) in rows.decode((Int64, Int64).self) {
            return (UInt64(index), WallTime(milliseconds: now))
        }
        throw StoreError(.unavailable, "PostgreSQL: nextval('gc_command_index') returned no row")
    }

    /// Adds a command's contribution to the running totals (one of the
    /// sharded `gc_stats` rows, so writers rarely wait on each other).
    static func add(_ stats: LeaseStats, shard: Int16, on connection: PostgresConnection, logger: Logger) async throws {
        guard stats != LeaseStats() else { return }
        try await connection.query("""
            UPDATE gc_stats SET created = created + \(Int64(stats.created)), renewed = renewed + \(Int64(stats.renewed)),
                released = released + \(Int64(stats.released)), expired = expired + \(Int64(stats.expired)),
                cleanup_attempts = cleanup_attempts + \(Int64(stats.cleanupAttempts)),
                cleanup_succeeded = cleanup_succeeded + \(Int64(stats.cleanupSucceeded)),
                cleanup_failures = cleanup_failures + \(Int64(stats.cleanupFailures)),
                dead_lettered = dead_lettered + \(Int64(stats.deadLettered))
            WHERE shard = \(shard)
            """, logger: logger)
    }
}
