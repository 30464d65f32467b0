import LeaseFSM
import Server
import Testing

/// Create, renew and release; the holder check; ended and unknown leases;
/// reference counting and incarnations; fencing tokens. On every backend.
@Suite("Lease store contract: lease lifecycle")
struct LeaseLifecycleContractTests {
    @Test("a create grants the lease asked for; a renew extends it; a release ends it", arguments: Backend.allCases)
    func createRenewRelease(_ backend: Backend) async throws {
        try await backend.run { b in
            let lease = try await b.create("o1", type: .blobStorage, service: "svc", duration: 60, metadata: ["k": "v"])
            #expect(lease.id.rawValue.hasSuffix("-c0"))
            #expect(lease.state == .active)
            #expect(lease.object == ObjectKey(type: .blobStorage, id: "o1"))
            #expect(lease.serviceID == "svc")
            #expect(lease.metadata == ["k": "v"])
            #expect(lease.durationSeconds == 60)
            #expect(lease.expiresAt == lease.createdAt.adding(seconds: 60))
            #expect(lease.lastRenewedAt == lease.createdAt)
            #expect(lease.renewalCount == 0)
            #expect(lease.fencingToken == lease.createdIndex)
            #expect(lease.incarnation == lease.createdIndex, "the first lease of an object starts its incarnation")
            #expect(lease.endedAt == nil && lease.cleanupJobID == nil)
            let stored = try #require(try await b.detail(lease.id))
            #expect(stored == LeaseDetail(lease: lease, cleanupState: .none, cleanupJob: nil))

            b.advance(seconds: 10)
            let renewed = try await b.renew(lease.id)
            #expect(renewed.renewalCount == 1)
            #expect(renewed.lastRenewedAt >= lease.createdAt.adding(seconds: 10))
            #expect(renewed.expiresAt == renewed.lastRenewedAt.adding(seconds: 60), "0 extends by the lease's own duration")
            #expect(renewed.fencingToken > lease.fencingToken)
            let extended = try await b.renew(lease.id, extend: 120)
            #expect(extended.expiresAt == extended.lastRenewedAt.adding(seconds: 120))
            #expect(extended.renewalCount == 2)
            #expect(try await b.detail(lease.id)?.lease == extended)

            let released = try await b.release(lease.id)
            #expect(released.state == .released)
            #expect(released.endedAt != nil)
            #expect(released.cleanupJobID == nil, "no cleanup target: nothing to clean")
            #expect(try await b.detail(lease.id) == LeaseDetail(lease: released, cleanupState: .none, cleanupJob: nil))
        }
    }

    @Test("only the holder may renew or release a lease (permission denied, nothing changes)", arguments: Backend.allCases)
    func holderCheck(_ backend: Backend) async throws {
        try await backend.run { b in
            let lease = try await b.create("o1", service: "owner")
            #expect(await leaseError { try await b.renew(lease.id, service: "intruder") }
                    == notHolderError(lease.id, caller: "intruder", verb: "renew"))
            #expect(await leaseError { try await b.release(lease.id, service: "intruder") }
                    == notHolderError(lease.id, caller: "intruder", verb: "release"))
            #expect(try await b.detail(lease.id)?.lease == lease, "a refusal changes nothing")
            let summary = try await b.summary()
            #expect(summary.stats.renewed == 0 && summary.stats.released == 0)
        }
    }

    @Test("renewing or releasing an ended lease is a failed precondition", arguments: Backend.allCases)
    func endedLeases(_ backend: Backend) async throws {
        try await backend.run(limits: .contract { $0.cleanupGraceSeconds = 30 }) { b in
            let released = try await b.create("released")
            try await b.release(released.id)
            #expect(await leaseError { try await b.renew(released.id) } == alreadyReleasedError(released.id))
            #expect(await leaseError { try await b.release(released.id) } == alreadyReleasedError(released.id))
            #expect(await leaseError { try await b.forceRelease(released.id) } == alreadyReleasedError(released.id),
                    "a forced release skips the holder check only")

            let overdue = try await b.create("overdue", duration: 60)
            b.advance(seconds: 70)
            // Past expires_at, inside the grace: not reaped yet, but no longer renewable.
            let late = try #require(await leaseError { try await b.renew(overdue.id) })
            #expect(late.code == .failedPrecondition)
            #expect(late.field == nil)
            let prefix = "lease \(overdue.id) expired at \(overdue.expiresAt.milliseconds) ms (Unix), before this renew arrived at "
            #expect(late.message.hasPrefix(prefix), "\(late.message)")
            #expect(late.message.hasSuffix(" ms; create a new lease"), "\(late.message)")
            let arrived = Int64(late.message.dropFirst(prefix.count).prefix { $0.isNumber }) ?? 0
            #expect(arrived >= overdue.expiresAt.milliseconds + 10_000)

            b.advance(seconds: 30)
            #expect(try await b.reap() == [overdue.id])
            let expired = try #require(try await b.detail(overdue.id)?.lease)
            #expect(expired.state == .expired)
            #expect(await leaseError { try await b.renew(overdue.id) } == expiredError(expired))
            #expect(await leaseError { try await b.release(overdue.id) } == expiredError(expired))
        }
    }

    @Test("a lease that never existed is not found", arguments: Backend.allCases)
    func notFound(_ backend: Backend) async throws {
        try await backend.run { b in
            let ghost = LeaseID("00000000000000ff-dead")
            #expect(await leaseError { try await b.renew(ghost) } == notFoundError(ghost))
            #expect(await leaseError { try await b.release(ghost) } == notFoundError(ghost))
            #expect(await leaseError { try await b.forceRelease(ghost) } == notFoundError(ghost))
            let details = try await b.store.leaseDetails([ghost], .linearizable)
            #expect(details.isEmpty)
            #expect(try await b.detail(ghost) == nil)
        }
    }

    @Test("an object is cleaned only after its last lease ends, with the incarnation those leases held", arguments: Backend.allCases)
    func referenceCounting(_ backend: Backend) async throws {
        try await backend.run { b in
            let first = try await b.create("o1", service: "svc-a", cleanup: cleanupSpec())
            let second = try await b.create("o1", service: "svc-b")
            #expect(second.incarnation == first.incarnation, "a second lease joins the object's incarnation")
            #expect(second.createdIndex > first.createdIndex)

            let endedFirst = try await b.release(first.id, service: "svc-a")
            #expect(endedFirst.cleanupJobID == nil, "the object is still held")
            #expect(try await b.dueJobs().isEmpty)
            #expect(try await b.summary().pendingCleanups == 0)

            // Joining while held keeps the incarnation.
            let third = try await b.create("o1", service: "svc-c")
            #expect(third.incarnation == first.incarnation)

            try await b.release(second.id, service: "svc-b")
            let last = try await b.release(third.id, service: "svc-c")
            let jobID = try #require(last.cleanupJobID, "the last lease's end schedules the cleanup")
            let job = try #require(try await b.job(jobID))
            #expect(job.object == ObjectKey(type: .databaseRow, id: "o1"))
            #expect(job.incarnation == first.incarnation)
            #expect(job.leaseID == first.id, "the job uses the cleanup of the lease that named a target")
            #expect(job.serviceID == "svc-a")
            #expect(job.fencingToken == first.fencingToken)
            #expect(job.state == .pending && job.attempts == 0)
            #expect(job.spec == cleanupSpec().resolvedForContract(LeaseLimits.contract))
            #expect(try await b.dueJobs().map(\.id) == [jobID])
            #expect(try await b.detail(last.id) == LeaseDetail(lease: last, cleanupState: .pending, cleanupJob: job))
            #expect(try await b.detail(first.id)?.cleanupState == LeaseCleanupState.none, "only the last lease's end made the job")

            // Leased again after it was unheld: a new, larger incarnation.
            let again = try await b.create("o1", service: "svc-a")
            #expect(again.incarnation > first.incarnation)
            #expect(again.incarnation == again.createdIndex)
        }
    }

    @Test("fencing tokens strictly increase per lease across renewals and across incarnations", arguments: Backend.allCases)
    func fencingTokens(_ backend: Backend) async throws {
        try await backend.run { b in
            var tokens: [UInt64] = []
            let lease = try await b.create("o1")
            tokens.append(lease.fencingToken)
            for _ in 0..<3 {
                b.advance(seconds: 1)
                tokens.append(try await b.renew(lease.id).fencingToken)
            }
            // Another lease of the same incarnation, then a renewal of the first.
            let joined = try await b.create("o1", service: "svc-b")
            tokens.append(joined.fencingToken)
            tokens.append(try await b.renew(lease.id).fencingToken)
            try await b.release(lease.id)
            try await b.release(joined.id, service: "svc-b")
            // The next incarnation's tokens are above every earlier one.
            let next = try await b.create("o1")
            #expect(next.incarnation > lease.incarnation)
            tokens.append(next.fencingToken)
            tokens.append(try await b.renew(next.id).fencingToken)
            #expect(zip(tokens, tokens.dropFirst()).allSatisfy { $0 < $1 }, "\(tokens)")
        }
    }

    @Test("a renew of several leases answers each on its own", arguments: Backend.allCases)
    func batchRenew(_ backend: Backend) async throws {
        try await backend.run { b in
            let mine = try await b.create("o1")
            let theirs = try await b.create("o2", service: "other")
            let ghost = LeaseID("00000000000000ff-dead")
            guard case .renewed(let outcomes) = try await b.store.propose(
                .renew(.init(leaseIDs: [mine.id, theirs.id, ghost, mine.id], serviceID: "svc"))) else {
                throw TestFailure("a renew did not answer .renewed")
            }
            #expect(outcomes.map(\.leaseID) == [mine.id, theirs.id, ghost, mine.id])
            let renewed = try outcomes[0].result.get()
            #expect(renewed.renewalCount == 1 && renewed.fencingToken > mine.fencingToken)
            #expect(outcomes[1].result == .failure(notHolderError(theirs.id, caller: "svc", verb: "renew")))
            #expect(outcomes[2].result == .failure(notFoundError(ghost)))
            #expect(outcomes[3].result == .success(renewed), "a lease named twice is renewed once")
            #expect(try await b.summary().stats.renewed == 1)
        }
    }

    @Test("a renewals entry (KeepAlive's group commit) answers each item as its own renew would", arguments: Backend.allCases)
    func renewalsEntry(_ backend: Backend) async throws {
        try await backend.run { b in
            let a = try await b.create("o1", service: "svc-a")
            let c = try await b.create("o2", service: "svc-c")
            let ghost = LeaseID("00000000000000ff-dead")
            let items: [LeaseCommand.Renewal] = [
                .init(leaseID: a.id, serviceID: "svc-a"),
                .init(leaseID: c.id, serviceID: "svc-a"),
                .init(leaseID: ghost, serviceID: "svc-a"),
                .init(leaseID: c.id, serviceID: "svc-c", extendSeconds: 120),
                .init(leaseID: a.id, serviceID: "svc-a"),
                .init(leaseID: a.id, serviceID: "svc-a", extendSeconds: 100_000),
            ]
            guard case .renewals(let results) = try await b.store.propose(.renewals(items)) else {
                throw TestFailure("a renewals entry did not answer .renewals")
            }
            #expect(results.count == 6)
            let renewedA = try results[0].get()
            #expect(renewedA.fencingToken > a.fencingToken)
            #expect(results[1] == .failure(notHolderError(c.id, caller: "svc-a", verb: "renew")))
            #expect(results[2] == .failure(notFoundError(ghost)))
            let renewedC = try results[3].get()
            #expect(results[4] == .success(renewedA), "an item repeated within the entry gets the first one's answer")
            #expect(results[5] == .failure(LeaseError(.invalidArgument, "extend_duration_seconds: 100000 s is outside the allowed range [1, 3600] seconds (GC_MIN_LEASE_DURATION, GC_MAX_LEASE_DURATION)", field: "extend_duration_seconds")))
            #expect(try await b.detail(a.id)?.lease.expiresAt == renewedA.expiresAt)
            let storedC = try #require(try await b.detail(c.id)?.lease)
            #expect(storedC.expiresAt == renewedC.expiresAt && storedC.fencingToken == renewedC.fencingToken)
            #expect(storedC.expiresAt == storedC.lastRenewedAt.adding(seconds: 120))
            #expect(try await b.summary().stats.renewed == 2)
        }
    }

    @Test("malformed commands are refused with the same invalid-argument errors", arguments: Backend.allCases)
    func invalidInput(_ backend: Backend) async throws {
        try await backend.run(limits: .contract { $0.minDurationSeconds = 30 }) { b in
            let short = await leaseError { try await b.create("o1", duration: 5) }
            #expect(short == LeaseError(.invalidArgument, "lease_duration_seconds: 5 s is outside the allowed range [30, 3600] seconds (GC_MIN_LEASE_DURATION, GC_MAX_LEASE_DURATION)", field: "lease_duration_seconds"))
            let noService = await leaseError { try await b.create("o1", service: "") }
            #expect(noService == LeaseError(.invalidArgument, "service_id: must not be empty", field: "service_id"))
            let badEndpoint = await leaseError { try await b.create("o1", cleanup: cleanupSpec("ftp://nowhere")) }
            #expect(badEndpoint?.code == .invalidArgument)
            #expect(badEndpoint?.field == "cleanup_config.cleanup_http_endpoint")
            let lease = try await b.create("o1")
            let longRenew = await leaseError { try await b.renew(lease.id, extend: 7_200) }
            #expect(longRenew == LeaseError(.invalidArgument, "extend_duration_seconds: 7200 s is outside the allowed range [30, 3600] seconds (GC_MIN_LEASE_DURATION, GC_MAX_LEASE_DURATION)", field: "extend_duration_seconds"))
            let anonymous = await leaseError { try await b.release(lease.id, service: "") }
            #expect(anonymous == LeaseError(.invalidArgument, "service_id: must not be empty", field: "service_id"))
            let summary = try await b.summary()
            #expect(summary.stats.created == 1 && summary.stats.renewed == 0 && summary.activeLeases == 1)
            #expect(try await b.listAll().count == 1, "a refused create leaves no lease and no object behind")
            #expect(try await b.create("o1", service: "svc-b").incarnation == lease.incarnation)
        }
    }
}

extension CleanupSpec {
    /// This spec with 0 retries/delay replaced by `limits`' defaults (what a job carries).
    func resolvedForContract(_ limits: LeaseLimits) -> CleanupSpec {
        var copy = self
        if copy.maxRetries == 0 { copy.maxRetries = limits.defaultMaxRetries }
        if copy.retryDelaySeconds == 0 { copy.retryDelaySeconds = limits.defaultRetryDelaySeconds }
        return copy
    }
}
