import Testing
@testable import LeaseFSM

/// The lease-time rule of `gc-sidecar restore` and `recover`
/// (``LeaseStateMachine/graceLeases(restoredAt:grace:)``).
@Suite("Restore grace for lease deadlines")
struct RestoreGraceTests {
    @Test("deadlines later than restore time plus grace are kept; earlier ones move to it; ended leases and jobs are untouched")
    func keepsDeadlinesWithAFloor() throws {
        // No cleanup grace past expires_at, so expiry happens at the deadline itself.
        var limits = LeaseLimits()
        limits.cleanupGraceSeconds = 0
        var h = Harness(limits: limits)
        let long = try h.create(key("long"), duration: 3600)
        let short = try h.create(key("short"), duration: 30)
        let gone = try h.create(key("gone"), duration: 30, cleanup: httpCleanup(maxRetries: 5, retryDelaySeconds: 60))
        h.advance(seconds: 40)
        #expect(try h.expire([gone.id]) == [gone.id])
        let pendingBefore = h.fsm.pendingCleanupCount
        let goneBefore = h.fsm.lease(gone.id)

        // An outage: the restore happens 100 s after the short lease's deadline.
        let restoredAt = short.expiresAt.plus(seconds: 100)
        let result = h.fsm.graceLeases(restoredAt: restoredAt, grace: .seconds(60))

        #expect(result == .init(extended: 1, kept: 1))
        #expect(h.fsm.lease(long.id)?.expiresAt == long.expiresAt, "more than the grace left: deadline kept")
        #expect(h.fsm.lease(short.id)?.expiresAt == restoredAt.plus(seconds: 60), "deadline passed in the outage: grace from the restore")
        #expect(h.fsm.lease(gone.id) == goneBefore, "an ended lease is untouched")
        #expect(h.fsm.pendingCleanupCount == pendingBefore && pendingBefore == 1, "its pending cleanup is kept")
        // The expiry index follows: nothing is due before the floor, the short lease is at it.
        #expect(h.fsm.expirableLeases(asOf: restoredAt.plus(seconds: 59), limit: 10).isEmpty)
        #expect(h.fsm.expirableLeases(asOf: restoredAt.plus(seconds: 60), limit: 10) == [short.id])
    }

    @Test("the adjusted state survives a snapshot round trip at the same applied index")
    func snapshotRoundTrip() throws {
        var h = Harness()
        let lease = try h.create(key("a"), duration: 30)
        h.fsm.graceLeases(restoredAt: lease.expiresAt.plus(seconds: 500), grace: .seconds(60))
        let restored = try LeaseStateMachine(snapshot: try h.fsm.snapshot(), limits: h.fsm.limits)
        #expect(restored == h.fsm)
        #expect(restored.appliedIndex == h.fsm.appliedIndex)
        #expect(restored.lease(lease.id)?.expiresAt == lease.expiresAt.plus(seconds: 560))
    }
}
