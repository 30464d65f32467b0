import Testing
@testable import LeaseFSM

@Suite("Time and events")
struct ClockAndEventTests {
    @Test("now is the largest stamp applied: an older stamp does not move it back")
    func nowIsMonotonic() throws {
        var h = Harness()
        _ = try h.create(key("a"), stamp: t0.plus(seconds: 100))
        #expect(h.fsm.now == t0.plus(seconds: 100))
        let late = try h.create(key("b"), duration: 60, stamp: t0.plus(seconds: 50))
        #expect(h.fsm.now == t0.plus(seconds: 100))
        // The older stamp is not used for the lease either.
        #expect(late.createdAt == t0.plus(seconds: 100))
        #expect(late.expiresAt == t0.plus(seconds: 160))
        let renewed = try h.renew(late.id, stamp: t0.plus(seconds: 20)).get()
        #expect(renewed.expiresAt == t0.plus(seconds: 160))
        #expect(renewed.lastRenewedAt == t0.plus(seconds: 100))
        _ = try h.create(key("c"), stamp: t0.plus(seconds: 101))
        #expect(h.fsm.now == t0.plus(seconds: 101))
    }

    @Test("an older stamp cannot make a lapsed lease renewable again")
    func olderStampCannotRevive() throws {
        var h = Harness()
        let lease = try h.create(duration: 30)
        h.advance(seconds: 40)
        _ = try h.create(key("other"))
        #expect(try h.renew(lease.id, stamp: t0.plus(seconds: 10)).error?.code == .failedPrecondition)
    }

    @Test("appliedIndex follows the commands' indexes, gaps and skipped entries included")
    func appliedIndex() throws {
        var h = Harness()
        #expect(h.fsm.appliedIndex == 0)
        _ = try h.create(key("a"))
        #expect(h.fsm.appliedIndex == 1)
        h.skip(to: 10)
        #expect(h.fsm.appliedIndex == 9)
        h.apply(.expire(.init(leaseIDs: [])))  // refused, still applied
        #expect(h.fsm.appliedIndex == 10)
        var fsm = h.fsm
        _ = fsm.apply(StampedCommand(.expire(.init(leaseIDs: [LeaseID("x")])), stamp: t0), index: 25)
        #expect(fsm.appliedIndex == 25)
    }

    @Test("events carry the command's index and positions 0, 1, 2… in order")
    func eventPositions() throws {
        var h = Harness()
        _ = try h.makeJob(key("x"))
        let ids = try (0..<4).map { i in try h.create(key("o\(i)"), duration: 30).id }
        h.advance(seconds: 100)
        h.skip(to: 50)
        let out = h.apply(.expire(.init(leaseIDs: ids)))
        #expect(out.events.count == 4)
        #expect(out.events.map(\.position) == [0, 1, 2, 3])
        #expect(out.events.allSatisfy { $0.index == 50 })
        let create = h.apply(h.createCommand(key("x")))
        #expect(create.events.map(\.position) == [0, 1])
        #expect(create.events.allSatisfy { $0.index == 51 })
    }

    @Test("a refused command emits no event")
    func refusedNoEvents() throws {
        var h = Harness()
        let out = h.apply(.release(.init(leaseID: LeaseID("missing"), serviceID: "svc")))
        #expect(out.error?.code == .notFound)
        #expect(out.events.isEmpty)
    }

    @Test("WallTime arithmetic saturates instead of trapping")
    func wallTimeSaturates() {
        #expect(WallTime(milliseconds: .max - 5).adding(milliseconds: 10).milliseconds == .max)
        #expect(WallTime(milliseconds: .min + 5).adding(milliseconds: -10).milliseconds == .min)
        #expect(WallTime(milliseconds: 1).adding(seconds: .max).milliseconds > 0)
        #expect(WallTime(seconds: 2).adding(seconds: 3) == WallTime(milliseconds: 5000))
    }

    @Test("error codes print as gRPC status names")
    func codeNames() {
        #expect(LeaseError.Code.invalidArgument.description == "INVALID_ARGUMENT")
        #expect(LeaseError.Code.notFound.description == "NOT_FOUND")
        #expect(LeaseError.Code.permissionDenied.description == "PERMISSION_DENIED")
        #expect(LeaseError.Code.failedPrecondition.description == "FAILED_PRECONDITION")
        #expect(LeaseError.Code.resourceExhausted.description == "RESOURCE_EXHAUSTED")
        #expect(LeaseError.Code.alreadyExists.description == "ALREADY_EXISTS")
    }
}
