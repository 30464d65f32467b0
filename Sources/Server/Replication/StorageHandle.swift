import Raft
import Synchronization

/// A store's Raft storage, shared by the store and the persist thread
/// (``PersistThread``), never used by both at once.
///
/// A ``RaftStorage`` is not thread-safe (the SQLite one is one connection,
/// opened without SQLite's own mutex). Every use goes through the lock here.
/// The store's protocol keeps the lock uncontended on the request path: while
/// a persist is in flight the store takes no other `Ready` and defers the
/// snapshot record; only diagnostics (``RaftLeaseStore/withStorage(_:)``)
/// may wait for a persist to finish.
final class StorageHandle: Sendable {
    private let storage: Mutex<any RaftStorage>
    /// The storage's snapshot stager (fixed for its lifetime; thread-safe).
    let snapshotStager: (any SnapshotStager)?

    init(_ storage: sending any RaftStorage) {
        let stager = storage.snapshotStager
        self.snapshotStager = stager
        self.storage = Mutex(storage)
    }

    /// Writes `batch` (see ``RaftStorage/persist(_:)``).
    func persist(_ batch: PersistBatch) throws(RaftStorageError) {
        try storage.withLock { storage throws(RaftStorageError) in try storage.persist(batch) }
    }

    /// Records a snapshot and compacts the log (see ``RaftStorage/compact(to:staged:)``).
    func compact(to snapshot: Snapshot, staged: StagedSnapshot?) throws(RaftStorageError) {
        try storage.withLock { storage throws(RaftStorageError) in
            if let staged {
                try storage.compact(to: snapshot, staged: staged)
            } else {
                try storage.compact(to: snapshot)
            }
        }
    }

    /// Runs `body` with the storage, after any write in progress.
    func withStorage<R: Sendable, E: Error>(_ body: @Sendable (any RaftStorage) throws(E) -> R) throws(E) -> R {
        try storage.withLock { storage throws(E) in try body(storage) }
    }
}
