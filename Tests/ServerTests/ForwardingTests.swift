import LeaseFSM
import Raft
import Server
import Testing

/// Followers forward client writes to the leader under a client session,
/// so a retried forward applies once (three stores in one process).
@Suite("Forwarding writes to the leader")
struct ForwardingTests {
    static func create(_ object: String) -> LeaseCommand {
        .create(.init(leaseIDSuffix: "1", object: ObjectKey(type: .databaseRow, id: object), serviceID: "svc",
                      durationSeconds: 600, metadata: [:], cleanup: nil))
    }

    @Test("a write through a follower is applied by the leader and visible on every node")
    func followerWriteIsApplied() async throws {
        let cluster = InMemoryCluster(names: ["a", "b", "c"])
        try await cluster.run { stores in
            let leader = try await cluster.waitForLeader()
            let follower = try #require(stores.first { $0 !== leader })
            guard case .created(let lease) = try await follower.propose(Self.create("row-1")) else {
                throw TestFailure("not created")
            }
            for store in stores {
                let found = try await store.read(.linearizable) { $0.lease(lease.id) }
                #expect(found?.object.id == "row-1")
            }
        }
    }

    @Test("a forward whose answer is lost is retried with the same sequence and applied once")
    func lostAnswerIsAppliedOnce() async throws {
        let cluster = InMemoryCluster(names: ["a", "b", "c"])
        try await cluster.run { stores in
            let leader = try await cluster.waitForLeader()
            let follower = try #require(stores.first { $0 !== leader })
            cluster.loseNextForwardReplies(2)
            guard case .created(let lease) = try await follower.propose(Self.create("row-x")) else {
                throw TestFailure("not created")
            }
            #expect(cluster.forwardCount == 3, "two lost answers, then the one that arrived")
            let leases = try await leader.read(.linearizable) { machine in
                machine.listLeases(.init(objectID: "row-x"), after: nil, limit: 10).leases
            }
            #expect(leases.map(\.id) == [lease.id], "one lease, the one the client was told about")
            #expect(try await leader.read(.linearizable) { $0.stats.created } == 1)
        }
    }

    @Test("the leader's own commands are never forwarded")
    func leaderCommandsAreNotForwarded() async throws {
        let cluster = InMemoryCluster(names: ["a", "b", "c"])
        try await cluster.run { stores in
            let leader = try await cluster.waitForLeader()
            let follower = try #require(stores.first { $0 !== leader })
            await #expect(throws: StoreError.self) {
                _ = try await follower.propose(.expire(.init(leaseIDs: [LeaseID("0000000000000001-1")])))
            }
            #expect(cluster.forwardCount == 0)
        }
    }
}
