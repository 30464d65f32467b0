import ChaosCheck
import Testing

/// Each checker accepts a correct history and reports the broken promise in
/// one that breaks it (so a chaos run that passes means something).
@Suite struct CheckerTests {
    typealias H = HistoryBuilder

    /// A lease created at 0 for 3 s, released at 1000, cleaned at 1500.
    func releasedAndCleaned() -> (HistoryBuilder, FinalState) {
        var h = HistoryBuilder()
        h.op(.create, nil, at: 0, .ok(H.view("L1", .active, expires: 3000)))
        h.op(.release, "L1", at: 1000, .ok(H.view("L1", .released, expires: 3000)))
        h.op(.get, "L1", at: 1200, .ok(H.view("L1", .released, expires: 3000)))
        h.deliver(lease: "L1", key: "L1-job1", at: 1500)
        let final = FinalState(
            leases: ["L1": .init(view: H.view("L1", .released, expires: 3000), endedAtMs: 1005)],
            jobs: [.init(id: 1, object: H.object, incarnation: 1, leaseID: "L1", state: .succeeded, idempotencyKey: "L1-job1", attempts: 1)])
        return (h, final)
    }

    @Test func aCorrectHistoryPasses() {
        let (h, final) = releasedAndCleaned()
        let report = h.check(final: final)
        #expect(report.violations.isEmpty, "\(report.violations)")
    }

    @Test func aReadThatSeesAReleasedLeaseActiveIsNotLinearizable() {
        var (h, final) = releasedAndCleaned()
        h.op(.get, "L1", at: 1300, .ok(H.view("L1", .active, expires: 3000)))
        #expect(h.check(final: final).broke(.linearizable))
        _ = final
    }

    @Test func aRenewalAfterARefusalForExpiryIsNotLinearizable() {
        var h = HistoryBuilder()
        h.op(.create, nil, at: 0, .ok(H.view("L1", .active, expires: 3000)))
        h.op(.renew, "L1", at: 3500, .refused(.expired, "expired"))
        h.op(.renew, "L1", at: 3600, .ok(H.view("L1", .active, expires: 6600, token: 2)))
        let final = FinalState(leases: ["L1": .init(view: H.view("L1", .active, expires: 6600, token: 2), endedAtMs: nil)], jobs: [])
        #expect(h.check(final: final, settledAt: 0).broke(.linearizable))
    }

    @Test func concurrentOperationsMayTakeEffectInEitherOrder() {
        var h = HistoryBuilder()
        h.op(.create, nil, at: 0, .ok(H.view("L1", .active, expires: 3000)))
        let read = h.begin(.get, "L1", at: 100)
        let release = h.begin(.release, "L1", at: 110)
        h.end(release, at: 150, .ok(H.view("L1", .released, expires: 3000)))
        // The read began before the release ended: it may see either state.
        h.end(read, at: 200, .ok(H.view("L1", .active, expires: 3000)))
        let final = FinalState(leases: ["L1": .init(view: H.view("L1", .released, expires: 3000), endedAtMs: 150)], jobs: [])
        #expect(!h.check(final: final).broke(.linearizable))
    }

    @Test func aRenewalWithALostAnswerMayOrMayNotHaveHappened() {
        var h = HistoryBuilder()
        h.op(.create, nil, at: 0, .ok(H.view("L1", .active, expires: 3000)))
        h.op(.renew, "L1", at: 1000, .unknown("timed out"))
        h.op(.get, "L1", at: 1100, .ok(H.view("L1", .active, expires: 4000)))
        h.op(.get, "L1", at: 1200, .ok(H.view("L1", .active, expires: 4000)))
        let final = FinalState(leases: ["L1": .init(view: H.view("L1", .active, expires: 4000), endedAtMs: nil)], jobs: [])
        #expect(!h.check(final: final, settledAt: 0).broke(.linearizable))
        // …but two different expiries cannot both follow from it.
        h.op(.get, "L1", at: 1300, .ok(H.view("L1", .active, expires: 5000)))
        #expect(h.check(final: final, settledAt: 0).broke(.linearizable))
    }

    @Test func anAcknowledgedReleaseMissingFromTheFinalStateIsALostWrite() {
        let (h, _) = releasedAndCleaned()
        let final = FinalState(
            leases: ["L1": .init(view: H.view("L1", .active, expires: 3000), endedAtMs: nil)],
            jobs: [])
        #expect(h.check(final: final, settledAt: 0).broke(.noLostWrites))
    }

    @Test func anAcknowledgedCreateMissingFromTheFinalStateIsALostWrite() {
        var h = HistoryBuilder()
        h.op(.create, nil, at: 0, .ok(H.view("L1", .active, expires: 3000)))
        #expect(h.check(final: FinalState(leases: [:], jobs: [])).broke(.noLostWrites))
    }

    @Test func aCleanupWhileTheHolderRenewsInTimeIsUnsafe() {
        var h = HistoryBuilder()
        h.op(.create, nil, at: 0, .ok(H.view("L1", .active, expires: 3000)))
        h.op(.renew, "L1", at: 1000, .ok(H.view("L1", .active, expires: 4000)))
        // Held until at least 1000 + 3000 + 1000 grace: a delivery at 3500 is early.
        h.deliver(lease: "L1", key: "L1-job1", at: 3500)
        let final = FinalState(
            leases: ["L1": .init(view: H.view("L1", .expired, expires: 4000), endedAtMs: 5000)],
            jobs: [.init(id: 1, object: H.object, incarnation: 1, leaseID: "L1", state: .succeeded, idempotencyKey: "L1-job1", attempts: 1)])
        let report = h.check(final: final)
        #expect(report.broke(.safeCleanup))
        // The same delivery after the bound is fine.
        var late = HistoryBuilder()
        late.op(.create, nil, at: 0, .ok(H.view("L1", .active, expires: 3000)))
        late.op(.renew, "L1", at: 1000, .ok(H.view("L1", .active, expires: 4000)))
        late.deliver(lease: "L1", key: "L1-job1", at: 5100)
        #expect(!late.check(final: final).broke(.safeCleanup))
    }

    @Test func aCleanupFromAFollowerOrADeposedLeaderIsUnsafe() {
        var (h, final) = releasedAndCleaned()
        h.deliver(lease: "L1", key: "L1-job1", at: 1600, node: "n2",
                  confirmation: Delivery.Confirmation(startSeq: h.mark(), wasLeader: false, term: 2))
        #expect(h.check(final: final).broke(.safeCleanup))

        (h, final) = releasedAndCleaned()
        h.leader("n3", term: 5)
        let start = h.mark()
        h.deliver(lease: "L1", key: "L1-job1", at: 1600, node: "n2",
                  confirmation: Delivery.Confirmation(startSeq: start, wasLeader: true, term: 4))
        #expect(h.check(final: final).broke(.safeCleanup))

        (h, final) = releasedAndCleaned()
        h.deliver(lease: "L1", key: "L1-job1", at: 1600, node: "n2", confirmation: .some(nil))
        #expect(h.check(final: final).broke(.safeCleanup))
    }

    @Test func anUnheldObjectWithoutAFinishedCleanupIsReported() {
        let (h, _) = releasedAndCleaned()
        let pending = FinalState(
            leases: ["L1": .init(view: H.view("L1", .released, expires: 3000), endedAtMs: 1005)],
            jobs: [.init(id: 1, object: H.object, incarnation: 1, leaseID: "L1", state: .pending, idempotencyKey: "L1-job1", attempts: 3)])
        #expect(h.check(final: pending).broke(.eventualCleanup))
        let none = FinalState(leases: ["L1": .init(view: H.view("L1", .released, expires: 3000), endedAtMs: 1005)], jobs: [])
        #expect(h.check(final: none).broke(.eventualCleanup))
    }

    @Test func aSucceededJobNeedsASuccessfulDeliveryUnderOneStableKey() {
        var h = HistoryBuilder()
        h.op(.create, nil, at: 0, .ok(H.view("L1", .active, expires: 3000)))
        h.op(.release, "L1", at: 1000, .ok(H.view("L1", .released, expires: 3000)))
        h.deliver(lease: "L1", key: "L1-job1", at: 1500, succeeded: false)
        h.deliver(lease: "L1", key: "other-key", at: 2500, succeeded: false)
        let final = FinalState(
            leases: ["L1": .init(view: H.view("L1", .released, expires: 3000), endedAtMs: 1005)],
            jobs: [.init(id: 1, object: H.object, incarnation: 1, leaseID: "L1", state: .succeeded, idempotencyKey: "L1-job1", attempts: 2)])
        let report = h.check(final: final)
        #expect(report.violations.filter { $0.property == .eventualCleanup }.count == 2, "\(report.violations)")
    }

    @Test func aLeaseSeenExpiredBeforeItsDurationIsEarly() {
        var h = HistoryBuilder()
        h.op(.create, nil, at: 0, .ok(H.view("L1", .active, expires: 3000)))
        h.op(.get, "L1", at: 2000, .ok(H.view("L1", .expired, expires: 3000)))
        let final = FinalState(leases: ["L1": .init(view: H.view("L1", .expired, expires: 3000), endedAtMs: 2000)],
                               jobs: [.init(id: 1, object: H.object, incarnation: 1, leaseID: "L1", state: .succeeded, idempotencyKey: "L1-job1", attempts: 0)])
        #expect(h.check(final: final).broke(.expiryTiming))
        // Within the clock error the run injected, it is not a violation.
        #expect(!h.check(final: final, clockError: 2500).broke(.expiryTiming))
    }

    @Test func aLeaseThatOutlivesItsDeadlineByFarIsLate() {
        var h = HistoryBuilder()
        h.op(.create, nil, at: 0, .ok(H.view("L1", .active, expires: 3000)))
        let final = FinalState(leases: ["L1": .init(view: H.view("L1", .active, expires: 3000), endedAtMs: nil)], jobs: [])
        #expect(h.check(final: final, settledAt: 60_000).broke(.expiryTiming))
        #expect(!h.check(final: final, settledAt: 5_000).broke(.expiryTiming))
    }

    @Test func aLeaseReapedLongAfterItWasDueIsLateUnlessAFaultExplainsIt() {
        var h = HistoryBuilder()
        h.op(.create, nil, at: 0, .ok(H.view("L1", .active, expires: 3000)))
        // Due at 3000 + 1000 grace; expired at 20000, with a 5000 ms allowance.
        let final = FinalState(leases: ["L1": .init(view: H.view("L1", .expired, expires: 3000), endedAtMs: 20_000)],
                               jobs: [.init(id: 1, object: H.object, incarnation: 1, leaseID: "L1", state: .succeeded, idempotencyKey: "L1-job1", attempts: 0)])
        #expect(h.check(final: final).broke(.expiryTiming))
        // A partition from 5000 to 16000 explains it.
        #expect(!h.check(final: final, disturbances: [5000...16_000]).broke(.expiryTiming))
        // One that ended before the lease was due does not.
        #expect(h.check(final: final, disturbances: [1000...2000]).broke(.expiryTiming))
    }

    @Test func fencingTokensMustGrowInRealTimeOrder() {
        var h = HistoryBuilder()
        h.op(.create, nil, at: 0, .ok(H.view("L1", .active, expires: 3000, token: 7)))
        h.op(.create, nil, at: 100, .ok(H.view("L2", .active, expires: 3100, token: 5)))
        let final = FinalState(leases: [
            "L1": .init(view: H.view("L1", .active, expires: 3000, token: 7), endedAtMs: nil),
            "L2": .init(view: H.view("L2", .active, expires: 3100, token: 5), endedAtMs: nil),
        ], jobs: [])
        #expect(h.check(final: final, settledAt: 0).broke(.fencing))
    }
}
