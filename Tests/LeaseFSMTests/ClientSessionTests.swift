import Testing
@testable import LeaseFSM

@Suite("Client sessions (exactly-once retries)")
struct ClientSessionTests {
    private func origin(_ sequence: UInt64, firstUnacknowledged: UInt64 = 1, client: String = "n2/abc") -> ClientOrigin {
        ClientOrigin(clientID: client, sequence: sequence, firstUnacknowledged: firstUnacknowledged)
    }

    @Test("a retried create applies once and returns the first reply")
    func retriedCreateAppliesOnce() throws {
        var h = Harness()
        let command = h.createCommand(key("row"))
        let first = h.fsm.apply(StampedCommand(command, stamp: h.clock, origin: origin(1)), index: 1)
        let retry = h.fsm.apply(StampedCommand(command, stamp: h.clock.plus(seconds: 1), origin: origin(1)), index: 2)
        let lease = try #require(first.createdLease)
        #expect(retry.result == first.result)
        #expect(retry.events.isEmpty)
        #expect(allLeases(h.fsm).count == 1)
        #expect(h.fsm.stats.created == 1)
        #expect(h.fsm.lease(lease.id) != nil)
    }

    @Test("a retried renew does not extend twice or mint a second fencing token")
    func retriedRenewAppliesOnce() throws {
        var h = Harness()
        let lease = try h.create(key("row"), duration: 60)
        let renew = LeaseCommand.renew(.init(leaseIDs: [lease.id], serviceID: "svc"))
        let first = h.fsm.apply(StampedCommand(renew, stamp: h.clock, origin: origin(7)), index: 10)
        let again = h.fsm.apply(StampedCommand(renew, stamp: h.clock.plus(seconds: 5), origin: origin(7)), index: 11)
        #expect(again.result == first.result)
        #expect(h.fsm.lease(lease.id)?.fencingToken == 10)
        #expect(h.fsm.stats.renewed == 1)
    }

    @Test("different sequences of one session are distinct commands")
    func distinctSequencesApply() {
        var h = Harness()
        _ = h.fsm.apply(StampedCommand(h.createCommand(key("a")), stamp: h.clock, origin: origin(1)), index: 1)
        _ = h.fsm.apply(StampedCommand(h.createCommand(key("b")), stamp: h.clock, origin: origin(2)), index: 2)
        #expect(allLeases(h.fsm).count == 2)
    }

    @Test("a refusal is remembered too: the retry gets the same error")
    func refusalIsReplayed() {
        var h = Harness()
        let release = LeaseCommand.release(.init(leaseID: LeaseID("0000000000000001-00"), serviceID: "svc"))
        let first = h.fsm.apply(StampedCommand(release, stamp: h.clock, origin: origin(3)), index: 1)
        let again = h.fsm.apply(StampedCommand(release, stamp: h.clock, origin: origin(3)), index: 2)
        #expect(first.error?.code == .notFound)
        #expect(again.result == first.result)
    }

    @Test("acknowledged replies are forgotten; replaying one is refused, not re-applied")
    func acknowledgedRepliesAreForgotten() {
        var h = Harness()
        _ = h.fsm.apply(StampedCommand(h.createCommand(key("a")), stamp: h.clock, origin: origin(1)), index: 1)
        _ = h.fsm.apply(StampedCommand(h.createCommand(key("b")), stamp: h.clock, origin: origin(2, firstUnacknowledged: 2)), index: 2)
        #expect(h.fsm.sessions["n2/abc"]?.replies.keys.sorted() == [2])
        let stale = h.fsm.apply(StampedCommand(h.createCommand(key("a")), stamp: h.clock, origin: origin(1, firstUnacknowledged: 2)), index: 3)
        #expect(stale.error?.code == .failedPrecondition)
        #expect(allLeases(h.fsm).count == 2)
    }

    @Test("sessions survive a snapshot, so a retry after restore still applies once")
    func sessionsSurviveSnapshots() throws {
        var h = Harness()
        let command = h.createCommand(key("row"))
        let first = h.fsm.apply(StampedCommand(command, stamp: h.clock, origin: origin(1)), index: 1)
        var restored = try LeaseStateMachine(snapshot: h.fsm.snapshot(), limits: h.limits)
        #expect(restored == h.fsm)
        let retry = restored.apply(StampedCommand(command, stamp: h.clock, origin: origin(1)), index: 2)
        #expect(retry.result == first.result)
        #expect(allLeases(restored).count == 1)
    }

    @Test("idle sessions are forgotten after the idle limit")
    func idleSessionsAreForgotten() {
        var h = Harness()
        _ = h.fsm.apply(StampedCommand(h.createCommand(key("a")), stamp: h.clock, origin: origin(1)), index: 1)
        #expect(h.fsm.sessionCount == 1)
        let later = h.clock.plus(ms: LeaseStateMachine.sessionIdleLimitMilliseconds + 1000)
        _ = h.fsm.apply(StampedCommand(h.createCommand(key("b")), stamp: later), index: 256)
        #expect(h.fsm.sessionCount == 0)
    }

    @Test("origins survive the log encoding")
    func originRoundTrips() throws {
        var h = Harness()
        let stamped = StampedCommand(h.createCommand(key("a")), stamp: h.clock, origin: origin(9, firstUnacknowledged: 4))
        #expect(try StampedCommand(decoding: stamped.encoded()) == stamped)
        let plain = StampedCommand(h.createCommand(key("b")), stamp: h.clock)
        #expect(try StampedCommand(decoding: plain.encoded()).origin == nil)
    }

    @Test("every kind of reply survives its encoding")
    func repliesRoundTrip() throws {
        var h = try SnapshotTests.richState()
        let lease = try h.create(key("reply"), cleanup: httpCleanup("x"), metadata: ["k": "v"])
        let renewed = try h.renew([lease.id, LeaseID("missing-1")])
        let job = try h.makeJob(key("job"))
        let replies: [Result<CommandResult, LeaseError>] = [
            .success(.created(lease)),
            .success(.renewed(renewed)),
            .success(.released(lease)),
            .success(.expired([lease.id])),
            .success(.cleanupRecorded(job)),
            .success(.cleanupRecorded(nil)),
            .success(.deadLettersRetried([1, 2])),
            .failure(LeaseError(.permissionDenied, "not yours", field: "service_id")),
            .failure(LeaseError(.resourceExhausted, "quota")),
        ]
        for reply in replies {
            #expect(try CommandReplyCoding.decode(CommandReplyCoding.encode(reply)) == reply)
        }
    }
}
