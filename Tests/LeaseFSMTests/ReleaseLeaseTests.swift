import Testing
@testable import LeaseFSM

@Suite("Release lease")
struct ReleaseLeaseTests {
    @Test("release ends the lease now and emits a released event")
    func releaseEnds() throws {
        var h = Harness()
        let lease = try h.create(key("x"), service: "orders")
        h.advance(seconds: 10)
        let out = h.apply(.release(.init(leaseID: lease.id, serviceID: "orders")))
        let released = try #require(out.releasedLease)
        #expect(released.state == .released)
        #expect(released.endedAt == t0.plus(seconds: 10))
        #expect(released.cleanupJobID == nil)
        #expect(h.fsm.lease(lease.id) == released)
        #expect(h.fsm.activeLeaseCount == 0)
        #expect(h.fsm.activeLeasesByService == [:])
        #expect(h.fsm.activeLeasesByType == [:])
        #expect(!h.fsm.isHeld(key("x")))
        #expect(h.fsm.stats.released == 1)
        let event = try #require(out.events.first)
        #expect(out.events.count == 1)
        #expect(event.kind == .released)
        #expect(event.index == 2)
        #expect(event.leaseID == lease.id)
        #expect(event.at == t0.plus(seconds: 10))
        #expect(event.reason.contains("orders"))
        #expect(h.fsm.expirableLeases(asOf: t0.plus(seconds: 10_000), limit: 10) == [])
    }

    @Test("releasing the last lease of an object with a target schedules its cleanup, due now")
    func schedulesCleanup() throws {
        var h = Harness()
        let spec = httpCleanup(payload: "row 7", maxRetries: 4, retryDelaySeconds: 2)
        let lease = try h.create(key("x"), service: "orders", cleanup: spec, metadata: ["m": "1"])
        h.advance(seconds: 10)
        _ = try h.renew(lease.id, service: "orders").get()
        h.advance(seconds: 10)
        let released = try h.release(lease.id, service: "orders")
        let jobID = try #require(released.cleanupJobID)
        let job = try #require(h.fsm.job(jobID))
        #expect(job.state == .pending)
        #expect(job.object == key("x"))
        #expect(job.incarnation == lease.incarnation)
        #expect(job.leaseID == lease.id)
        #expect(job.serviceID == "orders")
        #expect(job.metadata == ["m": "1"])
        #expect(job.spec == spec)
        #expect(job.fencingToken == 2)  // the renewal's token, the lease's last
        #expect(job.attempts == 0)
        #expect(job.nextAttemptAt == t0.plus(seconds: 20))
        #expect(job.createdAt == t0.plus(seconds: 20))
        #expect(job.finishedAt == nil)
        #expect(h.fsm.cleanupState(of: released) == .pending)
        #expect(h.fsm.cleanupJob(of: released) == job)
        #expect(h.fsm.pendingCleanupCount == 1)
        #expect(h.fsm.dueCleanupJobs(asOf: t0.plus(seconds: 20), limit: 10) == [job])
        #expect(h.fsm.dueCleanupJobs(asOf: t0.plus(ms: 19_999), limit: 10) == [])
    }

    @Test("an object without any cleanup target gets no job")
    func noTargetNoJob() throws {
        var h = Harness()
        let lease = try h.create()
        let released = try h.release(lease.id)
        #expect(released.cleanupJobID == nil)
        #expect(h.fsm.cleanupState(of: released) == .none)
        #expect(h.fsm.pendingCleanupCount == 0)
    }

    @Test("no job while another lease holds the object; the last lease's end creates it with its own spec")
    func lastLeaseCreatesJob() throws {
        var h = Harness()
        let first = try h.create(key("x"), service: "s1", cleanup: httpCleanup("first"))
        let second = try h.create(key("x"), service: "s2", cleanup: httpCleanup("second"))
        let out = h.apply(.release(.init(leaseID: second.id, serviceID: "s2")))
        let releasedSecond = try #require(out.releasedLease)
        #expect(releasedSecond.cleanupJobID == nil)
        #expect(h.fsm.cleanupState(of: releasedSecond) == .none)
        #expect(h.fsm.pendingCleanupCount == 0)
        #expect(h.fsm.isHeld(key("x")))
        let releasedFirst = try h.release(first.id, service: "s1")
        let job = try #require(h.fsm.cleanupJob(of: releasedFirst))
        #expect(job.spec.httpEndpoint == "http://owner:8080/first")
        #expect(job.leaseID == first.id)
        #expect(job.serviceID == "s1")
        #expect(job.incarnation == first.incarnation)
        #expect(h.fsm.pendingCleanupCount == 1)
    }

    @Test("when the last lease names no target, the most recent spec of the incarnation is used")
    func mostRecentSpec() throws {
        var h = Harness()
        let a = try h.create(key("x"), service: "s1", cleanup: httpCleanup("a"), metadata: ["who": "a"])
        let b = try h.create(key("x"), service: "s2", cleanup: httpCleanup("b"), metadata: ["who": "b"])
        let c = try h.create(key("x"), service: "s3")
        try h.release(b.id, service: "s2")
        try h.release(a.id, service: "s1")
        let released = try h.release(c.id, service: "s3")
        let job = try #require(h.fsm.cleanupJob(of: released))
        #expect(job.spec == httpCleanup("b").resolved(with: h.limits))
        #expect(job.leaseID == b.id)
        #expect(job.serviceID == "s2")
        #expect(job.metadata == ["who": "b"])
        #expect(job.incarnation == a.incarnation)
        #expect(released.cleanupJobID == job.id)
    }

    @Test("a spec of an earlier incarnation is not used for a later one")
    func specDoesNotCrossIncarnations() throws {
        var h = Harness()
        let job = try h.makeJob(key("x"))
        _ = try h.outcome(job.id, attempt: 1, .succeeded)
        let next = try h.create(key("x"))
        let released = try h.release(next.id)
        #expect(released.cleanupJobID == nil)
        #expect(h.fsm.pendingCleanupCount == 0)
    }

    @Test("releasing an unknown lease is NOT_FOUND")
    func notFound() {
        var h = Harness()
        h.expectRefused(.release(.init(leaseID: LeaseID("0000000000000001-a"), serviceID: "svc")), .notFound,
                        field: "lease_id")
    }

    @Test("releasing another service's lease is PERMISSION_DENIED and leaves it active")
    func permissionDenied() throws {
        var h = Harness()
        let lease = try h.create(service: "owner", cleanup: httpCleanup())
        h.expectRefused(.release(.init(leaseID: lease.id, serviceID: "intruder")), .permissionDenied,
                        field: "service_id")
        #expect(h.fsm.lease(lease.id)?.isActive == true)
    }

    @Test("releasing a released, expired or past-expiry lease is FAILED_PRECONDITION")
    func endedOrLapsed() throws {
        var h = Harness()
        let released = try h.create(key("a"), cleanup: httpCleanup())
        let expired = try h.create(key("b"), duration: 30)
        let lapsed = try h.create(key("c"), duration: 90)
        try h.release(released.id)
        h.advance(seconds: 60)
        #expect(try h.expire([expired.id]) == [expired.id])
        h.expectRefused(.release(.init(leaseID: released.id, serviceID: "svc")), .failedPrecondition)
        h.expectRefused(.release(.init(leaseID: expired.id, serviceID: "svc")), .failedPrecondition)
        h.advance(seconds: 30)  // exactly lapsed's expires_at
        h.expectRefused(.release(.init(leaseID: lapsed.id, serviceID: "svc")), .failedPrecondition)
        #expect(h.fsm.lease(lapsed.id)?.state == .active)
        #expect(h.fsm.stats.released == 1)
    }

    @Test("a forced release ends another service's lease, says why in the event, and still refuses an ended one")
    func forcedRelease() throws {
        var h = Harness()
        let lease = try h.create(key("obj"), service: "owner", cleanup: httpCleanup())
        let out = h.apply(.release(.forced(lease.id, reason: "owner decommissioned")))
        guard case .released(let ended) = try out.result.get() else { Issue.record("not released"); return }
        #expect(ended.state == .released)
        #expect(out.events.map(\.kind) == [.released])
        #expect(out.events.first?.reason == "force-released by operator: owner decommissioned")
        #expect(h.fsm.pendingCleanupCount == 1, "the object's last lease ended: its cleanup is scheduled")
        let again = h.apply(.release(.forced(lease.id, reason: "twice")))
        #expect(again.result.error?.code == .failedPrecondition)
        let noReason = h.apply(.release(.forced(lease.id, reason: "  ")))
        #expect(noReason.result.error?.code == .invalidArgument)
    }
}
