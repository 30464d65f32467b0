import Testing
@testable import LeaseFSM

@Suite("Renew lease")
struct RenewLeaseTests {
    @Test("a renewal extends from the renewal's stamp, not from the old expiry")
    func extendsFromStamp() throws {
        var h = Harness()
        let lease = try h.create(duration: 60)
        h.advance(seconds: 50)
        let renewed = try h.renew(lease.id, extend: 30).get()
        #expect(renewed.expiresAt == t0.plus(seconds: 80))  // not t0+60+30
        #expect(renewed.lastRenewedAt == t0.plus(seconds: 50))
        #expect(renewed.renewalCount == 1)
        #expect(renewed.createdAt == t0)
        #expect(renewed.durationSeconds == 60)
        h.advance(ms: 20_500)
        let again = try h.renew(lease.id, extend: 3600).get()
        #expect(again.expiresAt == t0.plus(ms: 70_500 + 3_600_000))
        #expect(again.renewalCount == 2)
        #expect(h.fsm.lease(lease.id) == again)
    }

    @Test("an extension of 0 uses the lease's own duration, not the default and not the last extension")
    func zeroUsesOwnDuration() throws {
        var h = Harness()
        let lease = try h.create(duration: 45)
        h.advance(seconds: 10)
        _ = try h.renew(lease.id, extend: 600).get()
        h.advance(seconds: 10)
        let renewed = try h.renew(lease.id, extend: 0).get()
        #expect(renewed.expiresAt == t0.plus(seconds: 20 + 45))
        #expect(renewed.durationSeconds == 45)
    }

    @Test("each renewal's fencing token is its command's index, strictly above the previous one")
    func fencingTokenIncreases() throws {
        var h = Harness()
        let lease = try h.create()
        var last = lease.fencingToken
        for step in 1...4 {
            h.advance(seconds: 5)
            if step == 3 { h.skip(to: h.nextIndex + 10) }
            let expectedToken = h.nextIndex
            let renewed = try h.renew(lease.id).get()
            #expect(renewed.fencingToken == expectedToken)
            #expect(renewed.fencingToken > last)
            last = renewed.fencingToken
        }
        #expect(h.fsm.stats.renewed == 4)
    }

    @Test("a renewal emits a renewed event with the new expiry and token")
    func renewedEvent() throws {
        var h = Harness()
        let lease = try h.create(key("x"), service: "orders", duration: 60)
        h.advance(seconds: 10)
        let out = h.apply(.renew(.init(leaseIDs: [lease.id], serviceID: "orders")))
        #expect(out.events == [LeaseEvent(
            index: 2, position: 0, kind: .renewed, leaseID: lease.id, object: key("x"), serviceID: "orders",
            incarnation: lease.incarnation, fencingToken: 2, at: t0.plus(seconds: 10),
            expiresAt: t0.plus(seconds: 70), reason: "", attempt: 0)])
    }

    @Test("renewing moves the lease out of the reaper's reach")
    func renewMovesExpiry() throws {
        var h = Harness()
        let lease = try h.create(duration: 60)
        #expect(h.fsm.expirableLeases(asOf: t0.plus(seconds: 90), limit: 10) == [lease.id])
        h.advance(seconds: 59)
        _ = try h.renew(lease.id).get()
        #expect(h.fsm.expirableLeases(asOf: t0.plus(seconds: 90), limit: 10) == [])
        #expect(h.fsm.expirableLeases(asOf: t0.plus(seconds: 59 + 60 + 30), limit: 10) == [lease.id])
    }

    @Test("renewing an unknown lease is NOT_FOUND and changes nothing")
    func notFound() throws {
        var h = Harness()
        _ = try h.create()
        try h.expectOnlyClockMoves { (h: inout Harness) throws in
            let result = try h.renew(LeaseID("0000000000000099-abc"))
            #expect(result.error?.code == .notFound)
            #expect(result.error?.field == "lease_id")
        }
    }

    @Test("renewing another service's lease is PERMISSION_DENIED and changes nothing")
    func permissionDenied() throws {
        var h = Harness()
        let lease = try h.create(service: "owner")
        h.advance(seconds: 10)
        try h.expectOnlyClockMoves { (h: inout Harness) throws in
            let result = try h.renew(lease.id, service: "intruder")
            #expect(result.error?.code == .permissionDenied)
            #expect(result.error?.field == "service_id")
        }
    }

    @Test("renewing after expires_at has passed is FAILED_PRECONDITION even before any expire decision")
    func pastExpiry() throws {
        var h = Harness()
        let lease = try h.create(duration: 60)
        h.advance(ms: 59_999)
        let justInTime = try h.renew(lease.id).get()
        #expect(justInTime.expiresAt == t0.plus(ms: 59_999 + 60_000))
        h.clock = justInTime.expiresAt
        try h.expectOnlyClockMoves { (h: inout Harness) throws in
            #expect(try h.renew(lease.id).error?.code == .failedPrecondition)
        }
        h.advance(seconds: 5)
        try h.expectOnlyClockMoves { (h: inout Harness) throws in
            #expect(try h.renew(lease.id).error?.code == .failedPrecondition)
        }
        // Not expired by the failed renewals: still active until the reaper's decision.
        #expect(h.fsm.lease(lease.id)?.state == .active)
    }

    @Test("renewing a released or expired lease is FAILED_PRECONDITION")
    func endedLeases() throws {
        var h = Harness()
        let released = try h.create(key("a"))
        let expired = try h.create(key("b"), duration: 30)
        try h.release(released.id)
        h.advance(seconds: 60)
        #expect(try h.expire([expired.id]) == [expired.id])
        try h.expectOnlyClockMoves { (h: inout Harness) throws in
            let outcomes = try h.renew([released.id, expired.id])
            #expect(outcomes.map(\.error?.code) == [.failedPrecondition, .failedPrecondition])
        }
        // Another service is told it is not its lease before it is told the lease ended.
        try h.expectOnlyClockMoves { (h: inout Harness) throws in
            #expect(try h.renew(released.id, service: "other").error?.code == .permissionDenied)
        }
    }

    @Test("a batch renews each lease on its own and answers in request order")
    func batchMixed() throws {
        var h = Harness()
        let a = try h.create(key("a"))
        let b = try h.create(key("b"))
        let foreign = try h.create(key("c"), service: "other")
        let released = try h.create(key("d"))
        try h.release(released.id)
        h.advance(seconds: 10)
        let unknown = LeaseID("00000000000000ff-0")
        let index = h.nextIndex
        let out = h.apply(.renew(.init(leaseIDs: [a.id, unknown, foreign.id, released.id, b.id], serviceID: "svc")))
        let outcomes = try #require(out.renewOutcomes)
        #expect(outcomes.map(\.leaseID) == [a.id, unknown, foreign.id, released.id, b.id])
        #expect(outcomes.map(\.error?.code) == [nil, .notFound, .permissionDenied, .failedPrecondition, nil])
        #expect(outcomes[0].lease?.fencingToken == index)
        #expect(outcomes[4].lease?.fencingToken == index)
        #expect(out.events.map(\.leaseID) == [a.id, b.id])
        #expect(out.events.map(\.position) == [0, 1])
        #expect(out.events.allSatisfy { $0.index == index && $0.kind == .renewed })
        #expect(h.fsm.stats.renewed == 2)
        #expect(h.fsm.lease(foreign.id) == foreign)
    }

    @Test("a lease named several times in one batch is renewed once")
    func duplicatesRenewOnce() throws {
        var h = Harness()
        let a = try h.create(key("a"))
        let b = try h.create(key("b"))
        h.advance(seconds: 10)
        let out = h.apply(.renew(.init(leaseIDs: [a.id, a.id, b.id, a.id], serviceID: "svc")))
        let outcomes = try #require(out.renewOutcomes)
        #expect(outcomes.count == 4)
        #expect(outcomes.allSatisfy { $0.error == nil })
        #expect(outcomes[0].result == outcomes[1].result)
        #expect(outcomes[0].result == outcomes[3].result)
        #expect(h.fsm.lease(a.id)?.renewalCount == 1)
        #expect(out.events.map(\.leaseID) == [a.id, b.id])
        #expect(h.fsm.stats.renewed == 2)
    }

    @Test("a duplicated failing id fails the same way each time")
    func duplicateFailures() throws {
        var h = Harness()
        let outcomes = try h.renew([LeaseID("x"), LeaseID("x")])
        #expect(outcomes.map(\.error?.code) == [.notFound, .notFound])
    }
}
