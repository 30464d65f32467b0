import GCProto
import Raft

/// How a node reaches the other members: Raft messages and forwarded writes
/// one way (``PeerTraffic``), and the peer protocol's unary calls. ``PeerTransport`` is the gRPC one; tests and
/// the chaos harness put an in-memory, fault-injecting one in its place.
public protocol PeerNetwork: Sendable {
    /// Queues `traffic` to `peer` without waiting, in order; undeliverable
    /// items are dropped (Raft treats them as lost; a follower retries its
    /// forwarded writes). Returns false if some of it was dropped at once.
    @discardableResult
    func send(_ traffic: [PeerTraffic], to peer: NodeID) -> Bool
    /// Peers found unreachable since the last call.
    func takeUnreachable() -> Set<NodeID>
    /// The member with Raft id `id`, this node included, if its address is known.
    func member(_ id: NodeID) -> ClusterMember?
    /// The other members whose addresses are known.
    var peers: [ClusterMember] { get }
    /// A configuration change added `member` (or changed its address).
    func addMember(_ member: ClusterMember)
    /// A configuration change removed the member `id`.
    func removeMember(_ id: NodeID)
    /// The status of member `id`, as it reports it.
    func status(of id: NodeID, timeout: Duration) async throws -> DistributedGc_Raft_PeerStatusResponse
    /// Hands a membership or leadership change to the leader `leader`.
    func admin(_ request: DistributedGc_Raft_AdminRequest, to leader: NodeID, timeout: Duration) async throws -> DistributedGc_Raft_AdminResponse
}

extension PeerNetwork {
    /// Queues Raft messages to their peers (each to its `to`).
    public func send(_ messages: [Message]) {
        guard !messages.isEmpty else { return }
        if messages.count == 1 || messages.allSatisfy({ $0.to == messages[0].to }) {
            send(messages.map(PeerTraffic.message), to: messages[0].to)
            return
        }
        for (peer, batch) in Dictionary(grouping: messages, by: \.to) { send(batch.map(PeerTraffic.message), to: peer) }
    }
}

extension PeerTransport: PeerNetwork {}
