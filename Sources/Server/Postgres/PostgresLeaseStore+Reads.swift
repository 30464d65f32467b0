import LeaseFSM
import Logging
import NIOCore
import PostgresNIO

/// The API's reads, answered by query. Every read sees every write
/// committed before it started, so `stale` and `linearizable` are the same
/// here. Per-lease answers (cleanup state, filters) come from LeaseFSM's own
/// queries run on a machine of the rows read, so they match Raft mode's.
extension PostgresLeaseStore: LeaseReads {
    public func summary(_ consistency: ReadConsistency) async throws -> StoreSummary {
        let logger = self.logger
        return try await reading("read the lease counts") { connection in
            var summary = StoreSummary(stats: LeaseStats(), activeLeases: 0, activeByService: [:], activeByType: [:],
                                       pendingCleanups: 0, deadLetteredCleanups: 0, appliedIndex: 0)
            let totals = try await connection.query("""
                SELECT sum(created)::bigint, sum(renewed)::bigint, sum(released)::bigint, sum(expired)::bigint,
                       sum(cleanup_attempts)::bigint, sum(cleanup_succeeded)::bigint, sum(cleanup_failures)::bigint,
                       sum(dead_lettered)::bigint,
                       (SELECT coalesce(sum(active), 0)::bigint FROM gc_quota WHERE scope = ''),
                       (SELECT count(*) FROM gc_jobs WHERE state = 0),
                       (SELECT count(*) FROM gc_jobs WHERE state = 2),
                       (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM gc_command_index)
                FROM gc_stats
                """, logger: logger)
            for try await row in totals {
                let (created, renewed, released, expired, attempts, succeeded, failures, dead, active, pending, dlq, index) =
                    try row.decode((Int64?, Int64?, Int64?, Int64?, Int64?, Int64?, Int64?, Int64?, Int64, Int64, Int64, Int64).self)
                summary.stats.created = UInt64(max(0, created ?? 0))
                summary.stats.renewed = UInt64(max(0, renewed ?? 0))
                summary.stats.released = UInt64(max(0, released ?? 0))
                summary.stats.expired = UInt64(max(0, expired ?? 0))
                summary.stats.cleanupAttempts = UInt64(max(0, attempts ?? 0))
                summary.stats.cleanupSucceeded = UInt64(max(0, succeeded ?? 0))
                summary.stats.cleanupFailures = UInt64(max(0, failures ?? 0))
                summary.stats.deadLettered = UInt64(max(0, dead ?? 0))
                summary.activeLeases = Int(active)
                summary.pendingCleanups = Int(pending)
                summary.deadLetteredCleanups = Int(dlq)
                summary.appliedIndex = UInt64(max(0, index))
            }
            let services = try await connection.query("""
                SELECT scope, sum(active)::bigint FROM gc_quota WHERE scope <> '' GROUP BY scope HAVING sum(active) > 0
                """, logger: logger)
            for try await (service, count) in services.decode((String, Int64).self) {
                summary.activeByService[service] = Int(count)
            }
            let types = try await connection.query("""
                SELECT object_type, count(*) FROM gc_leases WHERE state = 0 GROUP BY object_type
                """, logger: logger)
            for try await (type, count) in types.decode((Int32, Int64).self) {
                if let type = ObjectType(rawValue: type) { summary.activeByType[type] = Int(count) }
            }
            return summary
        }
    }

    public func leaseDetails(_ ids: [LeaseID], _ consistency: ReadConsistency) async throws -> [LeaseID: LeaseDetail] {
        guard !ids.isEmpty else { return [:] }
        let logger = self.logger
        return try await reading("read leases") { connection in
            let rows = try await connection.query("SELECT record FROM gc_leases WHERE id = ANY(\(ids.map(\.rawValue)))", logger: logger)
            var leases: [[UInt8]] = []
            for try await record in rows.decode(ByteBuffer.self) { leases.append(Array(record.readableBytesView)) }
            let details = try await Self.details(of: leases, on: connection, logger: logger)
            return Dictionary(details.map { ($0.lease.id, $0) }, uniquingKeysWith: { first, _ in first })
        }
    }

    public func listLeases(_ filter: LeaseStateMachine.LeaseFilter, after: LeaseID?, limit: Int,
                           _ consistency: ReadConsistency) async throws -> (leases: [LeaseDetail], next: LeaseID?) {
        let logger = self.logger
        let limit = max(0, limit)
        return try await reading("list leases") { connection in
            // Page through the leases the SQL filter admits, in id order,
            // until `limit + 1` pass LeaseFSM's filter (the cleanup filters
            // need each lease's job, which SQL does not see).
            var matched: [LeaseDetail] = []
            var cursor = after?.rawValue ?? ""
            let batch = Int64(max(64, min(limit + 1, 1000)))
            while matched.count <= limit {
                var records: [[UInt8]] = []
                var last = cursor
                let rows = try await connection.query(Self.listQuery(filter, after: cursor, batch: batch), logger: logger)
                for try await (id, record) in rows.decode((String, ByteBuffer).self) {
                    records.append(Array(record.readableBytesView))
                    last = id
                }
                let details = try await Self.details(of: records, on: connection, logger: logger)
                matched += details.filter { filter.matches($0) }
                if records.count < batch { break }
                cursor = last
            }
            guard matched.count > limit else { return (matched, nil) }
            let page = Array(matched.prefix(limit))
            return (page, page.last?.lease.id)
        }
    }

    public func deadLetters(endpoint: String?, limit: Int, _ consistency: ReadConsistency) async throws
        -> (jobs: [CleanupJob], total: Int) {
        let logger = self.logger
        return try await reading("list dead letters") { connection in
            let endpoints = endpoint.map { [$0] } ?? []
            let any = endpoint == nil
            var jobs: [CleanupJob] = []
            let rows = try await connection.query("""
                SELECT record FROM gc_jobs WHERE state = 2 AND (\(any) OR endpoint = ANY(\(endpoints)::text[]))
                ORDER BY id LIMIT \(Int64(max(0, limit)))
                """, logger: logger)
            for try await record in rows.decode(ByteBuffer.self) {
                jobs.append(try LeaseStateMachine.job(record: Array(record.readableBytesView)))
            }
            var total = 0
            for try await count in try await connection.query("""
                SELECT count(*) FROM gc_jobs WHERE state = 2 AND (\(any) OR endpoint = ANY(\(endpoints)::text[]))
                """, logger: logger).decode(Int64.self) {
                total = Int(count)
            }
            return (jobs, total)
        }
    }

    public func jobs(_ ids: [JobID], _ consistency: ReadConsistency) async throws -> [CleanupJob] {
        guard !ids.isEmpty else { return [] }
        let logger = self.logger
        return try await reading("read cleanup jobs") { connection in
            let found = try await Self.jobs(ids, on: connection, logger: logger)
            return ids.compactMap { found[$0] }
        }
    }

    // MARK: Helpers

    static func listQuery(_ filter: LeaseStateMachine.LeaseFilter, after: String, batch: Int64) -> PostgresQuery {
        let services = filter.serviceIDs.map { Array($0) } ?? []
        let states = filter.states.map { $0.map { Int16($0.rawValue) } } ?? []
        return """
            SELECT id, record FROM gc_leases
            WHERE id > \(after)
              AND (\(filter.serviceID == nil) OR service_id = \(filter.serviceID ?? ""))
              AND (\(filter.serviceIDs == nil) OR service_id = ANY(\(services)::text[]))
              AND (\(filter.objectType == nil) OR object_type = \(filter.objectType?.rawValue ?? 0))
              AND (\(filter.objectID == nil) OR object_id = \(filter.objectID ?? ""))
              AND (\(filter.states == nil) OR state = ANY(\(states)::smallint[]))
            ORDER BY id LIMIT \(batch)
            """
    }

    /// The leases of `records` with their cleanup jobs, as LeaseFSM shows them.
    static func details(of records: [[UInt8]], on connection: PostgresConnection, logger: Logger) async throws -> [LeaseDetail] {
        guard !records.isEmpty else { return [] }
        let leases = try records.map { try LeaseStateMachine.lease(record: $0) }
        let jobs = try await jobs(leases.compactMap(\.cleanupJobID), on: connection, logger: logger)
        var slice = LeaseStateSlice()
        slice.leases = records
        slice.jobs = jobs.values.map { LeaseStateMachine.record(of: $0) }
        let machine = try LeaseStateMachine(slice: slice, limits: .defaults, jobSequence: 0)
        return leases.map { lease in
            LeaseDetail(lease: lease, cleanupState: machine.cleanupState(of: lease), cleanupJob: machine.cleanupJob(of: lease))
        }
    }

    static func jobs(_ ids: [JobID], on connection: PostgresConnection, logger: Logger) async throws -> [JobID: CleanupJob] {
        guard !ids.isEmpty else { return [:] }
        var found: [JobID: CleanupJob] = [:]
        let rows = try await connection.query("""
            SELECT record FROM gc_jobs WHERE id = ANY(\(ids.map { Int64(bitPattern: $0) })::bigint[])
            """, logger: logger)
        for try await record in rows.decode(ByteBuffer.self) {
            let job = try LeaseStateMachine.job(record: Array(record.readableBytesView))
            found[job.id] = job
        }
        return found
    }
}

extension LeaseStateMachine.LeaseFilter {
    /// Whether `detail` passes this filter (LeaseFSM's own rule).
    func matches(_ detail: LeaseDetail) -> Bool {
        matches(detail.lease, cleanup: detail.cleanupState)
    }
}
