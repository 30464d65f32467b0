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

    init(inner: SQLiteRaftStorage, faults: DiskFaults) {
        self.inner = inner
        self.faults = faults
    }

    func load() throws(RaftStorageError) -> PersistedState { try inner.load() }

    func persist(_ batch: PersistBatch) throws(RaftStorageError) {
        let state = faults.state.withLock { $0 }
        if state.failing { throw .writeFailed("injected fsync failure (EIO)") }
        if state.slowMicroseconds > 0 { usleep(state.slowMicroseconds) }
        try inner.persist(batch)
    }

    func compact(to snapshot: Snapshot) throws(RaftStorageError) {
        if faults.state.withLock({ $0.failing }) { throw .writeFailed("injected fsync failure (EIO)") }
        try inner.compact(to: snapshot)
    }

    func close() { inner.close() }
}
