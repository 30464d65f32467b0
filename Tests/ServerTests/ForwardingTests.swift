import GCProto
import LeaseFSM
import Raft
@testable import Server
import Synchronization
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

    @Test("a reply from a node the write did not go to is refused; the caller gets the leader's answer")
    func forgedReplyIsRefused() async throws {
        let cluster = InMemoryCluster(names: ["a", "b", "c"])
        try await cluster.run { stores in
            let leader = try await cluster.waitForLeader()
            let followers = stores.filter { $0 !== leader }
            let (follower, other) = (followers[0], followers[1])
            // The first answer is lost, so the write waits long enough for
            // the forged reply to arrive first.
            cluster.loseNextForwardReplies(1)
            let write = Task { try await follower.propose(Self.create("row-forged")) }
            let deadline = ContinuousClock.now + .seconds(60)
            while cluster.forwardCount == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
            let forged = CommandReplyCoding.encode(.failure(LeaseError(.notFound, "forged")))
            for id in UInt64(1)...4 {
                await follower.receive([.reply(ForwardedReply(id: id, outcome: .reply(forged)))], from: other.cluster.local.id)
            }
            guard case .created(let lease) = try await write.value else { throw TestFailure("not created") }
            #expect(lease.object.id == "row-forged")
            #expect(follower.refusals.byReason["unexpected_reply"] == 4)
            #expect(try await leader.read(.linearizable) { $0.stats.created } == 1)
        }
    }

    @Test("a write forwarded by a node that is not a member is refused and not applied")
    func forwardFromNonMemberIsRefused() async throws {
        let cluster = InMemoryCluster(names: ["a", "b", "c"])
        try await cluster.run { _ in
            let leader = try await cluster.waitForLeader()
            let origin = ClientOrigin(clientID: "intruder", sequence: 1, firstUnacknowledged: 1)
            let command = StampedCommand(Self.create("row-intruder"), stamp: .zero, origin: origin).encoded()
            await leader.receive([.forward(ForwardedWrite(id: 1, command: command))], from: 0xdead_beef)
            #expect(leader.refusals.byReason["forward_from_non_member"] == 1)
            #expect(try await leader.read(.linearizable) { $0.stats.created } == 0)
        }
    }

    @Test("writes queued in the peer inbox past its limit all reach the store, each once")
    func peerInboxLosesNothingWhenFull() async throws {
        let cluster = InMemoryCluster(names: ["a", "b", "c"])
        try await cluster.run { stores in
            let leader = try await cluster.waitForLeader()
            let follower = try #require(stores.first { $0 !== leader }).cluster.local.id
            let inbox = PeerInbox(store: leader, limit: 2)
            await withTaskGroup(of: Void.self) { group in
                for i in 1...40 {
                    group.addTask {
                        let origin = ClientOrigin(clientID: "inbox", sequence: UInt64(i), firstUnacknowledged: 1)
                        let command = StampedCommand(Self.create("row-inbox-\(i)"), stamp: .zero, origin: origin).encoded()
                        await inbox.deliver([.forward(ForwardedWrite(id: UInt64(i), command: command))], from: follower)
                    }
                }
            }
            let deadline = ContinuousClock.now + .seconds(60)
            while try await leader.read(.stale, { $0.stats.created }) < 40, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(2))
            }
            #expect(try await leader.read(.linearizable) { $0.stats.created } == 40)
        }
    }

    @Test("the forwarding retry loop waits by the node's injected clock, not real time")
    func forwardingWaitsByTheInjectedClock() async throws {
        let clock = SkippingClock()
        let members = ["a", "b", "c"].enumerated().map { ClusterMember(name: $1, host: "127.0.0.1", port: 2000 + $0) }
        var settings = ClusterSettings(local: members[0], bootstrapVoters: Set(members.map(\.id)), transport: RecordingNetwork(members: members),
                                       electionTicks: 10, tickInterval: .seconds(1), requestTimeout: .seconds(3600))
        settings.time = TimeSource(clock)
        let store = try RaftLeaseStore(storage: MemoryStorage(), limits: LeaseLimits(), clock: ManualWallClock(), logger: quietLogger, cluster: settings)
        try await store.start()
        let started = ContinuousClock.now
        await #expect(throws: StoreError.self) { _ = try await store.propose(Self.create("row-nobody")) }
        #expect(clock.slept >= .seconds(3599), "it waited out the request timeout on the injected clock")
        #expect(ContinuousClock.now - started < .seconds(60), "not in real time")
    }
}

/// A clock whose sleeps return at once, having moved its time on.
final class SkippingClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
    }

    private let time = Mutex(Duration.zero)
    var now: Instant { Instant(offset: time.withLock { $0 }) }
    var minimumResolution: Duration { .nanoseconds(1) }
    var slept: Duration { time.withLock { $0 } }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        time.withLock { $0 = max($0, deadline.offset) }
        await Task.yield()
    }
}
