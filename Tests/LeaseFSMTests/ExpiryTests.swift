import Testing
@testable import LeaseFSM

@Suite("Expire decisions")
struct ExpiryTests {
    @Test("only leases whose expires_at + grace is at or before now expire")
    func graceHonoured() throws {
        var limits = LeaseLimits()
        limits.cleanupGraceSeconds = 30
        var h = Harness(limits: limits)
        let lease = try h.create(duration: 60)
        h.clock = t0.plus(ms: 89_999)
        try h.expectOnlyClockMoves { (h: inout Harness) throws in
            #expect(try h.expire([lease.id]) == [])
        }
        h.clock = t0.plus(seconds: 90)
        #expect(try h.expire([lease.id]) == [lease.id])
        let expired = try #require(h.fsm.lease(lease.id))
        #expect(expired.state == .expired)
        #expect(expired.endedAt == t0.plus(seconds: 90))
        #expect(h.fsm.activeLeaseCount == 0)
        #expect(h.fsm.stats.expired == 1)
    }

    @Test("expired leases emit expired events in id order, positions counting up, at the command's index")
    func expiredEvents() throws {
        var h = Harness()
        let a = try h.create(key("a"), duration: 30)
        let b = try h.create(key("b"), duration: 30)
        let c = try h.create(key("c"), duration: 30)
        let keep = try h.create(key("d"), duration: 600)
        h.advance(seconds: 100)
        let index = h.nextIndex
        let fake = LeaseID("0000000000000fff-0")
        let out = h.apply(.expire(.init(leaseIDs: [c.id, keep.id, a.id, fake, b.id, a.id])))
        #expect(out.expiredIDs == [a.id, b.id, c.id])
        #expect(out.events.map(\.leaseID) == [a.id, b.id, c.id])
        #expect(out.events.map(\.position) == [0, 1, 2])
        #expect(out.events.allSatisfy { $0.index == index && $0.kind == .expired && $0.at == t0.plus(seconds: 100) })
        #expect(out.events.first?.expiresAt == a.expiresAt)
        #expect(out.events.first?.reason.isEmpty == false)
        #expect(h.fsm.stats.expired == 3)
        #expect(h.fsm.lease(keep.id)?.isActive == true)
    }

    @Test("ended or unknown leases in a decision are skipped")
    func endedSkipped() throws {
        var h = Harness()
        let released = try h.create(key("a"), duration: 30)
        let expired = try h.create(key("b"), duration: 30)
        try h.release(released.id)
        h.advance(seconds: 100)
        #expect(try h.expire([expired.id]) == [expired.id])
        let endedAt = h.fsm.lease(expired.id)?.endedAt
        h.advance(seconds: 100)
        try h.expectOnlyClockMoves { (h: inout Harness) throws in
            #expect(try h.expire([released.id, expired.id, LeaseID("nope")]) == [])
        }
        #expect(h.fsm.lease(released.id)?.state == .released)
        #expect(h.fsm.lease(expired.id)?.endedAt == endedAt)
    }

    @Test("a lease renewed after the leader decided to expire it survives the decision")
    func renewedAfterDecisionSkipped() throws {
        var h = Harness()
        let lease = try h.create(duration: 60)
        let other = try h.create(key("other"), duration: 60)
        // The leader's clock runs ahead: it decides at t0+95 that both leases have lapsed.
        let decision = h.fsm.expirableLeases(asOf: t0.plus(seconds: 95), limit: 100)
        #expect(decision == [lease.id, other.id])
        // A renewal stamped before the old expiry is committed before the decision.
        h.clock = t0.plus(seconds: 59)
        _ = try h.renew(lease.id).get()
        let expired = try h.expire(decision, stamp: t0.plus(seconds: 95))
        #expect(expired == [other.id])
        #expect(h.fsm.lease(lease.id)?.isActive == true)
        #expect(h.fsm.lease(lease.id)?.expiresAt == t0.plus(seconds: 119))
    }

    @Test("expiry of a lease while another lease holds the object schedules no cleanup")
    func noCleanupWhileHeld() throws {
        var h = Harness()
        let short = try h.create(key("x"), service: "s1", duration: 30, cleanup: httpCleanup("short"))
        let long = try h.create(key("x"), service: "s2", duration: 600)
        h.advance(seconds: 100)
        #expect(try h.expire([short.id]) == [short.id])
        #expect(h.fsm.lease(short.id)?.cleanupJobID == nil)
        #expect(h.fsm.pendingCleanupCount == 0)
        #expect(h.fsm.isHeld(key("x")))
        h.advance(seconds: 600)
        #expect(try h.expire([long.id]) == [long.id])
        let last = try #require(h.fsm.lease(long.id))
        let job = try #require(h.fsm.cleanupJob(of: last))
        #expect(job.spec.httpEndpoint == "http://owner:8080/short")
        #expect(job.leaseID == short.id)
        #expect(job.state == .pending)
        #expect(h.fsm.cleanupState(of: last) == .pending)
        #expect(h.fsm.cleanupState(of: h.fsm.lease(short.id)!) == .none)
    }

    @Test("expiring the last lease schedules the object's cleanup")
    func expiryCreatesJob() throws {
        var h = Harness()
        let lease = try h.create(duration: 30, cleanup: httpCleanup())
        h.advance(seconds: 60)
        let out = h.apply(.expire(.init(leaseIDs: [lease.id])))
        #expect(out.expiredIDs == [lease.id])
        let ended = try #require(h.fsm.lease(lease.id))
        let job = try #require(h.fsm.cleanupJob(of: ended))
        #expect(job.nextAttemptAt == t0.plus(seconds: 60))
        #expect(h.fsm.dueCleanupJobs(asOf: h.fsm.now, limit: 10).map(\.id) == [job.id])
    }

    // MARK: expirableLeases

    @Test("expirableLeases honours the grace period")
    func expirableGrace() throws {
        var limits = LeaseLimits()
        limits.cleanupGraceSeconds = 10
        var h = Harness(limits: limits)
        let lease = try h.create(duration: 30)
        #expect(h.fsm.expirableLeases(asOf: t0.plus(ms: 39_999), limit: 10) == [])
        #expect(h.fsm.expirableLeases(asOf: t0.plus(seconds: 40), limit: 10) == [lease.id])
        #expect(h.fsm.expirableLeases(asOf: t0.plus(seconds: 4000), limit: 10) == [lease.id])
    }

    @Test("expirableLeases lists the oldest expiry first (then by id) and stops at the limit")
    func expirableOrderAndLimit() throws {
        var h = Harness()
        // Created in one order, expiring in another, some within the same second.
        let late = try h.create(key("a"), duration: 100)
        let early = try h.create(key("b"), duration: 30)
        h.advance(ms: 700)
        let middle = try h.create(key("c"), duration: 30)  // t0+30.7
        h.advance(ms: -700)
        let tieFirst = try h.create(key("d"), duration: 30, stamp: t0.plus(ms: 700))  // same expiry, larger id
        let asOf = t0.plus(seconds: 1000)
        #expect(h.fsm.expirableLeases(asOf: asOf, limit: 10) == [early.id, middle.id, tieFirst.id, late.id])
        #expect(h.fsm.expirableLeases(asOf: asOf, limit: 2) == [early.id, middle.id])
        #expect(h.fsm.expirableLeases(asOf: asOf, limit: 0) == [])
        // Only the ones past the cutoff (30.7 s + 30 s grace).
        #expect(h.fsm.expirableLeases(asOf: t0.plus(ms: 60_700), limit: 10) == [early.id, middle.id, tieFirst.id])
        #expect(h.fsm.expirableLeases(asOf: t0.plus(ms: 60_699), limit: 10) == [early.id])
    }

    @Test("ended leases are never expirable")
    func endedNotExpirable() throws {
        var h = Harness()
        let a = try h.create(key("a"), duration: 30)
        let b = try h.create(key("b"), duration: 30)
        try h.release(a.id)
        #expect(h.fsm.expirableLeases(asOf: t0.plus(seconds: 1000), limit: 10) == [b.id])
    }
}
