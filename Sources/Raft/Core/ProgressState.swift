/// How the leader replicates to one follower (etcd-io/raft `tracker`, design.md).
///
/// - `probe`: the leader does not know where the follower's log matches; it sends one append at
///   a time and waits for the reply (finding the match point with fast back-off).
/// - `replicate`: the match point is known; appends are pipelined, bounded by the inflight window.
/// - `snapshot`: the entries the follower needs are compacted; a snapshot is in transfer.
public enum ProgressState: UInt8, Sendable, Hashable {
    case probe
    case replicate
    case snapshot
}
