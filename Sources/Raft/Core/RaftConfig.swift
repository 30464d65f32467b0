/// Static configuration of one ``RaftNode``. Every duration counts ticks of ``RaftNode/tick()``;
/// the core never reads a clock.
public struct RaftConfig: Sendable, Hashable {
    /// This node's identity (non-zero).
    public var id: NodeID
    /// Bootstrap membership, used only when the persisted state holds no configuration (no
    /// snapshot and no configuration entry). A node joining an existing cluster passes an empty
    /// value and learns the membership from the leader.
    public var peers: ConfState
    /// Minimum election timeout in ticks. A follower's timeout is drawn uniformly from
    /// `[electionTick, 2 * electionTick)` (Raft §5.2, randomized timeouts).
    public var electionTick: Int = 10
    /// Ticks between leader heartbeats. Must be less than `electionTick`.
    public var heartbeatTick: Int = 1
    /// Maximum append messages in flight to one follower in the replicate state (pipelining).
    public var maxInflightAppends: Int = 256
    /// Maximum entries in one append message (batching).
    public var maxEntriesPerAppend: Int = 64
    /// Soft byte limit of the entries in one append message (at least one entry is always sent).
    public var maxBytesPerAppend: Int = 1 << 20
    /// Proposals are refused with ``RaftError/tooManyUncommittedEntries`` beyond this backlog.
    public var maxUncommittedEntries: Int = 10_000
    /// Size of the chunks InstallSnapshot splits a snapshot into.
    public var snapshotChunkSize: Int = 64 * 1024
    /// Largest snapshot a follower accepts from a leader (4 GiB). A snapshot message declaring a
    /// larger size is refused (``RefusalReason/snapshotTooLarge``) before anything is allocated.
    public var maxSnapshotBytes: UInt64 = 4 << 30
    /// Run a pre-vote round before a real election (dissertation §9.6).
    public var preVote: Bool = true
    /// Leader steps down without a quorum's contact, and followers honour the leader lease
    /// (dissertation §6.2 and §4.2.3).
    public var checkQuorum: Bool = true

    /// Creates a configuration with the recommended defaults (`electionTick` 10, `heartbeatTick` 1,
    /// pre-vote and check-quorum on).
    public init(id: NodeID, peers: ConfState) {
        self.id = id
        self.peers = peers
    }

    /// Checks the invariants the core relies on.
    public func validate() throws(RaftConfigError) {
        guard id != 0 else { throw .invalid("id must not be 0 (reserved for none)") }
        guard heartbeatTick > 0 else { throw .invalid("heartbeatTick must be > 0") }
        guard electionTick > heartbeatTick else { throw .invalid("electionTick must be > heartbeatTick") }
        guard maxInflightAppends > 0 else { throw .invalid("maxInflightAppends must be > 0") }
        guard maxEntriesPerAppend > 0 else { throw .invalid("maxEntriesPerAppend must be > 0") }
        guard maxBytesPerAppend > 0 else { throw .invalid("maxBytesPerAppend must be > 0") }
        guard maxUncommittedEntries > 0 else { throw .invalid("maxUncommittedEntries must be > 0") }
        guard snapshotChunkSize > 0 else { throw .invalid("snapshotChunkSize must be > 0") }
        guard maxSnapshotBytes > 0 else { throw .invalid("maxSnapshotBytes must be > 0") }
        guard peers.voters.isDisjoint(with: peers.learners) else {
            throw .invalid("a node cannot be both voter and learner")
        }
    }
}
