import GCProto
import Raft

/// How a node reaches the other members: Raft messages one way, and the
/// peer protocol's unary calls. ``PeerTransport`` is the gRPC one; tests and
/// the chaos harness put an in-memory, fault-injecting one in its place.
public protocol PeerNetwork: Sendable {
    /// Queues messages to their peers without waiting; undeliverable ones
    /// are dropped (Raft treats them as lost).
    func send(_ messages: [Message])
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
    /// Hands a client's write to the leader `leader`.
    func forward(_ request: DistributedGc_Raft_ForwardRequest, to leader: NodeID, timeout: Duration) async throws -> DistributedGc_Raft_ForwardResponse
    /// The status of member `id`, as it reports it.
    func status(of id: NodeID, timeout: Duration) async throws -> DistributedGc_Raft_PeerStatusResponse
    /// Hands a membership or leadership change to the leader `leader`.
    func admin(_ request: DistributedGc_Raft_AdminRequest, to leader: NodeID, timeout: Duration) async throws -> DistributedGc_Raft_AdminResponse
}

extension PeerTransport: PeerNetwork {}
