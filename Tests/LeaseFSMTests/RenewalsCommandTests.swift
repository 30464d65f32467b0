import Testing
@testable import LeaseFSM

/// `LeaseCommand.renewals`: the `KeepAlive` batcher's entry, renewals of many
/// services where each item fails or succeeds on its own by the single
/// renew's rules.
@Suite("Renewals command")
struct RenewalsCommandTests {
    typealias Renewal = LeaseCommand.Renewal

    @Test("each item gets its own result, in order, with the rules and codes of a single renew")
    func perItemResults() throws {
        var h = Harness()
        let a = try h.create(key("a"), service: "orders", duration: 60)
        let b = try h.create(key("b"), service: "billing", duration: 120)
        let released = try h.create(key("c"), service: "orders")
        try h.release(released.id, service: "orders")
        let overdue = try h.create(key("d"), service: "orders", duration: 30)
        h.advance(seconds: 40)  // `overdue` expired 10 s ago, not yet reaped
        let index = h.nextIndex
        let out = h.apply(.renewals([
            Renewal(leaseID: a.id, serviceID: "orders", extendSeconds: 90),
            Renewal(leaseID: LeaseID("0000000000000099-ff"), serviceID: "orders"),
            Renewal(leaseID: b.id, serviceID: "orders"),  // billing's lease
            Renewal(leaseID: released.id, serviceID: "orders"),
            Renewal(leaseID: overdue.id, serviceID: "orders"),
            Renewal(leaseID: b.id, serviceID: "billing"),  // its own duration
            Renewal(leaseID: a.id, serviceID: "", extendSeconds: 90),
            Renewal(leaseID: a.id, serviceID: "orders", extendSeconds: 1),  // below the minimum
        ]))
        guard case .success(.renewals(let results)) = out.result else {
            Issue.record("got \(out.result)")
            return
        }
        try #require(results.count == 8)
        #expect(results[0] == .success(Renewed(expiresAt: t0.plus(seconds: 40 + 90), fencingToken: index)))
        #expect(results[1].error?.code == .notFound)
        #expect(results[2].error?.code == .permissionDenied)
        #expect(results[2].error?.field == "service_id")
        #expect(results[3].error?.code == .failedPrecondition)
        #expect(results[4].error?.code == .failedPrecondition)
        #expect(results[5] == .success(Renewed(expiresAt: t0.plus(seconds: 40 + 120), fencingToken: index)))
        #expect(results[6].error?.code == .invalidArgument)
        #expect(results[6].error?.field == "service_id")
        #expect(results[7].error?.code == .invalidArgument)
        #expect(results[7].error?.field == "extend_duration_seconds")

        // The two good items renewed; the state holds what they answered.
        #expect(h.fsm.lease(a.id)?.expiresAt == t0.plus(seconds: 130))
        #expect(h.fsm.lease(a.id)?.fencingToken == index)
        #expect(h.fsm.lease(b.id)?.expiresAt == t0.plus(seconds: 160))
        #expect(h.fsm.lease(a.id)?.renewalCount == 1)
        #expect(h.fsm.stats.renewed == 2)
        #expect(out.events.map(\.kind) == [.renewed, .renewed])
        #expect(out.events.map(\.leaseID) == [a.id, b.id])
        #expect(out.events.map(\.position) == [0, 1])
    }

    @Test("an item answers exactly as a single renew of its lease would")
    func sameAsSingleRenew() throws {
        func twoLeases() throws -> Harness {
            var h = Harness()
            _ = try h.create(key("x"), service: "s", duration: 60, suffix: "a")
            _ = try h.create(key("y"), service: "t", duration: 60, suffix: "b")
            h.advance(seconds: 30)
            return h
        }
        var batched = try twoLeases()
        var single = try twoLeases()
        let ids = [LeaseID(index: 1, suffix: "a"), LeaseID(index: 2, suffix: "b")]
        // Renewed, another service's, renewed by 30 s, then unknown.
        let cases: [(LeaseID, String, UInt64)] = [(ids[0], "s", 0), (ids[1], "s", 0), (ids[1], "t", 30), (LeaseID("z"), "s", 0)]
        for (id, service, extend) in cases {
            let viaRenewals = batched.apply(.renewals([Renewal(leaseID: id, serviceID: service, extendSeconds: extend)]))
            let viaRenew = single.apply(.renew(.init(leaseIDs: [id], serviceID: service, extendSeconds: extend)))
            guard case .success(.renewals(let results)) = viaRenewals.result,
                  let outcome = viaRenew.renewOutcomes?.first else {
                Issue.record("unexpected results \(viaRenewals.result) / \(viaRenew.result)")
                continue
            }
            #expect(results.count == 1)
            #expect(results.first == outcome.result.map { Renewed(expiresAt: $0.expiresAt, fencingToken: $0.fencingToken) })
            #expect(viaRenewals.events == viaRenew.events)
        }
        #expect(batched.fsm == single.fsm)
    }

    @Test("a failing item leaves the state as if only the other items had been sent")
    func failingItemDoesNotAffectOthers() throws {
        var withBad = Harness()
        var without = Harness()
        let a = try withBad.create(key("a"), service: "s", suffix: "a")
        _ = try without.create(key("a"), service: "s", suffix: "a")
        withBad.advance(seconds: 10)
        without.advance(seconds: 10)
        let good = Renewal(leaseID: a.id, serviceID: "s", extendSeconds: 100)
        withBad.apply(.renewals([Renewal(leaseID: a.id, serviceID: "intruder"), good,
                                 Renewal(leaseID: LeaseID("nope"), serviceID: "s")]))
        without.apply(.renewals([good]))
        #expect(withBad.fsm == without.fsm)
        #expect(Observation(withBad.fsm) == Observation(without.fsm))
    }

    @Test("an item repeated in one entry gets the first one's answer and renews once")
    func repeatedItem() throws {
        var h = Harness()
        let a = try h.create(service: "s")
        let item = Renewal(leaseID: a.id, serviceID: "s")
        let out = h.apply(.renewals([item, item]))
        guard case .success(.renewals(let results)) = out.result else {
            Issue.record("got \(out.result)")
            return
        }
        #expect(results.count == 2)
        #expect(results[0] == results[1])
        #expect(h.fsm.lease(a.id)?.renewalCount == 1)
        #expect(out.events.count == 1)
    }

    @Test("an entry with no items, or more than the limit, is refused whole")
    func entryBounds() throws {
        var h = Harness()
        let a = try h.create(service: "s")
        h.expectRefused(.renewals([]), .invalidArgument, field: "renewals")
        let many = Array(repeating: Renewal(leaseID: a.id, serviceID: "s"), count: LeaseLimits.maxRenewalsPerEntry + 1)
        h.expectRefused(.renewals(many), .invalidArgument, field: "renewals")
        #expect(h.fsm.limits.validate(.renewals(Array(many.dropLast()))) == nil)
    }

    @Test("renewals entries survive encoding, need command version 2, and leave older commands at version 1")
    func encoding() throws {
        let command = StampedCommand(.renewals([
            Renewal(leaseID: LeaseID("0000000000000001-a"), serviceID: "orders", extendSeconds: 60),
            Renewal(leaseID: LeaseID("0000000000000002-b"), serviceID: "billing"),
            Renewal(leaseID: LeaseID(""), serviceID: ""),
        ]), stamp: t0, origin: ClientOrigin(clientID: "node-1/ab", sequence: 7, firstUnacknowledged: 5))
        let bytes = command.encoded()
        let decoded = try StampedCommand(decoding: bytes)
        #expect(decoded == command)
        #expect(decoded.encoded() == bytes)
        // version (field 1) is the entry's first field.
        #expect(Array(bytes.prefix(2)) == [0x08, 0x02])
        let create = StampedCommand(.create(.init(leaseIDSuffix: "a", object: key("x"), serviceID: "s", durationSeconds: 60)), stamp: t0)
        #expect(Array(create.encoded().prefix(2)) == [0x08, 0x01])
    }

    @Test("an entry written before renewals existed still decodes")
    func oldEncodingDecodes() throws {
        // A version-1 renew entry as the previous release wrote it:
        // version 1, stamp 5, renew (field 11) { lease_ids ["x"], service_id "s", extend_seconds 7 }.
        let bytes: [UInt8] = [0x08, 0x01, 0x10, 0x05, 0x5a, 0x08, 0x0a, 0x01, 0x78, 0x12, 0x01, 0x73, 0x18, 0x07]
        let decoded = try StampedCommand(decoding: bytes)
        #expect(decoded == StampedCommand(.renew(.init(leaseIDs: [LeaseID("x")], serviceID: "s", extendSeconds: 7)),
                                          stamp: WallTime(milliseconds: 5)))
        #expect(decoded.encoded() == bytes)
    }

    @Test("the reply of a renewals entry survives its encoding, errors included")
    func replyEncoding() throws {
        let reply: Result<CommandResult, LeaseError> = .success(.renewals([
            .success(Renewed(expiresAt: t0, fencingToken: 42)),
            .failure(LeaseError(.notFound, "lease 'x' does not exist", field: "lease_id")),
            .failure(LeaseError(.failedPrecondition, "expired")),
            .success(Renewed(expiresAt: WallTime(milliseconds: -1), fencingToken: .max)),
        ]))
        #expect(try CommandReplyCoding.decode(CommandReplyCoding.encode(reply)) == reply)
        #expect(try CommandReplyCoding.decode(CommandReplyCoding.encode(.success(.renewals([])))) == .success(.renewals([])))
    }
}
