import Testing
@testable import LeaseFSM

@Suite("Cleanup jobs")
struct CleanupJobTests {
    static func fail(_ error: String = "503", after ms: Int64 = 5000, permanent: Bool = false)
        -> LeaseCommand.CleanupOutcome.Result
    {
        .failed(error: error, retryAfterMilliseconds: ms, permanent: permanent)
    }

    @Test("a batch of outcomes applies each as its own command would, and ignores the stale ones")
    func outcomeBatch() throws {
        var h = Harness()
        let a = try h.makeJob(key("a"))
        let b = try h.makeJob(key("b"))
        let c = try h.makeJob(key("c"))
        h.advance(seconds: 1)
        let out = h.apply(.cleanupOutcomes([
            .init(jobID: a.id, attempt: 1, result: .succeeded),
            .init(jobID: b.id, attempt: 1, result: Self.fail("503", after: 2_000)),
            .init(jobID: c.id, attempt: 2, result: .succeeded),  // stale: attempt 1 is next
            .init(jobID: 999, attempt: 1, result: .succeeded),  // no such job
        ]))
        #expect(try out.result.get() == .cleanupsRecorded([a.id, b.id]))
        #expect(h.fsm.job(a.id)?.state == .succeeded)
        #expect(h.fsm.job(b.id)?.attempts == 1)
        #expect(h.fsm.job(b.id)?.nextAttemptAt == t0.plus(seconds: 3))
        #expect(h.fsm.job(c.id)?.attempts == 0, "a stale outcome changes nothing")
        #expect(out.events.map(\.kind) == [.cleanupSucceeded, .cleanupFailed])
        #expect(out.events.map(\.position) == [0, 1])
        #expect(h.fsm.dueCleanupJobs(asOf: t0.plus(seconds: 2), limit: 10).map(\.id) == [c.id])
        #expect(h.fsm.dueCleanupJobs(asOf: t0.plus(seconds: 3), limit: 10).map(\.id) == [c.id, b.id])
    }

    @Test("due jobs skip a blocked endpoint, take no more of one than it has room for, and come most overdue first then by id")
    func dueJobsSkipBlockedEndpoints() throws {
        var h = Harness()
        let slow = try h.makeJob(key("a"), cleanup: CleanupSpec(httpEndpoint: "http://slow:1/c", maxRetries: 2))
        h.advance(seconds: 1)
        let fast1 = try h.makeJob(key("b"), cleanup: CleanupSpec(httpEndpoint: "http://fast:1/c", maxRetries: 2))
        let fast2 = try h.makeJob(key("c"), cleanup: CleanupSpec(httpEndpoint: "http://fast:1/c", maxRetries: 2))
        let later = t0.plus(seconds: 10)
        #expect(h.fsm.dueCleanupJobs(asOf: later, limit: 10).map(\.id) == [slow.id, fast1.id, fast2.id])
        #expect(h.fsm.dueCleanupJobs(asOf: later, limit: 2).map(\.id) == [slow.id, fast1.id])
        #expect(h.fsm.dueCleanupJobs(asOf: later, limit: 10, room: { $0 == "http://slow:1/c" ? 0 : .max }).map(\.id) == [fast1.id, fast2.id])
        // An endpoint with room for one gives one, however large its backlog:
        // the other endpoint's jobs are not crowded out.
        #expect(h.fsm.dueCleanupJobs(asOf: later, limit: 2, room: { $0 == "http://slow:1/c" ? 1 : .max }).map(\.id) == [slow.id, fast1.id])
        #expect(h.fsm.dueCleanupJobs(asOf: later, limit: 10, room: { $0 == "http://fast:1/c" ? 1 : .max }).map(\.id) == [slow.id, fast1.id])
        #expect(h.fsm.dueCleanupJobs(asOf: later, limit: 10, skip: { $0.id == fast1.id }).map(\.id) == [slow.id, fast2.id])
        #expect(h.fsm.deadLetteredJobs(endpoint: nil, limit: 10).total == 0)
    }

    @Test("a successful attempt finishes the job")
    func success() throws {
        var h = Harness()
        let job = try h.makeJob()
        h.advance(seconds: 3)
        let index = h.nextIndex
        let out = h.apply(.cleanupOutcome(.init(jobID: job.id, attempt: 1, result: .succeeded)))
        let done = try #require(out.recordedJob)
        #expect(done.state == .succeeded)
        #expect(done.attempts == 1)
        #expect(done.finishedAt == t0.plus(seconds: 3))
        #expect(h.fsm.job(job.id) == done)
        #expect(out.events.map(\.kind) == [.cleanupSucceeded])
        #expect(out.events.first?.attempt == 1)
        #expect(out.events.first?.index == index)
        #expect(out.events.first?.leaseID == job.leaseID)
        #expect(out.events.first?.incarnation == job.incarnation)
        #expect(h.fsm.pendingCleanupCount == 0)
        #expect(h.fsm.dueCleanupJobs(asOf: t0.plus(seconds: 10_000), limit: 10) == [])
        #expect(h.fsm.stats.cleanupAttempts == 1)
        #expect(h.fsm.stats.cleanupSucceeded == 1)
        #expect(h.fsm.stats.cleanupFailures == 0)
        let lease = try #require(h.fsm.lease(job.leaseID))
        #expect(h.fsm.cleanupState(of: lease) == .succeeded)
    }

    @Test("a failed attempt keeps the job pending until now + retry_after")
    func failureRetries() throws {
        var h = Harness()
        let job = try h.makeJob()
        h.advance(seconds: 2)
        let out = h.apply(.cleanupOutcome(.init(jobID: job.id, attempt: 1, result: Self.fail("boom", after: 7_500))))
        let failed = try #require(out.recordedJob)
        #expect(failed.state == .pending)
        #expect(failed.attempts == 1)
        #expect(failed.lastError == "boom")
        #expect(failed.nextAttemptAt == t0.plus(ms: 9_500))
        #expect(out.events.map(\.kind) == [.cleanupFailed])
        #expect(out.events.first?.reason == "boom")
        #expect(out.events.first?.attempt == 1)
        #expect(h.fsm.dueCleanupJobs(asOf: t0.plus(ms: 9_499), limit: 10) == [])
        #expect(h.fsm.dueCleanupJobs(asOf: t0.plus(ms: 9_500), limit: 10) == [failed])
        #expect(h.fsm.stats.cleanupFailures == 1)
        #expect(h.fsm.stats.cleanupAttempts == 1)
        // The next attempt is number 2.
        let second = try #require(try h.outcome(job.id, attempt: 2, .succeeded))
        #expect(second.state == .succeeded)
        #expect(second.attempts == 2)
        #expect(second.lastError == "")
    }

    @Test("a negative retry_after makes the next attempt due at once")
    func negativeRetryAfter() throws {
        var h = Harness()
        let job = try h.makeJob()
        h.advance(seconds: 2)
        let failed = try #require(try h.outcome(job.id, attempt: 1, Self.fail(after: -10_000)))
        #expect(failed.nextAttemptAt == t0.plus(seconds: 2))
    }

    @Test("an outcome for any attempt but the next one is stale: ignored, nil, nothing changes",
          arguments: [2 as UInt32, 3, 7, UInt32.max])
    func staleAttemptIgnored(_ attempt: UInt32) throws {
        var h = Harness()
        let job = try h.makeJob()
        try h.expectOnlyClockMoves { (h: inout Harness) throws in
            let out = h.apply(.cleanupOutcome(.init(jobID: job.id, attempt: attempt, result: .succeeded)))
            #expect(out.isCleanupRecorded)
            #expect(out.recordedJob == nil)
            #expect(out.events.isEmpty)
        }
    }

    @Test("a repeated outcome for an attempt already recorded is stale")
    func repeatedOutcomeIgnored() throws {
        var h = Harness()
        let job = try h.makeJob()
        _ = try #require(try h.outcome(job.id, attempt: 1, Self.fail()))
        try h.expectOnlyClockMoves { (h: inout Harness) throws in
            #expect(try h.outcome(job.id, attempt: 1, .succeeded) == nil)
            #expect(try h.outcome(job.id, attempt: 1, Self.fail("again")) == nil)
        }
        #expect(h.fsm.job(job.id)?.attempts == 1)
        #expect(h.fsm.job(job.id)?.lastError == "503")
    }

    @Test("outcomes for unknown or finished jobs are stale")
    func outcomeForUnknownOrFinished() throws {
        var h = Harness()
        let job = try h.makeJob()
        _ = try #require(try h.outcome(job.id, attempt: 1, .succeeded))
        try h.expectOnlyClockMoves { (h: inout Harness) throws in
            #expect(try h.outcome(job.id, attempt: 2, Self.fail()) == nil)
            #expect(try h.outcome(999, attempt: 1, .succeeded) == nil)
        }
    }

    @Test("a job gets 1 + max_retries attempts, then is dead-lettered and kept")
    func deadLetterAfterRetries() throws {
        var h = Harness()
        let job = try h.makeJob(cleanup: httpCleanup(maxRetries: 2))
        for attempt in 1...2 as ClosedRange<UInt32> {
            h.advance(seconds: 10)
            let failed = try #require(try h.outcome(job.id, attempt: attempt, Self.fail("e\(attempt)")))
            #expect(failed.state == .pending)
        }
        h.advance(seconds: 10)
        let out = h.apply(.cleanupOutcome(.init(jobID: job.id, attempt: 3, result: Self.fail("e3"))))
        let dead = try #require(out.recordedJob)
        #expect(dead.state == .deadLettered)
        #expect(dead.attempts == 3)
        #expect(dead.lastError == "e3")
        #expect(dead.finishedAt == nil)
        #expect(out.events.map(\.kind) == [.cleanupDeadLettered])
        #expect(out.events.first?.reason == "e3")
        #expect(out.events.first?.attempt == 3)
        #expect(h.fsm.deadLetteredJobs == [dead])
        #expect(h.fsm.deadLetteredCleanupCount == 1)
        #expect(h.fsm.pendingCleanupCount == 0)
        #expect(h.fsm.dueCleanupJobs(asOf: t0.plus(seconds: 100_000), limit: 10) == [])
        #expect(h.fsm.stats.deadLettered == 1)
        #expect(h.fsm.stats.cleanupFailures == 3)
        #expect(h.fsm.cleanupState(of: h.fsm.lease(job.leaseID)!) == .deadLettered)
        try h.expectOnlyClockMoves { (h: inout Harness) throws in
            #expect(try h.outcome(job.id, attempt: 4, .succeeded) == nil)
        }
    }

    @Test("max_retries 0 means the default number of retries")
    func defaultRetries() throws {
        var limits = LeaseLimits()
        limits.defaultMaxRetries = 1
        var h = Harness(limits: limits)
        let job = try h.makeJob(cleanup: httpCleanup(maxRetries: 0))
        #expect(job.spec.maxRetries == 1)
        #expect(try h.outcome(job.id, attempt: 1, Self.fail())?.state == .pending)
        #expect(try h.outcome(job.id, attempt: 2, Self.fail())?.state == .deadLettered)
    }

    @Test("a permanent failure dead-letters at once")
    func permanentFailure() throws {
        var h = Harness()
        let job = try h.makeJob(cleanup: httpCleanup(maxRetries: 10))
        let out = h.apply(.cleanupOutcome(.init(jobID: job.id, attempt: 1, result: Self.fail("410", permanent: true))))
        #expect(out.recordedJob?.state == .deadLettered)
        #expect(out.recordedJob?.attempts == 1)
        #expect(out.events.map(\.kind) == [.cleanupDeadLettered])
    }

    @Test("long errors are cut to 1024 characters")
    func longErrorCut() throws {
        var h = Harness()
        let job = try h.makeJob()
        let failed = try h.outcome(job.id, attempt: 1, Self.fail(String(repeating: "x", count: 5000)))
        #expect(failed?.lastError.count == 1024)
    }

    @Test("retrying dead letters resets attempts and makes them due now; other ids are ignored")
    func retryDeadLetters() throws {
        var h = Harness()
        let dead = try h.makeJob(key("a"), cleanup: httpCleanup(maxRetries: 1))
        let pending = try h.makeJob(key("b"))
        let succeeded = try h.makeJob(key("c"))
        _ = try h.outcome(succeeded.id, attempt: 1, .succeeded)
        _ = try h.outcome(dead.id, attempt: 1, Self.fail())
        _ = try h.outcome(dead.id, attempt: 2, Self.fail("last"))
        try #require(h.fsm.job(dead.id)?.state == .deadLettered)
        h.advance(seconds: 60)
        let index = h.nextIndex
        let out = h.apply(.retryDeadLetters(.init(jobIDs: [pending.id, 999, dead.id, succeeded.id, dead.id])))
        #expect(out.retriedJobs == [dead.id])
        let retried = try #require(h.fsm.job(dead.id))
        #expect(retried.state == .pending)
        #expect(retried.attempts == 0)
        #expect(retried.nextAttemptAt == t0.plus(seconds: 60))
        #expect(out.events.map(\.kind) == [.cleanupRetried])
        #expect(out.events.first?.index == index)
        #expect(out.events.first?.reason.contains("last") == true)
        #expect(h.fsm.deadLetteredJobs == [])
        #expect(h.fsm.dueCleanupJobs(asOf: t0.plus(seconds: 60), limit: 10).map(\.id).contains(dead.id))
        #expect(h.fsm.job(pending.id) == pending)
        #expect(h.fsm.job(succeeded.id)?.state == .succeeded)
        // A fresh budget: attempt numbering restarts at 1 and max_retries applies again.
        #expect(try h.outcome(dead.id, attempt: 3, .succeeded) == nil)
        #expect(try h.outcome(dead.id, attempt: 1, Self.fail())?.state == .pending)
        #expect(try h.outcome(dead.id, attempt: 2, Self.fail())?.state == .deadLettered)
    }

    @Test("leasing an object with a pending job supersedes the job and starts a new incarnation")
    func supersedePending() throws {
        var h = Harness()
        let job = try h.makeJob(key("x"))
        h.advance(seconds: 5)
        let index = h.nextIndex
        let out = h.apply(h.createCommand(key("x"), service: "newcomer", cleanup: httpCleanup("new")))
        let lease = try #require(out.createdLease)
        #expect(lease.incarnation == index)
        #expect(lease.incarnation != job.incarnation)
        let superseded = try #require(h.fsm.job(job.id))
        #expect(superseded.state == .superseded)
        #expect(superseded.finishedAt == t0.plus(seconds: 5))
        #expect(out.events.map(\.kind) == [.cleanupSuperseded, .created])
        #expect(out.events.map(\.position) == [0, 1])
        #expect(out.events.first?.incarnation == job.incarnation)
        #expect(h.fsm.pendingCleanupCount == 0)
        #expect(h.fsm.cleanupState(of: h.fsm.lease(job.leaseID)!) == .superseded)
        // A late outcome for the old incarnation cannot touch anything.
        try h.expectOnlyClockMoves { (h: inout Harness) throws in
            #expect(try h.outcome(job.id, attempt: 1, .succeeded) == nil)
        }
        // The new incarnation gets its own job when it ends.
        let released = try h.release(lease.id, service: "newcomer")
        let next = try #require(h.fsm.cleanupJob(of: released))
        #expect(next.id != job.id)
        #expect(next.incarnation == lease.incarnation)
        #expect(next.spec.httpEndpoint == "http://owner:8080/new")
    }

    @Test("leasing an object with a dead-lettered job supersedes it; it can no longer be retried")
    func supersedeDeadLettered() throws {
        var h = Harness()
        let job = try h.makeJob(key("x"), cleanup: httpCleanup(maxRetries: 1))
        _ = try h.outcome(job.id, attempt: 1, Self.fail())
        _ = try h.outcome(job.id, attempt: 2, Self.fail())
        try #require(h.fsm.deadLetteredCleanupCount == 1)
        let lease = try h.create(key("x"))
        #expect(lease.incarnation == lease.createdIndex)
        #expect(h.fsm.job(job.id)?.state == .superseded)
        #expect(h.fsm.deadLetteredCleanupCount == 0)
        #expect(h.fsm.deadLetteredJobs == [])
        try h.expectOnlyClockMoves { (h: inout Harness) throws in
            #expect(try h.retry([job.id]) == [])
        }
    }

    @Test("a second lease on a held object supersedes nothing")
    func noSupersedeWhileHeld() throws {
        var h = Harness()
        let other = try h.makeJob(key("y"))
        _ = try h.create(key("x"))
        let out = h.apply(h.createCommand(key("x"), service: "s2"))
        #expect(out.events.map(\.kind) == [.created])
        #expect(h.fsm.job(other.id)?.state == .pending)
    }

    @Test("due jobs come most overdue first, then by id, at most limit")
    func dueOrdering() throws {
        var h = Harness()
        let a = try h.makeJob(key("a"))  // due t0
        h.advance(seconds: 1)
        let b = try h.makeJob(key("b"))  // due t0+1
        let c = try h.makeJob(key("c"))  // due t0+1
        h.advance(seconds: 1)
        _ = try h.outcome(a.id, attempt: 1, Self.fail(after: 10_000))  // due t0+12
        let due = h.fsm.dueCleanupJobs(asOf: t0.plus(seconds: 20), limit: 10).map(\.id)
        #expect(due == [b.id, c.id, a.id])
        #expect(h.fsm.dueCleanupJobs(asOf: t0.plus(seconds: 20), limit: 2).map(\.id) == [b.id, c.id])
        #expect(h.fsm.dueCleanupJobs(asOf: t0.plus(seconds: 5), limit: 10).map(\.id) == [b.id, c.id])
        #expect(h.fsm.dueCleanupJobs(asOf: t0, limit: 10).map(\.id) == [])
    }

    @Test("the idempotency key is stable across attempts and unique per job")
    func idempotencyKey() throws {
        var h = Harness()
        let job = try h.makeJob(key("a"))
        let other = try h.makeJob(key("b"))
        #expect(job.idempotencyKey == "\(job.leaseID.rawValue)-job\(job.id)")
        #expect(job.idempotencyKey != other.idempotencyKey)
        let afterFailure = try #require(try h.outcome(job.id, attempt: 1, Self.fail()))
        #expect(afterFailure.idempotencyKey == job.idempotencyKey)
        let afterSecond = try #require(try h.outcome(job.id, attempt: 2, Self.fail()))
        #expect(afterSecond.idempotencyKey == job.idempotencyKey)
        #expect(h.fsm.dueCleanupJobs(asOf: t0.plus(seconds: 100), limit: 10).first { $0.id == job.id }?
            .idempotencyKey == job.idempotencyKey)
    }

    @Test("job ids count up from 1 across objects")
    func jobIDs() throws {
        var h = Harness()
        let a = try h.makeJob(key("a"))
        let b = try h.makeJob(key("b"))
        #expect(a.id == 1)
        #expect(b.id == 2)
    }
}
