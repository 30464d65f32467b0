import GCProto
import Raft
import Server
import Synchronization

/// A network in which no peer ever answers; it records every Raft message
/// sent.
final class RecordingNetwork: PeerNetwork {
    let members: [ClusterMember]
    private let messages = Mutex<[Message]>([])

    init(members: [ClusterMember]) { self.members = members }

    func sent(to peer: NodeID) -> [Message] { messages.withLock { $0.filter { $0.to == peer } } }

    func send(_ traffic: [PeerTraffic], to peer: NodeID) -> Bool {
        messages.withLock { list in
            for item in traffic { if case .message(let message) = item { list.append(message) } }
        }
        return true
    }
    func takeUnreachable() -> Set<NodeID> { [] }
    func member(_ id: NodeID) -> ClusterMember? { members.first { $0.id == id } }
    var peers: [ClusterMember] { Array(members.dropFirst()) }
    func addMember(_ member: ClusterMember) {}
    func removeMember(_ id: NodeID) {}
    func status(of id: NodeID, timeout: Duration) async throws -> DistributedGc_Raft_PeerStatusResponse { throw TestFailure("no peer answers in this network") }
    func admin(_ request: DistributedGc_Raft_AdminRequest, to leader: NodeID, timeout: Duration) async throws -> DistributedGc_Raft_AdminResponse { throw TestFailure("no peer answers in this network") }
}
