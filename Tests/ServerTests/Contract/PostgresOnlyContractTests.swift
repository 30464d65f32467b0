import Foundation
import LeaseFSM
import Server
import Testing

/// What only PostgreSQL mode has to promise: cleanup claims fence stale
/// deliveries and are taken over when they expire, and concurrent writers
/// (any number of sidecars) keep the object's incarnation and the quotas exact.
@Suite("Lease store contract: PostgreSQL claims and concurrency")
struct PostgresOnlyContractTests {
    /// One released lease with a cleanup: one due job.
    static func oneDueJob(_ b: PostgresBackend) async throws -> LeaseID {
        let lease = try await b.create("o1", cleanup: cleanupSpec())
        try await b.release(lease.id)
        return lease.id
    }

    @Test("an outcome under a stale claim token is refused and changes nothing")
    func staleTokenRefused() async throws {
        try await PostgresBackend.run(limits: .contract) { b in
            _ = try await Self.oneDueJob(b)
            let claimed = try await b.postgres.claimDueJobs(limit: 10, owner: "a", claimFor: .seconds(30))
            let job = try #require(claimed.jobs.first)
            #expect(claimed.takenOver == 0)
            #expect(try await b.postgres.claimDueJobs(limit: 10, owner: "b", claimFor: .seconds(30)).jobs.isEmpty,
                    "a held claim keeps the job from others")
            let outcome = LeaseCommand.CleanupOutcome(jobID: job.id, attempt: 1, result: .succeeded)
            let stale = try await b.postgres.recordOutcomes([(outcome, UUID())])
            #expect(stale.recorded.isEmpty && stale.refused == 1)
            #expect(try await b.job(job.id)?.state == .pending)
            let recorded = try await b.postgres.recordOutcomes([(outcome, claimed.token)])
            #expect(recorded.recorded == [job.id] && recorded.refused == 0)
            #expect(try await b.job(job.id)?.state == .succeeded)
            // The outcome cleared the claim: the same token no longer holds the job.
            let again = try await b.postgres.recordOutcomes([(outcome, claimed.token)])
            #expect(again.recorded.isEmpty && again.refused == 1)
            #expect(try await b.summary().stats.cleanupAttempts == 1)
        }
    }

    @Test("an expired claim is taken over, counted, and its first holder's outcome is refused")
    func expiredClaimTakenOver() async throws {
        try await PostgresBackend.run(limits: .contract) { b in
            _ = try await Self.oneDueJob(b)
            let first = try await b.postgres.claimDueJobs(limit: 10, owner: "paused", claimFor: .seconds(30))
            let job = try #require(first.jobs.first)
            b.advance(seconds: 20)  // the database's own clock moves too: leave it room
            #expect(try await b.postgres.claimDueJobs(limit: 10, owner: "other", claimFor: .seconds(30)).jobs.isEmpty)
            b.advance(seconds: 11)
            let second = try await b.postgres.claimDueJobs(limit: 10, owner: "other", claimFor: .seconds(30))
            #expect(second.jobs.map(\.id) == [job.id])
            #expect(second.takenOver == 1)
            let outcome = LeaseCommand.CleanupOutcome(jobID: job.id, attempt: 1, result: .failed(error: "late", retryAfterMilliseconds: 0, permanent: false))
            let late = try await b.postgres.recordOutcomes([(outcome, first.token)])
            #expect(late.recorded.isEmpty && late.refused == 1, "the paused sidecar's outcome is fenced off")
            #expect(try await b.job(job.id)?.attempts == 0)
            let current = try await b.postgres.recordOutcomes([(LeaseCommand.CleanupOutcome(jobID: job.id, attempt: 1, result: .succeeded), second.token)])
            #expect(current.recorded == [job.id])
        }
    }

    @Test("released claims may be taken at once, by anyone, and are not counted as taken over")
    func releasedClaims() async throws {
        try await PostgresBackend.run(limits: .contract) { b in
            _ = try await Self.oneDueJob(b)
            let first = try await b.postgres.claimDueJobs(limit: 10, owner: "a", claimFor: .seconds(30))
            let job = try #require(first.jobs.first)
            try await b.postgres.releaseClaims([job.id], token: UUID())
            #expect(try await b.postgres.claimDueJobs(limit: 10, owner: "b", claimFor: .seconds(30)).jobs.isEmpty,
                    "another token releases nothing")
            try await b.postgres.releaseClaims([job.id], token: first.token)
            let second = try await b.postgres.claimDueJobs(limit: 10, owner: "b", claimFor: .seconds(30))
            #expect(second.jobs.map(\.id) == [job.id])
            #expect(second.takenOver == 0)
            // Excluded endpoints and jobs are passed over.
            try await b.postgres.releaseClaims([job.id], token: second.token)
            #expect(try await b.postgres.claimDueJobs(limit: 10, owner: "c", claimFor: .seconds(30), excludedEndpoints: [job.spec.endpoint]).jobs.isEmpty)
            #expect(try await b.postgres.claimDueJobs(limit: 10, owner: "c", claimFor: .seconds(30), excludedJobs: [job.id]).jobs.isEmpty)
        }
    }

    @Test("16 concurrent creates on one object all land, in one incarnation")
    func concurrentCreatesOneObject() async throws {
        try await PostgresBackend.run(limits: .contract, connections: 16) { b in
            let leases = try await withThrowingTaskGroup(of: Lease.self) { group in
                for i in 0..<16 {
                    group.addTask { try await b.create("shared", service: "svc-\(i)", cleanup: cleanupSpec()) }
                }
                return try await group.reduce(into: [Lease]()) { $0.append($1) }
            }
            #expect(leases.count == 16)
            #expect(Set(leases.map(\.id)).count == 16)
            #expect(Set(leases.map(\.incarnation)).count == 1, "\(Set(leases.map(\.incarnation)))")
            let incarnation = try #require(leases.map(\.incarnation).first)
            #expect(incarnation == leases.map(\.createdIndex).min(), "the first create to commit started the incarnation")
            let summary = try await b.summary()
            #expect(summary.activeLeases == 16)
            #expect(summary.stats.created == 16)
            // All 16 ended concurrently: exactly one cleanup, scheduled by the last.
            let ended = try await withThrowingTaskGroup(of: Lease.self) { group in
                for lease in leases {
                    group.addTask { try await b.release(lease.id, service: lease.serviceID) }
                }
                return try await group.reduce(into: [Lease]()) { $0.append($1) }
            }
            #expect(ended.compactMap(\.cleanupJobID).count == 1)
            let jobs = try await b.dueJobs()
            #expect(jobs.count == 1)
            #expect(jobs.first?.incarnation == incarnation)
            #expect(try await b.summary().activeLeases == 0)
        }
    }

    @Test("concurrent creates of one service never exceed its quota: exactly the quota succeed")
    func concurrentCreatesRespectQuota() async throws {
        try await PostgresBackend.run(limits: .contract { $0.maxLeasesPerService = 5 }, connections: 16) { b in
            let results = await withTaskGroup(of: Result<Lease, any Error>.self) { group in
                for i in 0..<16 {
                    group.addTask {
                        do { return .success(try await b.create("o\(i)", service: "svc")) } catch { return .failure(error) }
                    }
                }
                return await group.reduce(into: [Result<Lease, any Error>]()) { $0.append($1) }
            }
            let created = results.compactMap { try? $0.get() }
            let refusals = results.compactMap { result -> LeaseError? in
                if case .failure(let error) = result { return error as? LeaseError }
                return nil
            }
            #expect(created.count == 5)
            #expect(refusals.count == 11, "every other create is refused, none fails otherwise: \(results)")
            #expect(refusals.allSatisfy { $0 == .serviceLeaseLimit(serviceID: "svc", held: 5, limit: 5) }, "\(refusals)")
            let summary = try await b.summary()
            #expect(summary.activeLeases == 5)
            #expect(summary.activeByService == ["svc": 5])
            #expect(try await b.listAll(.init(states: [.active])).count == 5)
        }
    }

    @Test("concurrent creates across services never exceed GC_MAX_LEASES")
    func concurrentCreatesRespectGlobalQuota() async throws {
        try await PostgresBackend.run(limits: .contract { $0.maxLeases = 7 }, connections: 16) { b in
            let outcomes = await withTaskGroup(of: Bool.self) { group in
                for i in 0..<16 {
                    group.addTask { (try? await b.create("o\(i)", service: "svc-\(i % 4)")) != nil }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 }.count == 7)
            let summary = try await b.summary()
            #expect(summary.activeLeases == 7)
            #expect(try await b.listAll(.init(states: [.active])).count == 7)
        }
    }

    @Test("concurrent reapers expire each due lease exactly once")
    func concurrentReapers() async throws {
        try await PostgresBackend.run(limits: .contract { $0.cleanupGraceSeconds = 0 }, connections: 8) { b in
            var due: Set<LeaseID> = []
            for i in 0..<40 { due.insert(try await b.create("o\(i)", duration: 5).id) }
            let kept = try await b.create("kept", duration: 600)
            b.advance(seconds: 6)
            let batches = try await withThrowingTaskGroup(of: [LeaseID].self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        var mine: [LeaseID] = []
                        while true {
                            let batch = try await b.postgres.expireDue(limit: 5)
                            if batch.isEmpty { return mine }
                            mine += batch
                        }
                    }
                }
                return try await group.reduce(into: [[LeaseID]]()) { $0.append($1) }
            }
            let expired = batches.flatMap { $0 }
            #expect(expired.count == 40, "no lease expired twice")
            #expect(Set(expired) == due)
            let summary = try await b.summary()
            #expect(summary.stats.expired == 40)
            #expect(summary.activeLeases == 1)
            #expect(try await b.detail(kept.id)?.lease.state == .active)
        }
    }

    @Test("concurrent claimers claim each due job exactly once")
    func concurrentClaimers() async throws {
        try await PostgresBackend.run(limits: .contract, connections: 8) { b in
            var jobs: Set<JobID> = []
            for i in 0..<24 {
                let lease = try await b.create("o\(i)", cleanup: cleanupSpec())
                jobs.insert(try #require(try await b.release(lease.id).cleanupJobID))
            }
            let claims = try await withThrowingTaskGroup(of: [JobID].self) { group in
                for n in 0..<4 {
                    group.addTask {
                        var mine: [JobID] = []
                        while true {
                            let claimed = try await b.postgres.claimDueJobs(limit: 3, owner: "sidecar-\(n)", claimFor: .seconds(60))
                            if claimed.jobs.isEmpty { return mine }
                            mine += claimed.jobs.map(\.id)
                        }
                    }
                }
                return try await group.reduce(into: [[JobID]]()) { $0.append($1) }
            }
            let claimed = claims.flatMap { $0 }
            #expect(claimed.count == 24, "no job claimed twice")
            #expect(Set(claimed) == jobs)
        }
    }
}
