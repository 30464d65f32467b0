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
    private(set) var slice = LeaseStateSlice()
    /// The quota shard each loaded lease is counted in.
    private(set) var quotaShards: [LeaseID: Int16] = [:]
    /// Placeholders inserted to lock keys that had no row.
    private var placeholderObjects: Set<ObjectKey> = []
    private var placeholderSession: String?

    init(connection: PostgresConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    mutating func lockSession(_ clientID: String) async throws {
        let rows = try await connection.query("""
            INSERT INTO gc_sessions (client_id, last_active, record) VALUES (\(clientID), 0, ''::bytea)
            ON CONFLICT (client_id) DO UPDATE SET last_active = gc_sessions.last_active
            RETURNING record
            """, logger: logger)
        for try await record in rows.decode(ByteBuffer.self) {
            if record.readableBytes == 0 {
                placeholderSession = clientID
            } else {
                slice.sessions.append(Array(record.readableBytesView))
            }
        }
    }

    /// Locks `object` (its row, or a placeholder) and its open cleanup job.
    mutating func lockObject(_ object: ObjectKey) async throws {
        let rows = try await connection.query("""
            INSERT INTO gc_objects (object_type, object_id, record) VALUES (\(object.type.rawValue), \(object.id), ''::bytea)
            ON CONFLICT (object_type, object_id) DO UPDATE SET record = gc_objects.record
            RETURNING record
            """, logger: logger)
        for try await record in rows.decode(ByteBuffer.self) {
            if record.readableBytes == 0 {
                placeholderObjects.insert(object)
            } else {
                slice.objects.append(Array(record.readableBytesView))
            }
        }
        let jobs = try await connection.query("""
            SELECT record FROM gc_jobs
            WHERE object_type = \(object.type.rawValue) AND object_id = \(object.id) AND state IN (0, 2)
            ORDER BY id FOR UPDATE
            """, logger: logger)
        for try await record in jobs.decode(ByteBuffer.self) {
            slice.jobs.append(Array(record.readableBytesView))
        }
    }

    /// Locks the leases among `ids` that exist and, with `withObjects`, the
    /// objects of the active ones (a release or expiry changes them).
    mutating func lockLeases(_ ids: [LeaseID], withObjects: Bool) async throws {
        let wanted = Array(Set(ids.map(\.rawValue))).sorted()
        guard !wanted.isEmpty else { return }
        let rows = try await connection.query("""
            SELECT record, quota_shard, state, object_type, object_id FROM gc_leases
            WHERE id = ANY(\(wanted)) ORDER BY id FOR UPDATE
            """, logger: logger)
        var objects: Set<ObjectKey> = []
        for try await (record, shard, state, type, objectID) in rows.decode((ByteBuffer, Int16, Int16, Int32, String).self) {
            let bytes = Array(record.readableBytesView)
            slice.leases.append(bytes)
            let lease = try LeaseStateMachine.lease(record: bytes)
            quotaShards[lease.id] = shard
            if state == 0, let type = ObjectType(rawValue: type) { objects.insert(ObjectKey(type: type, id: objectID)) }
        }
        guard withObjects, !objects.isEmpty else { return }
        let keys = objects.sorted { ($0.type, $0.id) < ($1.type, $1.id) }
        let objectRows = try await connection.query("""
            SELECT o.record FROM gc_objects o
            JOIN unnest(\(keys.map { Int32($0.type.rawValue) })::integer[], \(keys.map(\.id))::text[]) AS k(object_type, object_id)
              ON o.object_type = k.object_type AND o.object_id = k.object_id
            ORDER BY o.object_type, o.object_id FOR UPDATE OF o
            """, logger: logger)
        for try await record in objectRows.decode(ByteBuffer.self) where record.readableBytes > 0 {
            slice.objects.append(Array(record.readableBytesView))
        }
    }

    mutating func lockJobs(_ ids: [JobID]) async throws {
        let wanted = Array(Set(ids)).sorted().compactMap { Int64(exactly: $0) }
        guard !wanted.isEmpty else { return }
        let rows = try await connection.query("""
            SELECT record FROM gc_jobs WHERE id = ANY(\(wanted)) ORDER BY id FOR UPDATE
            """, logger: logger)
        for try await record in rows.decode(ByteBuffer.self) {
            slice.jobs.append(Array(record.readableBytesView))
        }
    }

    /// Writes back what the command changed, and removes the placeholders
    /// of keys that still have no row.
    func write(_ changes: LeaseSliceChanges, quotaShards: [LeaseID: Int16]) async throws {
        try await writeLeases(changes, quotaShards: quotaShards)
        try await writeObjects(changes)
        try await writeJobs(changes)
        try await writeSessions(changes)
    }

    private func writeLeases(_ changes: LeaseSliceChanges, quotaShards: [LeaseID: Int16]) async throws {
        if !changes.leases.isEmpty {
            let leases = changes.leases.sorted { $0.lease.id < $1.lease.id }
            let ids = leases.map(\.lease.id.rawValue)
            let types = leases.map { Int32($0.lease.object.type.rawValue) }
            let objectIDs = leases.map(\.lease.object.id)
            let services = leases.map(\.lease.serviceID)
            let states = leases.map { Int16($0.lease.state.rawValue) }
            let expires = leases.map(\.lease.expiresAt.milliseconds)
            let ended = leases.map { $0.lease.endedAt?.milliseconds ?? Int64.min }
            let shards = leases.map { quotaShards[$0.lease.id] ?? 0 }
            let records = leases.map { ByteBuffer(bytes: $0.record) }
            try await connection.query("""
                INSERT INTO gc_leases (id, object_type, object_id, service_id, state, expires_at, ended_at, quota_shard, record)
                SELECT id, object_type, object_id, service_id, state, expires_at, NULLIF(ended_at, \(Int64.min)), quota_shard, record
                FROM unnest(\(ids)::text[], \(types)::integer[], \(objectIDs)::text[], \(services)::text[], \(states)::smallint[],
                            \(expires)::bigint[], \(ended)::bigint[], \(shards)::smallint[], \(records)::bytea[])
                     AS u(id, object_type, object_id, service_id, state, expires_at, ended_at, quota_shard, record)
                ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, expires_at = EXCLUDED.expires_at,
                    ended_at = EXCLUDED.ended_at, record = EXCLUDED.record
                """, logger: logger)
        }
        if !changes.forgottenLeases.isEmpty {
            try await connection.query("""
                DELETE FROM gc_leases WHERE id = ANY(\(changes.forgottenLeases.map(\.rawValue)))
                """, logger: logger)
        }
    }

    private func writeObjects(_ changes: LeaseSliceChanges) async throws {
        if !changes.objects.isEmpty {
            let objects = changes.objects.sorted { ($0.object.type, $0.object.id) < ($1.object.type, $1.object.id) }
            try await connection.query("""
                INSERT INTO gc_objects (object_type, object_id, record)
                SELECT * FROM unnest(\(objects.map { Int32($0.object.type.rawValue) })::integer[], \(objects.map(\.object.id))::text[],
                                     \(objects.map { ByteBuffer(bytes: $0.record) })::bytea[])
                ON CONFLICT (object_type, object_id) DO UPDATE SET record = EXCLUDED.record
                """, logger: logger)
        }
        let written = Set(changes.objects.map(\.object))
        let removed = changes.removedObjects + placeholderObjects.filter { !written.contains($0) }
        if !removed.isEmpty {
            try await connection.query("""
                DELETE FROM gc_objects o USING unnest(\(removed.map { Int32($0.type.rawValue) })::integer[], \(removed.map(\.id))::text[])
                    AS k(object_type, object_id)
                WHERE o.object_type = k.object_type AND o.object_id = k.object_id
                """, logger: logger)
        }
    }

    private func writeJobs(_ changes: LeaseSliceChanges) async throws {
        if !changes.jobs.isEmpty {
            let jobs = changes.jobs.sorted { $0.job.id < $1.job.id }
            let ids = jobs.map { Int64(bitPattern: $0.job.id) }
            let types = jobs.map { Int32($0.job.object.type.rawValue) }
            let objectIDs = jobs.map(\.job.object.id)
            let states = jobs.map { Int16($0.job.state.rawValue) }
            let next = jobs.map(\.job.nextAttemptAt.milliseconds)
            let endpoints = jobs.map(\.job.spec.endpoint)
            let finished = jobs.map { $0.job.finishedAt?.milliseconds ?? Int64.min }
            let records = jobs.map { ByteBuffer(bytes: $0.record) }
            // A job that changed (an outcome recorded, superseded, retried)
            // is no longer held by whoever claimed it.
            try await connection.query("""
                INSERT INTO gc_jobs (id, object_type, object_id, state, next_attempt_at, endpoint, finished_at, record)
                SELECT id, object_type, object_id, state, next_attempt_at, endpoint, NULLIF(finished_at, \(Int64.min)), record
                FROM unnest(\(ids)::bigint[], \(types)::integer[], \(objectIDs)::text[], \(states)::smallint[], \(next)::bigint[],
                            \(endpoints)::text[], \(finished)::bigint[], \(records)::bytea[])
                     AS u(id, object_type, object_id, state, next_attempt_at, endpoint, finished_at, record)
                ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, next_attempt_at = EXCLUDED.next_attempt_at,
                    finished_at = EXCLUDED.finished_at, record = EXCLUDED.record,
                    claim_token = NULL, claim_owner = NULL, claim_expires_at = NULL
                """, logger: logger)
        }
        if !changes.forgottenJobs.isEmpty {
            try await connection.query("""
                DELETE FROM gc_jobs WHERE id = ANY(\(changes.forgottenJobs.map { Int64(bitPattern: $0) }))
                """, logger: logger)
        }
    }

    private func writeSessions(_ changes: LeaseSliceChanges) async throws {
        for session in changes.sessions {
            try await connection.query("""
                UPDATE gc_sessions SET last_active = \(session.lastActive.milliseconds), record = \(ByteBuffer(bytes: session.record))
                WHERE client_id = \(session.clientID)
                """, logger: logger)
        }
        let written = Set(changes.sessions.map(\.clientID))
        var removed = changes.forgottenSessions
        if let placeholderSession, !written.contains(placeholderSession) { removed.append(placeholderSession) }
        if !removed.isEmpty {
            try await connection.query("DELETE FROM gc_sessions WHERE client_id = ANY(\(removed))", logger: logger)
        }
    }
}
