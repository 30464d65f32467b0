import Testing
@testable import LeaseFSM

@Suite("Create lease")
struct CreateLeaseTests {
    @Test("the id is the create's log index as 16 lowercase hex digits, a dash and the suffix")
    func idFormat() throws {
        var h = Harness()
        h.skip(to: 0x1f3)
        let lease = try h.create(suffix: "beef")
        #expect(lease.id.rawValue == "00000000000001f3-beef")
        #expect(lease.createdIndex == 0x1f3)
        #expect(h.fsm.lease(LeaseID("00000000000001f3-beef")) == lease)
        #expect(LeaseID(index: UInt64.max, suffix: "0").rawValue == "ffffffffffffffff-0")
        #expect(LeaseID(index: 1, suffix: "a").rawValue == "0000000000000001-a")
    }

    @Test("ids sort in creation order across hex digit boundaries, whatever the suffixes")
    func idsSortInCreationOrder() throws {
        var h = Harness()
        var created: [LeaseID] = []
        // Suffixes sort in the opposite order of creation, and the index crosses 0x9→0xa, 0xf→0x10, 0xff→0x100.
        let plan: [(UInt64, String)] = [(9, "ffff"), (10, "fff"), (15, "ff"), (16, "f"), (255, "e"), (256, "1"), (4096, "0")]
        for (index, suffix) in plan {
            if index > h.nextIndex { h.skip(to: index) }
            created.append(try h.create(key("o\(index)"), suffix: suffix).id)
        }
        #expect(created.sorted() == created)
        #expect(allLeases(h.fsm).map(\.id) == created)
    }

    @Test("expires_at is the stamp plus the duration; created_at and last_renewed_at are the stamp")
    func expiryFromStamp() throws {
        var h = Harness()
        h.advance(ms: 1234)
        let lease = try h.create(duration: 90)
        #expect(lease.createdAt == t0.plus(ms: 1234))
        #expect(lease.lastRenewedAt == t0.plus(ms: 1234))
        #expect(lease.expiresAt == t0.plus(ms: 1234 + 90_000))
        #expect(lease.durationSeconds == 90)
        #expect(lease.renewalCount == 0)
        #expect(lease.state == .active)
        #expect(lease.endedAt == nil)
        #expect(lease.cleanupJobID == nil)
    }

    @Test("a duration of 0 gets the default duration of the limits")
    func defaultDuration() throws {
        var limits = LeaseLimits()
        limits.defaultDurationSeconds = 123
        var h = Harness(limits: limits)
        let lease = try h.create(duration: 0)
        #expect(lease.durationSeconds == 123)
        #expect(lease.expiresAt == t0.plus(seconds: 123))
    }

    @Test("the fencing token of a new lease is the index of its create command")
    func fencingTokenIsIndex() throws {
        var h = Harness()
        h.skip(to: 41)
        let a = try h.create(key("a"))
        let b = try h.create(key("b"))
        #expect(a.fencingToken == 41)
        #expect(b.fencingToken == 42)
    }

    @Test("the first lease of an unheld object starts an incarnation at its index; later leases share it")
    func incarnationShared() throws {
        var h = Harness()
        h.skip(to: 7)
        let first = try h.create(key("x"), service: "s1")
        let otherObject = try h.create(key("y"), service: "s1")
        let second = try h.create(key("x"), service: "s2")
        let sameIDOtherType = try h.create(key("x", .cacheEntry), service: "s1")
        #expect(first.incarnation == 7)
        #expect(otherObject.incarnation == 8)
        #expect(second.incarnation == 7)
        #expect(sameIDOtherType.incarnation == 10)
        // Still shared once the first holder is gone, as long as the object stays held.
        try h.release(first.id, service: "s1")
        let third = try h.create(key("x"), service: "s3")
        #expect(third.incarnation == 7)
    }

    @Test("an object leased again after its last lease ended gets a new incarnation")
    func newIncarnationAfterUnheld() throws {
        var h = Harness()
        let first = try h.create(key("x"))
        try h.release(first.id)
        #expect(!h.fsm.isHeld(key("x")))
        let again = try h.create(key("x"))
        #expect(again.incarnation == again.createdIndex)
        #expect(again.incarnation > first.incarnation)
        #expect(h.fsm.isHeld(key("x")))
    }

    @Test("create emits one created event with the lease's details and counts the lease")
    func createdEvent() throws {
        var h = Harness()
        h.advance(seconds: 5)
        let out = h.apply(h.createCommand(key("x", .databaseRow), service: "orders", duration: 60,
                                          metadata: ["k": "v"], suffix: "abc"))
        let lease = try #require(out.createdLease)
        #expect(lease.metadata == ["k": "v"])
        #expect(lease.serviceID == "orders")
        #expect(lease.object == key("x", .databaseRow))
        #expect(out.events == [LeaseEvent(
            index: 1, position: 0, kind: .created, leaseID: lease.id, object: key("x", .databaseRow),
            serviceID: "orders", incarnation: 1, fencingToken: 1, at: t0.plus(seconds: 5),
            expiresAt: t0.plus(seconds: 65), reason: "", attempt: 0)])
        #expect(h.fsm.stats.created == 1)
        #expect(h.fsm.activeLeaseCount == 1)
        #expect(h.fsm.activeLeasesByService == ["orders": 1])
        #expect(h.fsm.activeLeasesByType == [.databaseRow: 1])
        #expect(h.fsm.isHeld(key("x", .databaseRow)))
        #expect(h.fsm.lease(lease.id) == lease)
    }

    @Test("a cleanup spec keeps its values; 0 retries and 0 delay become the limits' defaults")
    func cleanupSpecResolved() throws {
        var limits = LeaseLimits()
        limits.defaultMaxRetries = 7
        limits.defaultRetryDelaySeconds = 11
        var h = Harness(limits: limits)
        let defaulted = try h.create(key("a"), cleanup: CleanupSpec(grpcEndpoint: "orders:50051", payload: "p"))
        #expect(defaulted.cleanup == CleanupSpec(grpcEndpoint: "orders:50051", payload: "p", maxRetries: 7,
                                                 retryDelaySeconds: 11))
        let explicit = try h.create(key("b"), cleanup: httpCleanup(maxRetries: 2, retryDelaySeconds: 3))
        #expect(explicit.cleanup == httpCleanup(maxRetries: 2, retryDelaySeconds: 3))
    }

    @Test("a cleanup spec without any endpoint is dropped (nothing to clean)")
    func cleanupWithoutTargetDropped() throws {
        var h = Harness()
        let lease = try h.create(cleanup: CleanupSpec(maxRetries: 5, retryDelaySeconds: 9))
        #expect(lease.cleanup == nil)
        try h.release(lease.id)
        #expect(h.fsm.lease(lease.id)?.cleanupJobID == nil)
        #expect(h.fsm.pendingCleanupCount == 0)
    }

    @Test("HTTP wins over gRPC when a spec names both endpoints")
    func httpWins() {
        let both = CleanupSpec(httpEndpoint: "http://a:1/x", grpcEndpoint: "b:2")
        #expect(both.target == .http("http://a:1/x"))
        #expect(CleanupSpec(grpcEndpoint: "b:2").target == .grpc("b:2"))
        #expect(CleanupSpec().target == nil)
    }

    @Test("a create at the per-service quota is RESOURCE_EXHAUSTED and changes nothing")
    func quota() throws {
        var limits = LeaseLimits()
        limits.maxLeasesPerService = 2
        var h = Harness(limits: limits)
        let a = try h.create(key("a"), service: "s1", cleanup: httpCleanup())
        _ = try h.create(key("b"), service: "s1")
        // A pending job on the object the refused create names must survive too.
        _ = try h.makeJob(key("c"), service: "s2")
        h.advance(seconds: 1)
        let command = h.createCommand(key("c"), service: "s1", cleanup: httpCleanup())
        h.expectRefused(command, .resourceExhausted, field: "service_id")
        #expect(h.fsm.pendingCleanupCount == 1)
        // Another service is not limited by s1's leases.
        _ = try h.create(key("d"), service: "s2")
        // Ended leases do not count.
        try h.release(a.id, service: "s1")
        _ = try h.create(key("e"), service: "s1")
        #expect(h.fsm.activeLeasesByService["s1"] == 2)
    }

    @Test("leases that passed expires_at but were not reaped still count against the quota")
    func quotaCountsUnreapedLeases() throws {
        var limits = LeaseLimits()
        limits.maxLeasesPerService = 1
        var h = Harness(limits: limits)
        let a = try h.create(key("a"), duration: 30)
        h.advance(seconds: 31)
        h.expectRefused(h.createCommand(key("b")), .resourceExhausted)
        h.advance(seconds: 30)
        #expect(try h.expire([a.id]) == [a.id])
        _ = try h.create(key("b"))
    }

    @Test("a create whose id is already taken is ALREADY_EXISTS and changes nothing")
    func alreadyExists() throws {
        var h = Harness()
        let lease = try h.create(suffix: "abc")
        // A log replayed over a state that already holds the entry (defensive path).
        h.fsm.appliedIndex = 0
        var expected = h.fsm
        expected.appliedIndex = 1
        let command = h.createCommand(key("other"), suffix: "abc")
        let out = h.fsm.apply(StampedCommand(command, stamp: t0), index: 1)
        #expect(out.error?.code == .alreadyExists)
        #expect(out.events.isEmpty)
        #expect(h.fsm == expected)
        #expect(h.fsm.lease(lease.id) == lease)
        #expect(!h.fsm.isHeld(key("other")))
    }
}
