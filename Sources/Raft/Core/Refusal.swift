/// Why ``RaftNode/step(_:)`` dropped a peer's message instead of handling it.
///
/// A message that no correct peer sends (malformed, out of range, from a node that is not a
/// member) or that contradicts what this node knows (a log that went backwards) is refused: the
/// node's state is left as it was, the refusal is counted in ``RaftStatus/refused`` and returned
/// by `step`, so the driver can log and count it. Nothing a peer sends can crash or wedge a node.
///
/// The raw values are stable; the server uses them as the `reason` label of
/// `gc_raft_refused_messages_total`.
public enum RefusalReason: String, Sendable, Hashable, CaseIterable, Comparable {
    /// Not addressed to this node, or claiming to come from it or from node 0.
    case wrongRecipient = "wrong_recipient"
    /// From a node that is not in this node's configuration (for example a removed node), and
    /// not a leader this node follows.
    case notAMember = "not_a_member"
    /// A term beyond ``RaftNode/maxTerm``, or an index, commit or hint beyond
    /// ``RaftNode/maxIndex``: no real cluster gets there, and arithmetic on it could overflow.
    case outOfRange = "out_of_range"
    /// Append entries that do not follow the previous index one by one, or whose terms go down
    /// or exceed the sender's term.
    case malformedEntries = "malformed_entries"
    /// Entries that would overwrite committed ones.
    case conflictBelowCommit = "conflict_below_commit"
    /// A leader asks this follower to commit beyond its last entry. The leader only does so for
    /// entries the follower acknowledged: this node lost entries it acknowledged (its log went
    /// backwards, for example storage that acknowledged before it was durable).
    case commitBeyondLog = "commit_beyond_log"
    /// A follower acknowledges entries beyond the leader's last index.
    case ackBeyondLog = "ack_beyond_log"
    /// A follower rejects an append at or below the index it acknowledged in this term: a stale
    /// rejection, or the follower lost entries it acknowledged (its log went backwards). Acting on
    /// it would make the leader probe the same index forever.
    case rejectBelowMatch = "reject_below_match"
    /// A rejection whose hint lies beyond the rejected index.
    case malformedReject = "malformed_reject"
    /// A heartbeat reply that acknowledges a ReadIndex round this leader never sent.
    case unknownReadRound = "unknown_read_round"
    /// A snapshot message without a chunk, a chunk outside its snapshot, inconsistent metadata,
    /// or more bytes than the snapshot's size.
    case malformedSnapshot = "malformed_snapshot"
    /// A snapshot larger than ``RaftConfig/maxSnapshotBytes``.
    case snapshotTooLarge = "snapshot_too_large"

    public static func < (lhs: RefusalReason, rhs: RefusalReason) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One refused message: why, and enough of it to log.
public struct Refusal: Sendable, Hashable, CustomStringConvertible {
    public var reason: RefusalReason
    public var type: MessageType
    public var from: NodeID
    public var term: UInt64
    /// What exactly was wrong, with the numbers involved.
    public var detail: String

    public init(reason: RefusalReason, type: MessageType, from: NodeID, term: UInt64, detail: String) {
        self.reason = reason
        self.type = type
        self.from = from
        self.term = term
        self.detail = detail
    }

    public var description: String {
        "\(reason.rawValue): \(type) from \(String(from, radix: 16)) at term \(term): \(detail)"
    }
}
