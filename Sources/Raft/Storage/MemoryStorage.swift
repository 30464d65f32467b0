/// A ``RaftStorage`` that keeps everything in memory. For tests and the development backend
/// (`GC_STORAGE_BACKEND=memory`); nothing survives the process.
///
/// It follows the protocol's contract exactly, including a poisoned state: after a failed write
/// (real or injected with ``failPersists``) every further write throws
/// ``RaftStorageError/unavailable(_:)`` until ``reopen()`` is called, which models restarting
/// the process on the same disk.
public final class MemoryStorage: RaftStorage {
    private var state: PersistedState
    private var poisoned = false

    /// Fault injection: when true, the next ``persist(_:)`` or ``compact(to:)`` throws
    /// ``RaftStorageError/writeFailed(_:)``, writes nothing and poisons the storage.
    public var failPersists = false

    /// Number of successful `persist` calls (one per group commit).
    public private(set) var persistCount = 0

    /// The commit index as of the last durable write (a `mustSync` persist or a compaction):
    /// what survives ``loseUnsyncedWrites()``.
    private var durableCommit: UInt64 = 0

    /// Creates a storage holding `initial`.
    public init(_ initial: PersistedState = PersistedState()) {
        self.state = initial
        self.durableCommit = initial.hardState.commit
    }

    /// True after a failed write, until ``reopen()``.
    public var isPoisoned: Bool { poisoned }

    /// Clears the poisoned state, as if the process restarted on the same data.
    public func reopen() {
        poisoned = false
        failPersists = false
    }

    /// Simulates a machine crash: what was written without a flush (batches whose
    /// ``PersistBatch/mustSync`` is false, which move only the commit index) is lost, back to
    /// the commit index of the last durable write. A durable write flushes every earlier one
    /// (like SQLite's WAL, whose frames are synced in order).
    public func loseUnsyncedWrites() {
        state.hardState.commit = durableCommit
    }

    /// The durable state, as a restart would see it.
    public func load() throws(RaftStorageError) -> PersistedState {
        state
    }

    /// Writes `batch` atomically: hard state, then the snapshot (replacing the log, Raft §7), then
    /// the entries (truncating any conflicting stored suffix).
    public func persist(_ batch: PersistBatch) throws(RaftStorageError) {
        try checkWritable()
        var next = state
        if let hardState = batch.hardState {
            next.hardState = hardState
        }
        if let snapshot = batch.snapshot, snapshot.metadata.index > next.snapshot.metadata.index {
            let index = snapshot.metadata.index
            // Figure 13 step 6: keep the entries after the snapshot only if the log holds the
            // snapshot's last entry with the same term; otherwise discard the whole log.
            if let kept = Self.entry(at: index, in: next), kept.term == snapshot.metadata.term {
                next.entries.removeFirst(Int(index - next.snapshot.metadata.index))
            } else {
                next.entries = []
            }
            next.snapshot = snapshot
        }
        if let first = batch.entries.first {
            for (offset, entry) in batch.entries.enumerated() where entry.index != first.index + UInt64(offset) {
                throw poison(.writeFailed("batch entries are not contiguous at \(entry.index)"))
            }
            let snapshotIndex = next.snapshot.metadata.index
            let lastIndex = snapshotIndex + UInt64(next.entries.count)
            guard first.index > snapshotIndex else {
                throw poison(.writeFailed("entry \(first.index) is at or below the snapshot \(snapshotIndex)"))
            }
            guard first.index <= lastIndex + 1 else {
                throw poison(.writeFailed("entry \(first.index) leaves a gap after \(lastIndex)"))
            }
            next.entries.removeLast(Int(lastIndex + 1 - first.index))
            next.entries.append(contentsOf: batch.entries)
        }
        state = next
        persistCount += 1
        if batch.mustSync { durableCommit = state.hardState.commit }
    }

    /// Saves a locally taken snapshot and drops the entries it covers (Raft §7).
    public func compact(to snapshot: Snapshot) throws(RaftStorageError) {
        try checkWritable()
        let index = snapshot.metadata.index
        let snapshotIndex = state.snapshot.metadata.index
        guard index > snapshotIndex else { return }
        guard let entry = Self.entry(at: index, in: state) else {
            throw RaftStorageError.writeFailed("compaction index \(index) is not in the log")
        }
        guard entry.term == snapshot.metadata.term else {
            throw RaftStorageError.writeFailed("snapshot term \(snapshot.metadata.term) does not match entry \(index)")
        }
        state.entries.removeFirst(Int(index - snapshotIndex))
        state.snapshot = snapshot
        durableCommit = state.hardState.commit
    }

    private func checkWritable() throws(RaftStorageError) {
        guard !poisoned else { throw .unavailable("storage poisoned by an earlier write failure") }
        if failPersists {
            throw poison(.writeFailed("injected write failure"))
        }
    }

    private func poison(_ error: RaftStorageError) -> RaftStorageError {
        poisoned = true
        return error
    }

    private static func entry(at index: UInt64, in state: PersistedState) -> Entry? {
        let snapshotIndex = state.snapshot.metadata.index
        guard index > snapshotIndex, index <= snapshotIndex + UInt64(state.entries.count) else { return nil }
        return state.entries[Int(index - snapshotIndex - 1)]
    }
}
