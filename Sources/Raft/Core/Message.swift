/// A message between two Raft nodes. One flat shape for every ``MessageType`` (as in etcd's
/// `raftpb.Message`), so a transport encodes a single struct.
public struct Message: Sendable, Hashable {
    public var type: MessageType
    public var from: NodeID
    public var to: NodeID
    /// Sender's term (for ``MessageType/preVote`` the term it would campaign in).
    public var term: UInt64
    /// Term of the entry at `index` (meaning depends on `type`).
    public var logTerm: UInt64
    /// A log index (meaning depends on `type`).
    public var index: UInt64
    /// Entries carried by ``MessageType/append``.
    public var entries: [Entry]
    /// The leader's commit index.
    public var commit: UInt64
    /// True when the request was refused.
    public var reject: Bool
    /// On a rejected append: the follower's suggested next probe index (fast back-off).
    public var rejectHint: UInt64
    /// ReadIndex round number carried by heartbeats and echoed in their replies.
    public var readSeq: UInt64
    /// Opaque application context of a ReadIndex request.
    public var context: [UInt8]
    /// Set on votes caused by leadership transfer; lets them through the leader lease (§3.10).
    public var isLeadershipTransfer: Bool
    /// The snapshot chunk of a ``MessageType/snapshot`` message.
    public var snapshot: SnapshotChunk?

    public init(
        type: MessageType,
        from: NodeID,
        to: NodeID,
        term: UInt64,
        logTerm: UInt64 = 0,
        index: UInt64 = 0,
        entries: [Entry] = [],
        commit: UInt64 = 0,
        reject: Bool = false,
        rejectHint: UInt64 = 0,
        readSeq: UInt64 = 0,
        context: [UInt8] = [],
        isLeadershipTransfer: Bool = false,
        snapshot: SnapshotChunk? = nil
    ) {
        self.type = type
        self.from = from
        self.to = to
        self.term = term
        self.logTerm = logTerm
        self.index = index
        self.entries = entries
        self.commit = commit
        self.reject = reject
        self.rejectHint = rejectHint
        self.readSeq = readSeq
        self.context = context
        self.isLeadershipTransfer = isLeadershipTransfer
        self.snapshot = snapshot
    }
}
