import Foundation
import Raft
import RaftSQLite
import Testing

@Suite struct StoragePoisonTests {
    /// Another connection holds the write lock; with busy timeout 0 the storage's
    /// `BEGIN IMMEDIATE` fails with SQLITE_BUSY. Works as root (unlike chmod).
    @Test func writeFailurePoisonsTheStorage() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let storage = try openStorage(path)
            try storage.persist(PersistBatch(hardState: HardState(term: 1, vote: 1), entries: makeEntries(1...3, term: 1)))

            let blocker = try SQLiteConnection(path: path)
            try blocker.begin(.immediate)
            let failure = storageError {
                try storage.persist(PersistBatch(hardState: HardState(term: 2), entries: makeEntries(4...5, term: 2)))
            }
            #expect(failure?.isWriteFailed == true)
            #expect(failure?.message.contains("BEGIN IMMEDIATE") == true)
            try blocker.rollback()
            blocker.close()

            // The lock is gone, but the storage stays poisoned.
            let later = storageError { try storage.persist(PersistBatch(entries: makeEntries(4...4, term: 1))) }
            #expect(later?.isUnavailable == true)
            #expect(later?.message.contains("poisoned") == true)
            #expect(storageError { try storage.compact(to: Snapshot(metadata: SnapshotMetadata(index: 1, term: 1))) }?.isUnavailable == true)
            #expect(storage.poisonReason != nil)
            // Reading is still allowed and shows only what was acknowledged.
            #expect(try storage.load().entries == makeEntries(1...3, term: 1))
            storage.close()

            let reopened = try openStorage(path)
            let state = try reopened.load()
            #expect(state.hardState == HardState(term: 1, vote: 1))
            #expect(state.entries == makeEntries(1...3, term: 1))
            try reopened.persist(PersistBatch(entries: makeEntries(4...4, term: 1)))
        }
    }

    /// The statement-level failure path (inside the transaction): a trigger installed on the raw
    /// connection makes the INSERT fail; the batch is rolled back and the storage poisoned.
    @Test func failureInsideTransactionRollsBackWholeBatch() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let storage = try openStorage(path)
            try storage.persist(PersistBatch(entries: makeEntries(1...3, term: 1)))
            let raw = try SQLiteConnection(path: path)
            try raw.exec("""
                CREATE TRIGGER fail_at_7 BEFORE INSERT ON log_entries WHEN NEW.idx = 7
                BEGIN SELECT RAISE(ABORT, 'injected failure'); END
                """)
            raw.close()
            let failure = storageError {
                try storage.persist(PersistBatch(hardState: HardState(term: 9), entries: makeEntries(2...8, term: 2)))
            }
            #expect(failure?.isWriteFailed == true)
            #expect(failure?.message.contains("injected failure") == true)
            #expect(storageError { try storage.persist(PersistBatch(hardState: HardState(term: 9))) }?.isUnavailable == true)
            storage.close()
            let state = try openStorage(path).load()
            #expect(state.entries == makeEntries(1...3, term: 1))
            #expect(state.hardState == HardState())
        }
    }
}
