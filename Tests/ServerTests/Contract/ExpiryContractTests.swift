import LeaseFSM
import Server
import Testing

/// Expiry after `expires_at` + grace (never for a lease renewed in time) and
/// the retention of ended leases and finished jobs.
@Suite("Lease store contract: expiry and retention")
struct ExpiryContractTests {
    @Test("a lease expires only once expires_at plus the grace has passed, and never when renewed in time", arguments: Backend.allCases)
    func expiryAfterGrace(_ backend: Backend) async throws {
        try await backend.run(limits: .contract { $0.cleanupGraceSeconds = 30 }) { b in
            let lapsing = try await b.create("o1", duration: 60)
            let renewed = try await b.create("o2", duration: 60)
            b.advance(seconds: 50)
            let extended = try await b.renew(renewed.id)  // expires at +110
            b.advance(seconds: 20)                        // +70: past expires_at, inside the grace
            #expect(try await b.reap().isEmpty)
            #expect(try await b.detail(lapsing.id)?.lease.state == .active)
            b.advance(seconds: 25)                        // +95: past expires_at + grace
            #expect(try await b.reap() == [lapsing.id])
            let expired = try #require(try await b.detail(lapsing.id)?.lease)
            #expect(expired.state == .expired)
            let endedAt = try #require(expired.endedAt)
            #expect(endedAt >= lapsing.expiresAt.adding(seconds: 30))
            #expect(try await b.detail(renewed.id)?.lease == extended, "renewed in time: untouched")
            #expect(try await b.reap().isEmpty, "an expired lease is not expired twice")
            b.advance(seconds: 30)                        // +125: the renewal's expiry + grace is +140
            #expect(try await b.reap().isEmpty)
            b.advance(seconds: 20)                        // +145
            #expect(try await b.reap() == [renewed.id])
            let summary = try await b.summary()
            #expect(summary.stats.expired == 2)
            #expect(summary.activeLeases == 0)
            #expect(summary.activeByService.isEmpty && summary.activeByType.isEmpty)
        }
    }

    @Test("an expiry schedules the object's cleanup like a release", arguments: Backend.allCases)
    func expirySchedulesCleanup(_ backend: Backend) async throws {
        try await backend.run(limits: .contract { $0.cleanupGraceSeconds = 0 }) { b in
            let lease = try await b.create("o1", duration: 10, cleanup: cleanupSpec())
            b.advance(seconds: 11)
            #expect(try await b.reap() == [lease.id])
            let expired = try #require(try await b.detail(lease.id))
            let jobID = try #require(expired.lease.cleanupJobID)
            #expect(expired.cleanupState == .pending)
            #expect(expired.cleanupJob?.id == jobID)
            #expect(try await b.dueJobs().map(\.id) == [jobID])
        }
    }

    @Test("ended leases and finished jobs stay visible for the retention, then are not found", arguments: Backend.allCases)
    func endedLeaseRetention(_ backend: Backend) async throws {
        try await backend.run(limits: .contract { $0.endedRetentionSeconds = 100 }) { b in
            let lease = try await b.create("o1", cleanup: cleanupSpec())
            let released = try await b.release(lease.id)
            let job = try #require(try await b.dueJobs().first)
            #expect(try await b.succeed(job, attempt: 1) == [job.id])
            let finished = try #require(try await b.job(job.id))
            #expect(finished.state == .succeeded)

            b.advance(seconds: 60)
            try await b.forgetRetired()
            #expect(try await b.detail(lease.id) == LeaseDetail(lease: released, cleanupState: .succeeded, cleanupJob: finished))
            #expect(await leaseError { try await b.renew(lease.id) } == alreadyReleasedError(lease.id))
            #expect(try await b.listAll() == [lease.id])

            b.advance(seconds: 50)  // 110 s after the end: past the retention
            try await b.forgetRetired()
            #expect(try await b.detail(lease.id) == nil)
            #expect(try await b.store.jobs([job.id], .linearizable).isEmpty)
            #expect(try await b.listAll().isEmpty)
            #expect(await leaseError { try await b.renew(lease.id) } == notFoundError(lease.id))
            #expect(await leaseError { try await b.release(lease.id) } == notFoundError(lease.id))
        }
    }
}
