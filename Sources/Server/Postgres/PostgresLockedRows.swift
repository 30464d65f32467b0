import LeaseFSM
import Logging
import NIOCore
import PostgresNIO

/// The rows one command reads and changes, locked `FOR UPDATE` for the rest
/// of its transaction, and the writing back of what it changed.
///
/// Lock order, the same for every command so that they cannot deadlock on
/// each other: client session, leases (by id), objects (by key), cleanup
/// jobs (by id), then quota and stats counters. A row that does not exist
/// yet (a new object or session) is locked by inserting an empty
/// placeholder: a concurrent command on the same key waits on it.
struct PostgresLockedRows {
    let connection: PostgresConnection
    let logger: Logger
    /// The database's time as SQL (``PostgresLeaseStore/nowSQL``).
    let nowSQL: String
    /// Milliseconds added to the database's clock (tests only).
    let clockOffset: Int64
    private(set) var slice = LeaseStateSlice()
    /// The quota shard each loaded lease is counted in.
    private(set) var quotaShards: [LeaseID: Int16] = [:]
    /// The command's index and time, drawn by the last locking statement
    /// (after every lock, so per object and per lease indexes grow in the
    /// order their commands commit).
    private(set) var index: UInt64 = 0
    /// Every index drawn, in increasing order (one per command of a batch).
    private(set) var indexes: [UInt64] = []
    private(set) var now = WallTime.zero
    /// The quota and stats shard of this transaction (drawn with the index:
    /// ``PostgresQuota/backendShardSQL``).
    private(set) var shard: Int16 = 0
    /// Objects that had a row when locked (written back with UPDATE); a new
    /// object is INSERTed, and a concurrent insert of the same key makes the
    /// transaction fail with a unique violation and run again.
    private var existingObjects: Set<ObjectKey> = []
    private var placeholderSessions: Set<String> = []

    init(connection: PostgresConnection, logger: Logger, nowSQL: String, clockOffset: Int64) {
        self.connection = connection
        self.logger = logger
        self.nowSQL = nowSQL
        self.clockOffset = clockOffset
    }

    mutating func lockSession(_ clientID: String) async throws {
        let rows = try await connection.query("""
            INSERT INTO gc_sessions (client_id, last_active, record) VALUES (\(clientID), 0, ''::bytea)
            ON CONFLICT (client_id) DO UPDATE SET last_active = gc_sessions.last_active
            RETURNING record
            """, logger: logger)
        for try await record in rows.decode(ByteBuffer.self) {
            if record.readableBytes == 0 {
                placeholderSessions.insert(clientID)
            } else {
                slice.sessions.append(Array(record.readableBytesView))
            }
        }
    }

    /// The last branch of every locking statement: the index, the time and the shard.
    private var drawBranch: String {
        "SELECT 9::smallint, NULL::bytea, \(PostgresQuota.backendShardSQL), 0::smallint, 0, NULL::text, nextval('gc_command_index'), \(nowSQL)"
    }

    /// Reads the rows of a locking statement: (kind, record, shard, state,
    /// object type, object id, index, now); kind 0 = object, 1 = job,
    /// 2 = lease, 9 = the drawn index.
    private mutating func collect(_ rows: PostgresRowSequence) async throws -> Set<ObjectKey> {
        var all: [PostgresRow] = []
        for try await row in rows { all.append(row) }
        return try collect(all)
    }

    private mutating func collect(_ rows: [PostgresRow]) throws -> Set<ObjectKey> {
        var activeObjects: Set<ObjectKey> = []
        for row in rows {
            let (kind, record, shard, state, type, objectID, index, now) =
                try row.decode((Int16, ByteBuffer?, Int16, Int16, Int32, String?, Int64, Int64).self)
            switch kind {
            case 0:
                guard let record else { continue }
                let bytes = Array(record.readableBytesView)
                slice.objects.append(bytes)
                if let type = ObjectType(rawValue: type), let objectID { existingObjects.insert(ObjectKey(type: type, id: objectID)) }
            case 1:
                if let record { slice.jobs.append(Array(record.readableBytesView)) }
            case 2:
                guard let record else { continue }
                let bytes = Array(record.readableBytesView)
                slice.leases.append(bytes)
                let lease = try LeaseStateMachine.lease(record: bytes)
                quotaShards[lease.id] = shard
                if state == 0, let type = ObjectType(rawValue: type), let objectID { activeObjects.insert(ObjectKey(type: type, id: objectID)) }
            default:
                self.index = UInt64(index)
                self.indexes.append(UInt64(index))
                self.now = WallTime(milliseconds: now)
                self.shard = shard
            }
        }
        indexes.sort()
        if let first = indexes.first { self.index = first }
        return activeObjects
    }

    /// Locks `object`'s row (if any) and its open cleanup job, and draws the index: one statement.
    mutating func lockObject(_ object: ObjectKey) async throws {
        let offset = clockOffset
        _ = try collect(try await connection.rows(LockObjectSQL.self, { b in
            b.append(Int32(object.type.rawValue))
            b.append(object.id)
            b.append(offset)
        }, logger: logger))
    }

    /// Locks the leases among `ids` that exist and, with `withObjects`, the
    /// objects of the active ones (a release or expiry changes them); draws the index.
    mutating func lockLeases(_ ids: [LeaseID], withObjects: Bool) async throws {
        let wanted = Array(Set(ids.map(\.rawValue))).sorted()
        guard withObjects else {
            _ = try await collect(try await connection.query("""
                WITH l AS (SELECT record, quota_shard, state, object_type, object_id FROM gc_leases
                           WHERE id = ANY(\(wanted)::text[]) ORDER BY id FOR UPDATE)
                SELECT 2::smallint, record, quota_shard, state, object_type, object_id, 0::bigint, 0::bigint FROM l
                UNION ALL \(unescaped: drawBranch)
                """, logger: logger))
            return
        }
        let objects = try await collect(try await connection.query("""
            SELECT 2::smallint, record, quota_shard, state, object_type, object_id, 0::bigint, 0::bigint FROM gc_leases
            WHERE id = ANY(\(wanted)::text[]) ORDER BY id FOR UPDATE
            """, logger: logger))
        let keys = objects.sorted { ($0.type, $0.id) < ($1.type, $1.id) }
        _ = try await collect(try await connection.query("""
            WITH o AS (SELECT g.record, g.object_type, g.object_id FROM gc_objects g
                       JOIN unnest(\(keys.map { Int32($0.type.rawValue) })::integer[], \(keys.map(\.id))::text[]) AS k(object_type, object_id)
                         ON g.object_type = k.object_type AND g.object_id = k.object_id
                       ORDER BY g.object_type, g.object_id FOR UPDATE OF g)
            SELECT 0::smallint, record, 0::smallint, 0::smallint, object_type, object_id, 0::bigint, 0::bigint FROM o
            UNION ALL \(unescaped: drawBranch)
            """, logger: logger))
    }

    mutating func lockJobs(_ ids: [JobID]) async throws {
        let wanted = Array(Set(ids)).sorted().compactMap { Int64(exactly: $0) }
        _ = try await collect(try await connection.query("""
            WITH j AS (SELECT record FROM gc_jobs WHERE id = ANY(\(wanted)::bigint[]) ORDER BY id FOR UPDATE)
            SELECT 1::smallint, record, 0::smallint, 0::smallint, 0, NULL::text, 0::bigint, 0::bigint FROM j
            UNION ALL \(unescaped: drawBranch)
            """, logger: logger))
    }

    /// Locks the rows of a batch of commands, in the global order, and
    /// draws `count` indexes: `sessions`, then `leases` (by id), then
    /// `objects` with, when `objectsOfLeases`, the objects of the active
    /// leases among `leases` (by key), then the open cleanup jobs of those
    /// objects. Three statements at most, whatever the batch's size.
    mutating func lock(sessions: [String], leases: [LeaseID], objectsOfLeases: Bool, objects: [ObjectKey],
                       count: Int) async throws {
        for clientID in Set(sessions).sorted() { try await lockSession(clientID) }
        var keys = Set(objects)
        if !leases.isEmpty {
            let active = try collect(try await connection.rows(LockLeasesSQL.self, { b in
                b.append(Array(Set(leases.map(\.rawValue))).sorted())
            }, logger: logger))
            if objectsOfLeases { keys.formUnion(active) }
        }
        let ordered = keys.sorted { ($0.type, $0.id) < ($1.type, $1.id) }
        let offset = clockOffset
        _ = try collect(try await connection.rows(LockObjectsSQL.self, { b in
            b.append(ordered.map { Int32($0.type.rawValue) })
            b.append(ordered.map(\.id))
            b.append(offset)
            b.append(Int32(count))
        }, logger: logger))
        guard indexes.count == count else {
            throw StoreError(.unavailable, "PostgreSQL: \(count) command indexes were asked for, \(indexes.count) drawn")
        }
    }

    /// Draws the index alone (a command that locks nothing).
    mutating func drawIndex() async throws {
        _ = try await collect(try await connection.query("\(unescaped: drawBranch)", logger: logger))
    }

    /// Writes back what the command changed, and adds its totals to the
    /// stats shard `statsShard`, in one statement (its parts are CTEs, each
    /// a no-op when its arrays are empty).
    func write(_ changes: LeaseSliceChanges, quotaShards: [LeaseID: Int16], stats: LeaseStats, statsShard: Int16) async throws {
        let leases = changes.leases.sorted { $0.lease.id < $1.lease.id }
        let objects = changes.objects.sorted { ($0.object.type, $0.object.id) < ($1.object.type, $1.object.id) }
        let inserted = objects.filter { !existingObjects.contains($0.object) }
        let updated = objects.filter { existingObjects.contains($0.object) }
        let removed = changes.removedObjects
        let jobs = changes.jobs.sorted { $0.job.id < $1.job.id }
        let hasStats = stats != LeaseStats()
        _ = try await connection.rows(WriteBackSQL.self, { b in
            try b.append(leases.map(\.lease.id.rawValue))
            try b.append(leases.map { Int32($0.lease.object.type.rawValue) })
            try b.append(leases.map(\.lease.object.id))
            try b.append(leases.map(\.lease.serviceID))
            try b.append(leases.map { Int16($0.lease.state.rawValue) })
            try b.append(leases.map(\.lease.expiresAt.milliseconds))
            try b.append(leases.map { $0.lease.endedAt?.milliseconds ?? Int64.min })
            try b.append(leases.map { quotaShards[$0.lease.id] ?? 0 })
            try b.append(leases.map { ByteBuffer(bytes: $0.record) })
            try b.append(changes.forgottenLeases.map(\.rawValue))
            try b.append(inserted.map { Int32($0.object.type.rawValue) })
            try b.append(inserted.map(\.object.id))
            try b.append(inserted.map { ByteBuffer(bytes: $0.record) })
            try b.append(updated.map { Int32($0.object.type.rawValue) })
            try b.append(updated.map(\.object.id))
            try b.append(updated.map { ByteBuffer(bytes: $0.record) })
            try b.append(removed.map { Int32($0.type.rawValue) })
            try b.append(removed.map(\.id))
            try b.append(jobs.map { Int64(bitPattern: $0.job.id) })
            try b.append(jobs.map { Int32($0.job.object.type.rawValue) })
            try b.append(jobs.map(\.job.object.id))
            try b.append(jobs.map { Int16($0.job.state.rawValue) })
            try b.append(jobs.map(\.job.nextAttemptAt.milliseconds))
            try b.append(jobs.map(\.job.spec.endpoint))
            try b.append(jobs.map { $0.job.finishedAt?.milliseconds ?? Int64.min })
            try b.append(jobs.map { ByteBuffer(bytes: $0.record) })
            try b.append(changes.forgottenJobs.map { Int64(bitPattern: $0) })
            for value in [stats.created, stats.renewed, stats.released, stats.expired, stats.cleanupAttempts,
                          stats.cleanupSucceeded, stats.cleanupFailures, stats.deadLettered] {
                b.append(Int64(clamping: value))
            }
            b.append(statsShard)
            b.append(hasStats)
            b.append(Int64.min)
        }, logger: logger)
        try await writeSessions(changes)
    }

    private func writeSessions(_ changes: LeaseSliceChanges) async throws {
        for session in changes.sessions {
            try await connection.execute("""
                UPDATE gc_sessions SET last_active = \(session.lastActive.milliseconds), record = \(ByteBuffer(bytes: session.record))
                WHERE client_id = \(session.clientID)
                """, logger: logger)
        }
        let written = Set(changes.sessions.map(\.clientID))
        var removed = changes.forgottenSessions
        removed += placeholderSessions.subtracting(written).subtracting(removed).sorted()
        if !removed.isEmpty {
            try await connection.execute("DELETE FROM gc_sessions WHERE client_id = ANY(\(removed))", logger: logger)
        }
    }
}
