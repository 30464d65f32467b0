import Testing
@testable import LeaseFSM

@Suite("Retention of ended leases and finished jobs")
struct RetentionTests {
    static var limits: LeaseLimits {
        var l = LeaseLimits()
        l.endedRetentionSeconds = 100
        return l
    }

    @Test("an ended lease is forgotten once endedRetentionSeconds have passed since it ended")
    func endedLeaseForgotten() throws {
        var h = Harness(limits: Self.limits)
        let released = try h.create(key("a"))
        let keep = try h.create(key("b"), duration: 3600)
        h.advance(seconds: 10)
        try h.release(released.id)  // ended at t0+10
        h.clock = t0.plus(ms: 109_999)
        _ = try h.create(key("c"))
        #expect(h.fsm.lease(released.id)?.state == .released)
        h.clock = t0.plus(seconds: 110)
        _ = try h.create(key("d"))
        #expect(h.fsm.lease(released.id) == nil)
        #expect(!allLeases(h.fsm).map(\.id).contains(released.id))
        #expect(h.fsm.lease(keep.id)?.isActive == true)
        #expect(h.fsm.retainedLeaseCount == 3)
        // A forgotten lease is unknown.
        h.expectRefused(.release(.init(leaseID: released.id, serviceID: "svc")), .notFound)
    }

    @Test("any command moving now forgets; also a refused one")
    func refusedCommandStillForgets() throws {
        var h = Harness(limits: Self.limits)
        let lease = try h.create()
        try h.release(lease.id)
        h.advance(seconds: 500)
        let out = h.apply(.release(.init(leaseID: LeaseID(""), serviceID: "svc")))
        #expect(out.error?.code == .invalidArgument)
        #expect(h.fsm.lease(lease.id) == nil)
    }

    @Test("a succeeded job is forgotten after the retention; the lease's cleanup state stays succeeded meanwhile")
    func succeededJobForgotten() throws {
        var h = Harness(limits: Self.limits)
        let job = try h.makeJob()
        h.advance(seconds: 50)
        _ = try h.outcome(job.id, attempt: 1, .succeeded)  // finished at t0+50
        h.clock = t0.plus(seconds: 99)
        _ = try h.create(key("other"))
        #expect(h.fsm.job(job.id)?.state == .succeeded)
        h.clock = t0.plus(seconds: 150)
        _ = try h.create(key("another"))
        #expect(h.fsm.job(job.id) == nil)
        #expect(h.fsm.lease(job.leaseID) == nil)
    }

    @Test("a superseded job is forgotten after the retention")
    func supersededJobForgotten() throws {
        var h = Harness(limits: Self.limits)
        let job = try h.makeJob(key("x"))
        h.advance(seconds: 10)
        _ = try h.create(key("x"))
        #expect(h.fsm.job(job.id)?.state == .superseded)
        h.advance(seconds: 100)
        _ = try h.create(key("y"))
        #expect(h.fsm.job(job.id) == nil)
    }

    @Test("dead-lettered and pending jobs are kept however long ago they were created")
    func openJobsKept() throws {
        var h = Harness(limits: Self.limits)
        let dead = try h.makeJob(key("a"), cleanup: httpCleanup(maxRetries: 1))
        let pending = try h.makeJob(key("b"))
        _ = try h.outcome(dead.id, attempt: 1, .failed(error: "x", retryAfterMilliseconds: 0, permanent: true))
        h.advance(seconds: 100_000)
        _ = try h.create(key("c"))
        #expect(h.fsm.job(dead.id)?.state == .deadLettered)
        #expect(h.fsm.deadLetteredJobs.map(\.id) == [dead.id])
        #expect(h.fsm.job(pending.id)?.state == .pending)
        // Their leases are forgotten all the same.
        #expect(h.fsm.lease(dead.leaseID) == nil)
        #expect(h.fsm.lease(pending.leaseID) == nil)
        #expect(try h.retry([dead.id]) == [dead.id])
    }

    @Test("retention and grace of any size never trap: they just never pass")
    func hugeDurationsSaturate() throws {
        var limits = LeaseLimits()
        limits.endedRetentionSeconds = .max
        limits.cleanupGraceSeconds = .max
        var h = Harness(limits: limits)
        let lapsed = try h.create(key("a"), duration: 30)
        let ended = try h.create(key("b"), duration: 3600)
        try h.release(ended.id)
        h.advance(seconds: 1_000_000)
        #expect(h.fsm.expirableLeases(asOf: h.clock, limit: 10) == [])
        #expect(try h.expire([lapsed.id]) == [])
        #expect(h.fsm.lease(lapsed.id)?.isActive == true)
        #expect(h.fsm.lease(ended.id)?.state == .released)
    }
}
