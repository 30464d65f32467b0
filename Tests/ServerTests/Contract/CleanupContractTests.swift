import LeaseFSM
import Server
import Testing

/// Cleanup jobs: the idempotency key, failures with backoff, dead letters,
/// the operator's retry and forced release, and supersession by a new lease.
@Suite("Lease store contract: cleanup jobs")
struct CleanupContractTests {
    @Test("a failed attempt is retried after its backoff with the same idempotency key", arguments: Backend.allCases)
    func retryWithBackoff(_ backend: Backend) async throws {
        try await backend.run { b in
            let lease = try await b.create("o1", cleanup: cleanupSpec(maxRetries: 3, retryDelaySeconds: 5))
            try await b.release(lease.id)
            let job = try #require(try await b.dueJobs().first)
            #expect(job.idempotencyKey == "\(lease.id.rawValue)-job\(job.id)")
            #expect(job.attempts == 0)
            #expect(job.spec.maxRetries == 3 && job.spec.retryDelaySeconds == 5)

            #expect(try await b.fail(job, attempt: 1, retryAfterMilliseconds: 10_000, error: "503 from endpoint") == [job.id])
            let failed = try #require(try await b.job(job.id))
            #expect(failed.state == .pending)
            #expect(failed.attempts == 1)
            #expect(failed.lastError == "503 from endpoint")
            #expect(failed.nextAttemptAt >= job.nextAttemptAt.adding(milliseconds: 10_000))
            #expect(failed.idempotencyKey == job.idempotencyKey, "the key is the job's, not the attempt's")
            #expect(try await b.detail(lease.id)?.cleanupState == .pending)
            #expect(try await b.dueJobs().isEmpty, "not due before its backoff")
            #expect(try await b.fail(job, attempt: 1).isEmpty, "an outcome for an attempt already recorded is stale")

            b.advance(seconds: 11)
            let retry = try #require(try await b.dueJobs().first)
            #expect(retry.id == job.id)
            #expect(retry.attempts == 1)
            #expect(retry.idempotencyKey == job.idempotencyKey)
            #expect(try await b.succeed(retry, attempt: 2) == [job.id])
            let done = try #require(try await b.job(job.id))
            #expect(done.state == .succeeded && done.attempts == 2 && done.lastError.isEmpty && done.finishedAt != nil)
            #expect(try await b.detail(lease.id)?.cleanupState == .succeeded)
            #expect(try await b.dueJobs().isEmpty)
            #expect(try await b.succeed(retry, attempt: 3).isEmpty, "a finished job takes no more outcomes")

            let summary = try await b.summary()
            #expect(summary.stats.cleanupAttempts == 2)
            #expect(summary.stats.cleanupFailures == 1)
            #expect(summary.stats.cleanupSucceeded == 1)
            #expect(summary.pendingCleanups == 0 && summary.deadLetteredCleanups == 0)
        }
    }

    @Test("a job is dead-lettered after max retries, and an operator's retry queues it again", arguments: Backend.allCases)
    func deadLetterAndRetry(_ backend: Backend) async throws {
        try await backend.run { b in
            let endpoint = "http://127.0.0.1:9/cleanup"
            let lease = try await b.create("o1", cleanup: cleanupSpec(endpoint, maxRetries: 1))
            try await b.release(lease.id)
            let job = try #require(try await b.dueJobs().first)
            #expect(try await b.fail(job, attempt: 1) == [job.id])
            let again = try #require(try await b.dueJobs().first, "due at once: the backoff was 0")
            #expect(again.attempts == 1)
            #expect(try await b.fail(again, attempt: 2, error: "still down") == [job.id])

            let dead = try #require(try await b.job(job.id))
            #expect(dead.state == .deadLettered)
            #expect(dead.attempts == 2)
            #expect(dead.lastError == "still down")
            #expect(try await b.dueJobs().isEmpty)
            #expect(try await b.detail(lease.id)?.cleanupState == .deadLettered)
            var letters = try await b.store.deadLetters(endpoint: nil, limit: 10, .linearizable)
            #expect(letters.jobs == [dead] && letters.total == 1)
            letters = try await b.store.deadLetters(endpoint: endpoint, limit: 0, .linearizable)
            #expect(letters.jobs.isEmpty && letters.total == 1)
            letters = try await b.store.deadLetters(endpoint: "http://elsewhere:9/", limit: 10, .linearizable)
            #expect(letters.jobs.isEmpty && letters.total == 0)
            var summary = try await b.summary()
            #expect(summary.deadLetteredCleanups == 1 && summary.pendingCleanups == 0)
            #expect(summary.stats.deadLettered == 1 && summary.stats.cleanupFailures == 2)

            // The operator retries it (an unknown job id is skipped).
            guard case .deadLettersRetried(let retried) = try await b.store.propose(.retryDeadLetters(.init(jobIDs: [job.id, 999_999_999]))) else {
                throw TestFailure("a retry did not answer .deadLettersRetried")
            }
            #expect(retried == [job.id])
            let queued = try #require(try await b.job(job.id))
            #expect(queued.state == .pending && queued.attempts == 0, "a fresh retry budget")
            #expect(try await b.detail(lease.id)?.cleanupState == .pending)
            guard case .deadLettersRetried(let twice) = try await b.store.propose(.retryDeadLetters(.init(jobIDs: [job.id]))) else {
                throw TestFailure("a retry did not answer .deadLettersRetried")
            }
            #expect(twice.isEmpty, "a pending job is not retried")
            let redelivery = try #require(try await b.dueJobs().first)
            #expect(redelivery.id == job.id && redelivery.idempotencyKey == job.idempotencyKey)
            #expect(try await b.succeed(redelivery, attempt: 1) == [job.id])
            summary = try await b.summary()
            #expect(summary.deadLetteredCleanups == 0 && summary.pendingCleanups == 0)
            #expect(try await b.store.deadLetters(endpoint: nil, limit: 10, .linearizable).total == 0)
        }
    }

    @Test("a permanent failure dead-letters at once", arguments: Backend.allCases)
    func permanentFailure(_ backend: Backend) async throws {
        try await backend.run { b in
            let lease = try await b.create("o1", cleanup: cleanupSpec(maxRetries: 5))
            try await b.release(lease.id)
            let job = try #require(try await b.dueJobs().first)
            #expect(try await b.fail(job, attempt: 1, permanent: true, error: "410 gone") == [job.id])
            let dead = try #require(try await b.job(job.id))
            #expect(dead.state == .deadLettered && dead.attempts == 1 && dead.lastError == "410 gone")
        }
    }

    @Test("an operator's forced release ends any holder's lease and schedules the cleanup", arguments: Backend.allCases)
    func forcedRelease(_ backend: Backend) async throws {
        try await backend.run { b in
            let lease = try await b.create("o1", service: "stuck", cleanup: cleanupSpec())
            #expect(await leaseError { try await b.forceRelease(lease.id, reason: "  ") }
                    == LeaseError(.invalidArgument, "reason: must say why the lease is force-released (it is kept in the audit event)", field: "reason"))
            let released = try await b.forceRelease(lease.id, reason: "holder crashed")
            #expect(released.state == .released)
            #expect(released.serviceID == "stuck")
            let jobID = try #require(released.cleanupJobID)
            #expect(try await b.dueJobs().map(\.id) == [jobID])
            #expect(try await b.summary().stats.released == 1)
        }
    }

    @Test("leasing the object again supersedes its pending cleanup", arguments: Backend.allCases)
    func supersedePending(_ backend: Backend) async throws {
        try await backend.run { b in
            let lease = try await b.create("o1", cleanup: cleanupSpec())
            try await b.release(lease.id)
            let job = try #require(try await b.dueJobs().first)
            let next = try await b.create("o1", service: "svc-b")
            #expect(next.incarnation > lease.incarnation)
            let superseded = try #require(try await b.job(job.id))
            #expect(superseded.state == .superseded)
            #expect(superseded.lastError == "object leased again (incarnation \(next.incarnation)) before its cleanup succeeded")
            #expect(superseded.finishedAt != nil)
            #expect(try await b.detail(lease.id)?.cleanupState == .superseded)
            #expect(try await b.dueJobs().isEmpty)
            #expect(try await b.succeed(job, attempt: 1).isEmpty, "a late outcome of the old incarnation is stale")
            #expect(try await b.job(job.id)?.state == .superseded)
            #expect(try await b.summary().pendingCleanups == 0)
        }
    }

    @Test("leasing the object again supersedes its dead-lettered cleanup", arguments: Backend.allCases)
    func supersedeDeadLetter(_ backend: Backend) async throws {
        try await backend.run { b in
            let lease = try await b.create("o1", cleanup: cleanupSpec())
            try await b.release(lease.id)
            let job = try #require(try await b.dueJobs().first)
            #expect(try await b.fail(job, attempt: 1, permanent: true) == [job.id])
            #expect(try await b.store.deadLetters(endpoint: nil, limit: 10, .linearizable).total == 1)
            try await b.create("o1")
            #expect(try await b.job(job.id)?.state == .superseded)
            #expect(try await b.store.deadLetters(endpoint: nil, limit: 10, .linearizable).total == 0)
            guard case .deadLettersRetried(let retried) = try await b.store.propose(.retryDeadLetters(.init(jobIDs: [job.id]))) else {
                throw TestFailure("a retry did not answer .deadLettersRetried")
            }
            #expect(retried.isEmpty, "a superseded job is not retried")
            #expect(try await b.summary().deadLetteredCleanups == 0)
        }
    }

    @Test("due jobs come most overdue first", arguments: Backend.allCases)
    func dueOrder(_ backend: Backend) async throws {
        try await backend.run { b in
            let first = try await b.create("o1", cleanup: cleanupSpec())
            let second = try await b.create("o2", cleanup: cleanupSpec())
            try await b.release(first.id)
            b.advance(seconds: 1)
            try await b.release(second.id)
            let due = try await b.dueJobs()
            #expect(due.map(\.leaseID) == [first.id, second.id])
            // The first fails with a backoff past the second's due time.
            #expect(try await b.fail(due[0], attempt: 1, retryAfterMilliseconds: 5_000) == [due[0].id])
            #expect(try await b.succeed(due[1], attempt: 1) == [due[1].id])
            b.advance(seconds: 6)
            #expect(try await b.dueJobs().map(\.id) == [due[0].id])
        }
    }
}
