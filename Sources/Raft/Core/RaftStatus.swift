/// A read-only summary of a node, for metrics, debugging and membership decisions (for example
/// promoting a learner only once its `match` is close to the leader's last index, §4.2.1).
public struct RaftStatus: Sendable, Hashable {
    public var id: NodeID
    public var term: UInt64
    public var vote: NodeID
    public var role: Role
    public var leaderID: NodeID?
    public var commit: UInt64
    public var applied: UInt64
    public var lastIndex: UInt64
    public var snapshotIndex: UInt64
    public var conf: ConfState
    /// Leader only: replication progress per peer.
    public var progress: [NodeID: PeerProgress]
    /// Leader only: the target of a leadership transfer in progress.
    public var leadTransferee: NodeID?
    /// Peers' messages this node refused since it started, by reason (see ``RefusalReason``).
    public var refused: [RefusalReason: UInt64] = [:]

    /// Messages refused since start, all reasons together.
    public var refusedTotal: UInt64 { refused.values.reduce(0, +) }
}
