import Testing
@testable import LeaseFSM

/// Limits on what one caller can make every replica hold.
@Suite("Bounds on leases and sessions")
struct CallerBoundsTests {
    @Test("GC_MAX_LEASES bounds active leases of all services together, naming the limit")
    func totalLeaseLimit() throws {
        var limits = LeaseLimits.defaults
        limits.maxLeases = 3
        var h = Harness(limits: limits)
        _ = try h.create(key("a"), service: "s1")
        _ = try h.create(key("b"), service: "s2")
        let third = try h.create(key("c"), service: "s3")
        let refused = h.apply(h.createCommand(key("d"), service: "s4"))
        #expect(refused.error?.code == .resourceExhausted)
        #expect(refused.error?.message.contains("GC_MAX_LEASES") == true)
        #expect(allLeases(h.fsm).count == 3, "nothing changed")
        _ = try h.release(third.id, service: "s3")
        #expect(h.apply(h.createCommand(key("d"), service: "s4")).createdLease != nil, "room again after a release")
    }

    @Test("a session holding too many unacknowledged replies is refused until it acknowledges")
    func repliesPerSessionAreBounded() {
        var h = Harness()
        let limit = UInt64(LeaseStateMachine.maxRepliesPerSession)
        var index: UInt64 = 1
        for sequence in 1...limit {
            let release = LeaseCommand.release(.init(leaseID: LeaseID("0000000000000001-00"), serviceID: "svc"))
            _ = h.fsm.apply(StampedCommand(release, stamp: h.clock, origin: ClientOrigin(clientID: "client:x", sequence: sequence, firstUnacknowledged: 1)), index: index)
            index += 1
        }
        let over = h.fsm.apply(StampedCommand(h.createCommand(key("a")), stamp: h.clock,
                                              origin: ClientOrigin(clientID: "client:x", sequence: limit + 1, firstUnacknowledged: 1)), index: index)
        #expect(over.error?.code == .resourceExhausted)
        #expect(allLeases(h.fsm).isEmpty)
        let acknowledged = h.fsm.apply(StampedCommand(h.createCommand(key("a")), stamp: h.clock,
                                                      origin: ClientOrigin(clientID: "client:x", sequence: limit + 1, firstUnacknowledged: limit)), index: index + 1)
        #expect(acknowledged.createdLease != nil)
    }
}
