/// Why the core refused a request from the application. All of these fail fast: nothing was
/// appended or sent.
public enum RaftError: Error, Sendable, Equatable {
    /// This node is not the leader. `leaderHint` is the leader it last heard from in the current
    /// term, if any; clients should retry there.
    case notLeader(leaderHint: NodeID?)
    /// The leader is handing leadership to `target` and accepts no proposals (dissertation §3.10).
    case leadershipTransferInProgress(target: NodeID)
    /// A membership change is still uncommitted; changes go one at a time (dissertation §4.1).
    case confChangeInProgress
    /// The new leader has not committed an entry of its own term yet, so it may not change the
    /// membership (dissertation §4.1, the single-server change fix) nor serve reads.
    case leaderNotReady
    /// The membership change does not apply to the current configuration.
    case invalidConfChange(String)
    /// A leadership transfer target that is not a voter, or is this node.
    case invalidTransferTarget(NodeID)
    /// The leader holds too many uncommitted entries (``RaftConfig/maxUncommittedEntries``).
    case tooManyUncommittedEntries
    /// Bytes that do not decode as a ``ConfChange``.
    case malformedConfChange
    /// A compaction request that does not fit the log (not applied yet, or already compacted).
    case invalidCompaction(String)
}
