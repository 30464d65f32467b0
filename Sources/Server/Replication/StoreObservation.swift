import LeaseFSM
import Raft

/// A node's state as `gcctl cluster status` shows it.
public struct StoreObservation: Sendable {
    /// Raft's view (role, term, indexes, and on the leader each peer's progress).
    public var raft: RaftStatus
    public var activeLeases: Int
    /// When each peer was last heard from.
    public var lastHeard: [NodeID: WallTime]
    /// The clock at observation time.
    public var now: WallTime
    /// Why this node refuses writes, or nil.
    public var healthProblem: String?
}
