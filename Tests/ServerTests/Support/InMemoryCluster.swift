import GCProto
import GRPCCore
import LeaseFSM
import Raft
import Server
import Synchronization

/// Several ``RaftLeaseStore``s in one process, wired by an in-memory
/// ``PeerNetwork`` that can lose forwarded writes' answers. Traffic to each
/// node is delivered in order by one task per node.
final class InMemoryCluster: Sendable {
    let members: [ClusterMember]
    let clock = ManualWallClock()
    private let stores = Mutex<[NodeID: RaftLeaseStore]>([:])
    private let inboxes = Mutex<[NodeID: AsyncStream<(NodeID, [PeerTraffic])>.Continuation]>([:])
    private let repliesToLose = Mutex(0)
    /// Message batches handed to a node's inbox and not yet received.
    private let inFlight = Mutex(0)
    /// Nodes cut off from every other node (messages both ways are lost).
    private let isolated = Mutex<Set<NodeID>>([])
    private let ticking = Mutex(true)
    private let forwards = Mutex(0)

    /// Where the nodes persist (off the store, as a node does, unless a test says otherwise).
    let persistMode: PersistMode

    init(names: [String], persistMode: PersistMode = .offloaded(.shared, resumeOn: nil)) {
        self.persistMode = persistMode
        members = names.enumerated().map { ClusterMember(name: $1, host: "127.0.0.1", port: 1000 + $0) }
    }

    /// Cuts `id` off from the others (both directions), or heals it.
    func isolate(_ id: NodeID, _ cut: Bool = true) {
        isolated.withLock { if cut { $0.insert(id) } else { $0.remove(id) } }
    }

    /// Stops or restarts Raft's clock on every node.
    func setTicking(_ on: Bool) { ticking.withLock { $0 = on } }

    /// Forwarded writes the leader received (each retry counts).
    var forwardCount: Int { forwards.withLock { $0 } }

    /// The next `count` forwarded writes are applied by the leader, but their
    /// answers never reach the follower.
    func loseNextForwardReplies(_ count: Int) { repliesToLose.withLock { $0 = count } }

    func store(_ id: NodeID) throws -> RaftLeaseStore {
        guard let store = stores.withLock({ $0[id] }) else { throw TestFailure("no node \(id)") }
        return store
    }

    /// Builds the nodes, ticks them while `body` runs, then stops.
    ///
    /// Raft's clock only advances while no message is waiting to be
    /// received, so a busy machine (other tests running) cannot make
    /// election timeouts fire faster than votes are delivered.
    func run(_ body: ([RaftLeaseStore]) async throws -> Void) async throws {
        var built: [RaftLeaseStore] = []
        for (i, member) in members.enumerated() {
            let settings = ClusterSettings(
                local: member, bootstrapVoters: Set(members.map(\.id)), transport: Network(local: member, cluster: self),
                electionTicks: 10, tickInterval: .milliseconds(2), requestTimeout: .seconds(60))
            let store = try RaftLeaseStore(
                storage: MemoryStorage(), limits: LeaseLimits(), clock: clock, logger: quietLogger,
                cluster: settings, seed: UInt64(i + 1), persistMode: persistMode)
            try await store.start()
            built.append(store)
            stores.withLock { $0[member.id] = store }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for store in built {
                let (stream, continuation) = AsyncStream.makeStream(of: (NodeID, [PeerTraffic]).self)
                inboxes.withLock { $0[store.cluster.local.id] = continuation }
                group.addTask {
                    for await (sender, traffic) in stream {
                        await store.receive(traffic, from: sender)
                        self.inFlight.withLock { $0 -= 1 }
                    }
                }
            }
            let all = built
            group.addTask {
                while !Task.isCancelled {
                    if self.inFlight.withLock({ $0 }) == 0, self.ticking.withLock({ $0 }) {
                        for store in all { await store.tick() }
                    }
                    try await Task.sleep(for: .milliseconds(1))
                }
            }
            try await body(built)
            for continuation in inboxes.withLock({ Array($0.values) }) { continuation.finish() }
            group.cancelAll()
        }
    }

    /// Waits (bounded) until a node leads; returns it. The bound is generous:
    /// the CPU-bound Raft simulation suites can hold both cooperative threads
    /// for tens of seconds while the whole test run is in parallel.
    func waitForLeader(timeout: Duration = .seconds(120)) async throws -> RaftLeaseStore {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for store in stores.withLock({ Array($0.values) }) where await store.status().role == .leader {
                return store
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw TestFailure("no leader within \(timeout)")
    }

    fileprivate func deliver(_ traffic: [PeerTraffic], from sender: NodeID, to id: NodeID) {
        let cut = isolated.withLock { $0.contains(sender) || $0.contains(id) }
        guard !cut, let inbox = inboxes.withLock({ $0[id] }) else { return }
        var traffic = traffic
        forwards.withLock { $0 += traffic.count { if case .forward = $0 { true } else { false } } }
        traffic.removeAll { item in
            guard case .reply = item else { return false }
            return repliesToLose.withLock { count in
                defer { count = max(0, count - 1) }
                return count > 0
            }
        }
        guard !traffic.isEmpty else { return }
        inFlight.withLock { $0 += 1 }
        if case .enqueued = inbox.yield((sender, traffic)) { return }
        inFlight.withLock { $0 -= 1 }
    }

    struct Network: PeerNetwork {
        let local: ClusterMember
        let cluster: InMemoryCluster

        func send(_ traffic: [PeerTraffic], to peer: NodeID) -> Bool {
            cluster.deliver(traffic, from: local.id, to: peer)
            return true
        }
        func takeUnreachable() -> Set<NodeID> { [] }
        func member(_ id: NodeID) -> ClusterMember? { cluster.members.first { $0.id == id } }
        var peers: [ClusterMember] { cluster.members.filter { $0.id != local.id } }
        func addMember(_ member: ClusterMember) {}
        func removeMember(_ id: NodeID) {}
        func status(of id: NodeID, timeout: Duration) async throws -> DistributedGc_Raft_PeerStatusResponse {
            throw RPCError(code: .unimplemented, message: "not in this test network")
        }
        func admin(_ request: DistributedGc_Raft_AdminRequest, to leader: NodeID, timeout: Duration) async throws -> DistributedGc_Raft_AdminResponse {
            throw RPCError(code: .unimplemented, message: "not in this test network")
        }
    }
}
