import LeaseFSM
import Server
import Testing

/// Client sessions (`ClientOrigin`): a retried write applies at most once and
/// gets its first answer; acknowledged sequences are refused.
@Suite("Lease store contract: client sessions")
struct SessionContractTests {
    static func origin(_ sequence: UInt64, acknowledged: UInt64 = 1) -> ClientOrigin {
        ClientOrigin(clientID: "client:contract", sequence: sequence, firstUnacknowledged: acknowledged)
    }

    @Test("the same origin twice applies once and answers the first answer again", arguments: Backend.allCases)
    func retriedCreateAppliesOnce(_ backend: Backend) async throws {
        try await backend.run { b in
            let first = try await b.create("o1", origin: Self.origin(1))
            // The retry may even differ (a client bug): it still gets the first answer.
            let retried = try await b.create("o2", service: "other", origin: Self.origin(1))
            #expect(retried == first)
            #expect(try await b.listAll() == [first.id])
            let summary = try await b.summary()
            #expect(summary.stats.created == 1)
            #expect(summary.activeLeases == 1)
            #expect(summary.activeByService == ["svc": 1])
            #expect(summary.activeByType == [.databaseRow: 1])
            // And a command without an origin applies every time.
            try await b.create("o1")
            #expect(try await b.summary().activeLeases == 2)
        }
    }

    @Test("a retried release answers its first answer, a refusal included", arguments: Backend.allCases)
    func retriedRefusalIsRemembered(_ backend: Backend) async throws {
        try await backend.run { b in
            let lease = try await b.create("o1")
            let refusal = notHolderError(lease.id, caller: "intruder", verb: "release")
            #expect(await leaseError { try await b.release(lease.id, service: "intruder", origin: Self.origin(1)) } == refusal)
            // The same sequence again, now from the holder: still the first answer.
            #expect(await leaseError { try await b.release(lease.id, service: "svc", origin: Self.origin(1)) } == refusal)
            #expect(try await b.detail(lease.id)?.lease.state == .active)

            let released = try await b.release(lease.id, origin: Self.origin(2))
            #expect(try await b.release(lease.id, origin: Self.origin(2)) == released, "a retried success is answered again")
            #expect(try await b.summary().stats.released == 1)
        }
    }

    @Test("a sequence below first_unacknowledged is refused and not applied", arguments: Backend.allCases)
    func acknowledgedSequenceIsRefused(_ backend: Backend) async throws {
        try await backend.run { b in
            try await b.create("o1", origin: Self.origin(1))
            try await b.create("o2", origin: Self.origin(2, acknowledged: 2))
            let stale = LeaseError(.failedPrecondition,
                                   "command 1 of session client:contract was already answered; it was not applied again")
            #expect(await leaseError { try await b.create("o3", origin: Self.origin(1, acknowledged: 2)) } == stale)
            #expect(await leaseError { try await b.create("o3", origin: Self.origin(1, acknowledged: 1)) } == stale,
                    "an acknowledgement is never taken back")
            // Sequence 2 is still remembered.
            let second = try await b.create("o9", origin: Self.origin(2, acknowledged: 2))
            #expect(second.object.id == "o2")
            #expect(try await b.summary().stats.created == 2)
        }
    }
}
