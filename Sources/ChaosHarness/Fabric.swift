import GCProto
import GRPCCore
import Raft
import Server
import Synchronization

/// The network between in-process nodes, with the faults the harness
/// injects: cut links (symmetric or one-way partitions), message loss,
/// duplication, delay and reordering, dead and paused nodes.
///
/// Traffic to a node (Raft messages, forwarded writes and their replies)
/// goes into its inbox and is received in order by one task per node, as
/// over a stream; a paused node's traffic (both ways) is held and released
/// when it resumes, like a stopped process's sockets. Each item meets the
/// faults on its own, so a forwarded write can be lost, duplicated or
/// delayed, and its answer lost, as any message.
final class Fabric: Sendable {
    /// Random message faults while a lossy fault is on.
    struct Loss: Sendable {
        var drop = 0.0
        var duplicate = 0.0
        /// Probability of holding a message back 1–4 ticks (reorders it).
        var delay = 0.0
        /// Probability a forwarded write's answer is lost (besides `drop`).
        var loseReply = 0.0
    }

    /// What one node receives in one go: who sent it, and what.
    typealias Delivery = (from: NodeID, traffic: [PeerTraffic])

    private struct Inbox {
        var incarnation: Int
        var continuation: AsyncStream<Delivery>.Continuation
    }

    private struct State {
        var cut: Set<Link> = []
        var loss = Loss()
        var random: Raft.SplitMix64
        var tick: UInt64 = 0
        var delayed: [(due: UInt64, from: String, to: String, traffic: [PeerTraffic])] = []
        var paused: Set<String> = []
        /// Traffic held for (to or from) a paused node.
        var held: [(from: String, to: String, traffic: [PeerTraffic])] = []
        var inboxes: [String: Inbox] = [:]
        /// Batches in each node's inbox not yet received.
        var inFlight: [String: Int] = [:]
        var dropped = 0
        var duplicated = 0
        var delayedCount = 0
    }

    struct Link: Hashable, Sendable {
        var from: String
        var to: String
    }

    let names: [NodeID: String]
    let ids: [String: NodeID]
    private let state: Mutex<State>

    init(members: [ClusterMember], seed: UInt64) {
        names = Dictionary(uniqueKeysWithValues: members.map { ($0.id, $0.name) })
        ids = Dictionary(uniqueKeysWithValues: members.map { ($0.name, $0.id) })
        state = Mutex(State(random: Raft.SplitMix64(seed: seed)))
    }

    // MARK: Faults

    func cut(from: String, to: String) { _ = state.withLock { $0.cut.insert(Link(from: from, to: to)) } }

    func healLinks() { state.withLock { $0.cut.removeAll() } }

    func setLoss(_ loss: Loss) { state.withLock { $0.loss = loss } }

    func isCut(from: String, to: String) -> Bool { state.withLock { $0.cut.contains(Link(from: from, to: to)) } }

    func pause(_ node: String) { _ = state.withLock { $0.paused.insert(node) } }

    func isPaused(_ node: String) -> Bool { state.withLock { $0.paused.contains(node) } }

    /// Resumes `node` and delivers what was held for it and from it.
    func resume(_ node: String) {
        let release = state.withLock { s -> [(from: String, to: String, traffic: [PeerTraffic])] in
            s.paused.remove(node)
            let ready = s.held.filter { !s.paused.contains($0.from) && !s.paused.contains($0.to) }
            s.held.removeAll { !s.paused.contains($0.from) && !s.paused.contains($0.to) }
            return ready
        }
        for batch in release { enqueue(batch.traffic, from: batch.from, to: batch.to) }
    }

    var counters: (dropped: Int, duplicated: Int, delayed: Int) {
        state.withLock { ($0.dropped, $0.duplicated, $0.delayedCount) }
    }

    // MARK: Nodes

    /// Connects a (re)started node: messages to it go to `continuation`.
    func attach(_ node: String, incarnation: Int, continuation: AsyncStream<Delivery>.Continuation) {
        state.withLock {
            $0.inboxes[node] = Inbox(incarnation: incarnation, continuation: continuation)
            $0.inFlight[node] = 0
        }
    }

    /// Disconnects a killed node: nothing more reaches it or leaves it.
    func detach(_ node: String) {
        let inbox = state.withLock { s -> Inbox? in
            // What it had not received yet dies with it.
            s.inFlight[node] = 0
            return s.inboxes.removeValue(forKey: node)
        }
        inbox?.continuation.finish()
    }

    func isAttached(_ node: String, incarnation: Int) -> Bool {
        state.withLock { $0.inboxes[node]?.incarnation == incarnation }
    }

    /// Called by a node's receiving task once it handled a batch.
    func received(by node: String, incarnation: Int) {
        state.withLock { s in
            guard s.inboxes[node]?.incarnation == incarnation else { return }
            s.inFlight[node, default: 0] -= 1
        }
    }

    /// Batches handed to live nodes' inboxes and not yet received.
    var inFlight: Int { state.withLock { $0.inFlight.values.reduce(0, +) } }

    // MARK: Traffic

    /// Sends `traffic` from `sender` (incarnation `incarnation`) to `to`.
    func send(_ traffic: [PeerTraffic], from sender: String, to: NodeID, incarnation: Int) {
        guard isAttached(sender, incarnation: incarnation), let receiver = names[to] else { return }
        route(traffic, from: sender, to: receiver)
    }

    private func route(_ traffic: [PeerTraffic], from: String, to: String) {
        var now: [PeerTraffic] = []
        var twice: [PeerTraffic] = []
        let hold = state.withLock { s -> Bool in
            if s.cut.contains(Link(from: from, to: to)) {
                s.dropped += traffic.count
                return true
            }
            if s.paused.contains(from) || s.paused.contains(to) {
                s.held.append((from, to, traffic))
                return true
            }
            for item in traffic {
                if s.loss.drop > 0, Double.random(in: 0..<1, using: &s.random) < s.loss.drop {
                    s.dropped += 1
                    continue
                }
                if case .reply = item, s.loss.loseReply > 0, Double.random(in: 0..<1, using: &s.random) < s.loss.loseReply {
                    s.dropped += 1
                    continue
                }
                if s.loss.delay > 0, Double.random(in: 0..<1, using: &s.random) < s.loss.delay {
                    s.delayedCount += 1
                    s.delayed.append((s.tick + UInt64.random(in: 1...4, using: &s.random), from, to, [item]))
                    continue
                }
                now.append(item)
                if s.loss.duplicate > 0, Double.random(in: 0..<1, using: &s.random) < s.loss.duplicate {
                    s.duplicated += 1
                    twice.append(item)
                }
            }
            return false
        }
        guard !hold else { return }
        if !now.isEmpty { enqueue(now, from: from, to: to) }
        if !twice.isEmpty { enqueue(twice, from: from, to: to) }
    }

    private func enqueue(_ traffic: [PeerTraffic], from: String, to: String) {
        guard let sender = ids[from] else { return }
        let inbox = state.withLock { s -> Inbox? in
            guard let inbox = s.inboxes[to] else { return nil }
            s.inFlight[to, default: 0] += 1
            return inbox
        }
        guard let inbox else { return }
        if case .enqueued = inbox.continuation.yield((sender, traffic)) { return }
        received(by: to, incarnation: inbox.incarnation)
    }

    /// Advances the fabric's tick and delivers delayed messages now due.
    func tick() {
        let due = state.withLock { s -> [(due: UInt64, from: String, to: String, traffic: [PeerTraffic])] in
            s.tick += 1
            let ready = s.delayed.filter { $0.due <= s.tick }
            s.delayed.removeAll { $0.due <= s.tick }
            return ready
        }
        for batch in due { route(batch.traffic, from: batch.from, to: batch.to) }
    }

    /// Delivers everything delayed now (used when healing at the end).
    func flushDelayed() {
        let due = state.withLock { s -> [(due: UInt64, from: String, to: String, traffic: [PeerTraffic])] in
            defer { s.delayed.removeAll() }
            return s.delayed
        }
        for batch in due { route(batch.traffic, from: batch.from, to: batch.to) }
    }

}

/// One node's view of the ``Fabric``: the ``PeerNetwork`` its store uses.
struct ChaosNetwork: PeerNetwork {
    let local: ClusterMember
    let incarnation: Int
    let fabric: Fabric
    let members: [ClusterMember]

    func send(_ traffic: [PeerTraffic], to peer: NodeID) -> Bool {
        fabric.send(traffic, from: local.name, to: peer, incarnation: incarnation)
        return true
    }
    func takeUnreachable() -> Set<NodeID> { [] }
    func member(_ id: NodeID) -> ClusterMember? { members.first { $0.id == id } }
    var peers: [ClusterMember] { members.filter { $0.id != local.id } }
    func addMember(_ member: ClusterMember) {}
    func removeMember(_ id: NodeID) {}

    func status(of id: NodeID, timeout: Duration) async throws -> DistributedGc_Raft_PeerStatusResponse {
        throw RPCError(code: .unimplemented, message: "not in the chaos network")
    }

    func admin(_ request: DistributedGc_Raft_AdminRequest, to leader: NodeID, timeout: Duration) async throws -> DistributedGc_Raft_AdminResponse {
        throw RPCError(code: .unimplemented, message: "not in the chaos network")
    }
}
