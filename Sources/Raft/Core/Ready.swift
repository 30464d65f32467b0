/// Everything the core wants the driver to do, produced by ``RaftNode/ready()``.
///
/// The driver must handle a `Ready` in this order (as in etcd-io/raft):
/// 1. Persist ``persistBatch`` (``hardState``, ``snapshot``, ``entries``) atomically and durably.
/// 2. Only then send ``messages``: they may promise a vote, a term or entries that exist only in
///    this batch (Raft figure 2: "respond to RPCs only after updating stable storage").
/// 3. Restore the state machine from ``snapshot`` if set, then apply ``committedEntries`` in order,
///    and serve ``readStates`` once their index is applied.
/// 4. Call ``RaftNode/advance(_:)``.
///
/// If persisting throws, the node must stop (never send the messages): a node that cannot persist
/// stops serving rather than lie.
public struct Ready: Sendable, Hashable {
    /// Role or leader changed since the previous `Ready`.
    public var softState: SoftState?
    /// Term, vote or commit changed since the previous `Ready`; persist it.
    public var hardState: HardState?
    /// Entries to append to stable storage (may overwrite a conflicting suffix).
    public var entries: [Entry] = []
    /// A snapshot received from the leader: persist it (it replaces the log) and restore the state
    /// machine from it before applying ``committedEntries``.
    public var snapshot: Snapshot?
    /// Messages to send after the persist step.
    public var messages: [Message] = []
    /// Committed entries to apply, in index order, none applied before. They may include entries
    /// of ``entries`` (a single-voter leader, or a follower told the commit index along with the
    /// entries), which is why step 1 comes first.
    public var committedEntries: [Entry] = []
    /// Completed ReadIndex requests.
    public var readStates: [ReadState] = []
    /// The membership changed (it takes effect when its entry is appended, dissertation §4.1).
    public var confState: ConfState?

    /// Whether the persist of this `Ready` must be durable before its messages go out: true
    /// when it carries entries, a snapshot, or a new term or vote. A change of the commit index
    /// alone need not be: a node that loses it in a crash learns it again from the leader, and
    /// the entries it covers were durable on a majority already (etcd-io/raft's `MustSync`).
    /// Skipping that fsync takes one disk flush off every commit on the leader (between
    /// quorum and apply) and off every follower's commit notice.
    public var mustSync: Bool = false

    public init() {}

    /// The durable part of this `Ready`, to hand to ``RaftStorage/persist(_:)``.
    public var persistBatch: PersistBatch {
        PersistBatch(hardState: hardState, snapshot: snapshot, entries: entries, mustSync: mustSync)
    }

    /// True when the driver must persist before sending (anything durable changed).
    public var mustPersist: Bool { !persistBatch.isEmpty }
}
