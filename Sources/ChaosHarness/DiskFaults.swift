import Foundation
import Raft
import RaftSQLite
import Synchronization

/// The disk faults injected into one node's storage.
final class DiskFaults: Sendable {
    struct State {
        /// Extra time each persist takes (blocking, like a slow fsync).
        var slowMicroseconds: UInt32 = 0
        /// Every persist fails, as if fsync returned EIO.
        var failing = false
    }

    let state = Mutex(State())
}

/// SQLite storage with injectable slow and failing fsyncs.
///
/// Not `Sendable`: like every `RaftStorage` it is owned by one store actor.
final class FaultyStorage: RaftStorage {
    let inner: SQLiteRaftStorage
    let faults: DiskFaults
    /// With the `unsyncedAcks` bug: batches "persisted" but not written yet.
    private let unsynced: Bool
    private var buffered: [PersistBatch] = []
    /// Batches held in memory before they are written (and lost on a kill).
    static let unsyncedBatches = 8

    init(inner: SQLiteRaftStorage, faults: DiskFaults, unsynced: Bool = false) {
        self.inner = inner
        self.faults = faults
        self.unsynced = unsynced
    }

    func load() throws(RaftStorageError) -> PersistedState { try inner.load() }

    func persist(_ batch: PersistBatch) throws(RaftStorageError) {
        let state = faults.state.withLock { $0 }
        if state.failing { throw .writeFailed("injected fsync failure (EIO)") }
        if state.slowMicroseconds > 0 { usleep(state.slowMicroseconds) }
        guard unsynced else { return try inner.persist(batch) }
        buffered.append(batch)
        if buffered.count >= Self.unsyncedBatches { try flush() }
    }

    func compact(to snapshot: Snapshot) throws(RaftStorageError) {
        if faults.state.withLock({ $0.failing }) { throw .writeFailed("injected fsync failure (EIO)") }
        try flush()
        try inner.compact(to: snapshot)
    }

    private func flush() throws(RaftStorageError) {
        let pending = buffered
        buffered.removeAll()
        for batch in pending { try inner.persist(batch) }
    }

    /// Closes the database; unsynced batches are lost, as in a crash.
    func close() { inner.close() }
}
