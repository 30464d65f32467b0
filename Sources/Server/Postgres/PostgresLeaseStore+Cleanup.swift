import Foundation
import LeaseFSM
import Logging
import NIOCore
import PostgresNIO

/// Reaping and cleanup claims, safe from any number of sidecars at once.
///
/// - Expiry: due leases are picked `FOR UPDATE SKIP LOCKED` and expired in
///   the same transaction, so two sidecars never wait on, or expire, the
///   same lease; the state machine re-checks each at the database's time.
/// - Cleanup jobs are delivered outside any transaction, so they are
///   claimed: a batch of due jobs (`SKIP LOCKED`) gets a fresh claim token,
///   the claiming sidecar's name and a claim expiry. An outcome is recorded
///   only while the job still carries that token, which fences a sidecar
///   that paused past its claim: once another sidecar took the job over (or
///   the job changed), the late outcome is refused. A crashed sidecar's
///   claims are taken over when they expire.
extension PostgresLeaseStore {
    /// Due jobs claimed by one sidecar, with the token their outcomes need.
    public struct ClaimedJobs: Sendable {
        public var token: UUID
        public var jobs: [CleanupJob]
        /// How many of them another sidecar had claimed and let expire.
        public var takenOver: Int
    }

    /// Expires up to `limit` leases whose `expires_at` plus the grace has
    /// passed on the database's clock; returns the ids expired.
    public func expireDue(limit: Int) async throws -> [LeaseID] {
        let graceMilliseconds = Int64(min(limits.cleanupGraceSeconds, UInt64(Int64.max / 1000))) * 1000
        let limit = Int64(max(1, min(limit, 500)))
        let logger = self.logger
        let now = nowSQL
        let outcome = try await transaction("expire due leases") { connection -> Result<CommandResult, LeaseError> in
            var ids: [LeaseID] = []
            let rows = try await connection.query("""
                SELECT id FROM gc_leases
                WHERE state = 0 AND expires_at <= \(unescaped: now) - \(graceMilliseconds)
                ORDER BY expires_at, id LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """, logger: logger)
            for try await id in rows.decode(String.self) { ids.append(LeaseID(id)) }
            guard !ids.isEmpty else { return .success(.expired([])) }
            return try await self.apply(.expire(.init(leaseIDs: ids)), origin: nil, on: connection)
        }
        guard case .expired(let expired) = try outcome.get() else { return [] }
        return expired
    }

    /// Claims up to `limit` pending jobs due on the database's clock that
    /// no live claim holds, skipping jobs of `excludedEndpoints` (those that
    /// can take nothing now) and `excludedJobs` (already in hand here).
    ///
    /// - Parameters:
    ///   - owner: this sidecar's name, shown by `gcctl cluster status`.
    ///   - claimFor: how long the claim holds; an outcome recorded later is
    ///     refused once another sidecar has taken the job over.
    public func claimDueJobs(limit: Int, owner: String, claimFor: Duration, excludedEndpoints: [String] = [],
                             excludedJobs: [JobID] = []) async throws -> ClaimedJobs {
        let token = UUID()
        guard limit > 0 else { return ClaimedJobs(token: token, jobs: [], takenOver: 0) }
        let claimMilliseconds = claimFor.components.seconds * 1000 + claimFor.components.attoseconds / 1_000_000_000_000_000
        let excluded = excludedJobs.map { Int64(bitPattern: $0) }
        let logger = self.logger
        let now = nowSQL
        return try await transaction("claim due cleanup jobs") { connection in
            let rows = try await connection.query("""
                WITH clock AS (SELECT \(unescaped: now) AS now),
                due AS (
                    SELECT j.id, j.claim_owner FROM gc_jobs j, clock
                    WHERE j.state = 0 AND j.next_attempt_at <= clock.now
                      AND (j.claim_expires_at IS NULL OR j.claim_expires_at <= clock.now)
                      AND NOT (j.endpoint = ANY(\(excludedEndpoints)::text[]))
                      AND NOT (j.id = ANY(\(excluded)::bigint[]))
                    ORDER BY j.next_attempt_at, j.id LIMIT \(Int64(limit))
                    FOR UPDATE OF j SKIP LOCKED)
                UPDATE gc_jobs j SET claim_token = \(token), claim_owner = \(owner),
                    claim_expires_at = (SELECT now FROM clock) + \(claimMilliseconds)
                FROM due WHERE j.id = due.id
                RETURNING j.record, due.claim_owner IS NOT NULL
                """, logger: logger)
            var jobs: [CleanupJob] = []
            var takenOver = 0
            for try await (record, wasClaimed) in rows.decode((ByteBuffer, Bool).self) {
                jobs.append(try LeaseStateMachine.job(record: Array(record.readableBytesView)))
                if wasClaimed { takenOver += 1 }
            }
            jobs.sort { ($0.nextAttemptAt, $0.id) < ($1.nextAttemptAt, $1.id) }
            return ClaimedJobs(token: token, jobs: jobs, takenOver: takenOver)
        }
    }

    /// Records outcomes of jobs claimed with their tokens. Outcomes whose job
    /// no longer carries the token (taken over after the claim expired, or
    /// changed meanwhile) are refused and changed nothing.
    ///
    /// - Returns: the jobs whose outcome was recorded, and how many were refused as stale.
    public func recordOutcomes(_ outcomes: [(outcome: LeaseCommand.CleanupOutcome, token: UUID)]) async throws
        -> (recorded: [JobID], refused: Int) {
        guard !outcomes.isEmpty else { return ([], 0) }
        let logger = self.logger
        let now = nowSQL
        let ids = outcomes.map { Int64(bitPattern: $0.outcome.jobID) }
        let tokens = outcomes.map(\.token)
        return try await transaction("record cleanup outcomes") { connection in
            var held: Set<JobID> = []
            let rows = try await connection.query("""
                SELECT j.id FROM gc_jobs j
                JOIN unnest(\(ids)::bigint[], \(tokens)::uuid[]) AS c(id, token) ON j.id = c.id AND j.claim_token = c.token
                ORDER BY j.id FOR UPDATE OF j
                """, logger: logger)
            for try await id in rows.decode(Int64.self) { held.insert(JobID(bitPattern: id)) }
            let valid = outcomes.map(\.outcome).filter { held.contains($0.jobID) }
            let refused = outcomes.count - valid.count
            guard !valid.isEmpty else { return ([], refused) }
            let result = try await self.apply(.cleanupOutcomes(valid), origin: nil, on: connection)
            guard case .success(.cleanupsRecorded(let recorded)) = result else { return ([], refused) }
            return (recorded, refused)
        }
    }

    /// Gives claims back without an outcome (the delivery did not happen:
    /// shutdown, or no room at the endpoint), so any sidecar may take the
    /// jobs at once.
    public func releaseClaims(_ ids: [JobID], token: UUID) async throws {
        guard !ids.isEmpty else { return }
        let logger = self.logger
        let now = nowSQL
        try await transaction("release cleanup claims") { connection in
            try await connection.execute("""
                UPDATE gc_jobs SET claim_token = NULL, claim_owner = NULL, claim_expires_at = NULL
                WHERE id = ANY(\(ids.map { Int64(bitPattern: $0) })) AND claim_token = \(token)
                """, logger: logger)
        }
    }

    /// Forgets ended leases and finished jobs older than the retention, and
    /// client sessions idle for longer than the session limit, at most
    /// `limit` rows of each per call; returns how many rows were deleted.
    ///
    /// Any sidecar may run it at any time: rows are deleted only when no
    /// command holds them (`SKIP LOCKED`).
    public func forgetRetired(limit: Int) async throws -> Int {
        let retention = Int64(min(limits.endedRetentionSeconds, UInt64(Int64.max / 2000))) * 1000
        let idle = LeaseStateMachine.sessionIdleLimitMilliseconds
        let limit = Int64(max(1, limit))
        let logger = self.logger
        let now = nowSQL
        return try await transaction("forget retired rows") { connection in
            var deleted = 0
            let statements: [PostgresQuery] = [
                """
                DELETE FROM gc_leases WHERE id IN (
                    SELECT id FROM gc_leases WHERE state <> 0
                      AND ended_at < \(unescaped: now) - \(retention)
                    LIMIT \(limit) FOR UPDATE SKIP LOCKED) RETURNING 1
                """,
                """
                DELETE FROM gc_jobs WHERE id IN (
                    SELECT id FROM gc_jobs WHERE state IN (1, 3)
                      AND finished_at < \(unescaped: now) - \(retention)
                    LIMIT \(limit) FOR UPDATE SKIP LOCKED) RETURNING 1
                """,
                """
                DELETE FROM gc_sessions WHERE client_id IN (
                    SELECT client_id FROM gc_sessions
                    WHERE last_active < \(unescaped: now) - \(idle)
                    LIMIT \(limit) FOR UPDATE SKIP LOCKED) RETURNING 1
                """,
            ]
            for statement in statements {
                for try await _ in try await connection.query(statement, logger: logger) { deleted += 1 }
            }
            return deleted
        }
    }
}
