/// Everything a node restores on restart.
public struct PersistedState: Sendable, Equatable {
    public var hardState: HardState
    /// Latest snapshot, or an empty one (index 0) if none was ever taken.
    public var snapshot: Snapshot
    /// Entries after `snapshot.metadata.index`, contiguous and in index order.
    public var entries: [Entry]

    public init(hardState: HardState = HardState(), snapshot: Snapshot = Snapshot(), entries: [Entry] = []) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
    }
}

/// One ready-set's worth of durable writes. A storage writes it atomically (one transaction,
/// one fsync: group commit) or throws and writes nothing.
public struct PersistBatch: Sendable, Equatable {
    /// New hard state, if it changed.
    public var hardState: HardState?
    /// A snapshot received from the leader to install. Applied before `entries`: the log up to
    /// and including `snapshot.metadata.index` is discarded.
    public var snapshot: Snapshot?
    /// Entries to append. If the first entry's index is at or below the stored last index, the
    /// stored suffix from that index on is replaced (conflicting entries are truncated).
    public var entries: [Entry]

    public init(hardState: HardState? = nil, snapshot: Snapshot? = nil, entries: [Entry] = []) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
    }

    public var isEmpty: Bool { hardState == nil && snapshot == nil && entries.isEmpty }
}

/// Errors a storage reports. After any of them the node must stop acknowledging: the write may
/// or may not have reached the disk.
public enum RaftStorageError: Error, Sendable, Equatable {
    /// A write, commit or fsync failed.
    case writeFailed(String)
    /// Stored data failed its checksum or is not contiguous (torn or corrupted tail).
    case corrupted(String)
    /// The storage was closed or poisoned by an earlier failure.
    case unavailable(String)
}

/// Durable home of one node's log, hard state and snapshot.
///
/// The Raft core never calls a storage; its driver does: it loads once at start, then hands every
/// ready-set's `PersistBatch` to `persist` *before* sending the messages of that ready-set.
/// Implementations are used by one driver at a time and need not be thread-safe.
public protocol RaftStorage: AnyObject {
    /// Reads back everything persisted so far. Throws ``RaftStorageError/corrupted(_:)`` if a
    /// checksum fails or the log is not contiguous; never returns a silently truncated log.
    func load() throws(RaftStorageError) -> PersistedState

    /// Writes `batch` atomically and durably (group commit). On error nothing of `batch` may be
    /// assumed written, and the storage refuses further writes.
    func persist(_ batch: PersistBatch) throws(RaftStorageError)

    /// Saves a snapshot the local application took at `snapshot.metadata.index` and discards the
    /// log entries up to and including that index (log compaction, Raft §7).
    func compact(to snapshot: Snapshot) throws(RaftStorageError)
}
