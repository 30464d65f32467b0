import Foundation
import Raft
import RaftSQLite
import Testing

@Suite struct StorageRoundTripTests {
    @Test func freshStorageLoadsEmptyState() throws {
        try withTemporaryDirectory { directory in
            let storage = try openStorage(databasePath(in: directory))
            #expect(try storage.load() == PersistedState())
        }
    }

    @Test func hardStateEntriesAndSnapshotSurviveReopen() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let snapshot = Snapshot(
                metadata: SnapshotMetadata(index: 10, term: 2, conf: ConfState(voters: [1, 2, 3], learners: [UInt64.max, 4])),
                data: Array("state machine at 10".utf8)
            )
            var entries = makeEntries(11...20, term: 3)
            entries[2].kind = .noop
            entries[2].data = []
            entries[5].kind = .configChange
            let hardState = HardState(term: UInt64.max - 1, vote: 3, commit: 15)
            do {
                let storage = try openStorage(path)
                try storage.persist(PersistBatch(snapshot: snapshot))
                try storage.persist(PersistBatch(hardState: hardState, entries: Array(entries[0..<4])))
                try storage.persist(PersistBatch(entries: Array(entries[4...])))
                storage.close()
            }
            let reopened = try openStorage(path)
            let state = try reopened.load()
            #expect(state.hardState == hardState)
            #expect(state.snapshot == snapshot)
            #expect(state.entries == entries)
        }
    }

    @Test func batchWithEverythingIsOneTransaction() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let storage = try openStorage(path)
            let snapshot = Snapshot(metadata: SnapshotMetadata(index: 5, term: 1, conf: ConfState(voters: [1])), data: [9])
            let batch = PersistBatch(hardState: HardState(term: 2, vote: 1, commit: 5), snapshot: snapshot,
                                     entries: makeEntries(6...8, term: 2))
            try storage.persist(batch)
            let state = try storage.load()
            #expect(state == PersistedState(hardState: batch.hardState ?? HardState(), snapshot: snapshot, entries: batch.entries))
        }
    }

    @Test func emptyBatchIsANoOp() throws {
        try withTemporaryDirectory { directory in
            let storage = try openStorage(databasePath(in: directory))
            try storage.persist(PersistBatch())
            #expect(try storage.load() == PersistedState())
        }
    }

    @Test func closedStorageIsUnavailable() throws {
        try withTemporaryDirectory { directory in
            let storage = try openStorage(databasePath(in: directory))
            storage.close()
            #expect(storageError { try storage.persist(PersistBatch(hardState: HardState(term: 1))) }?.isUnavailable == true)
            #expect(storageError { _ = try storage.load() }?.isUnavailable == true)
        }
    }

    @Test func openingSetsWALAndSynchronousAndSchemaVersion() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            _ = try openStorage(path)
            let raw = try SQLiteConnection(path: path)
            #expect(try raw.scalarText("PRAGMA journal_mode")?.lowercased() == "wal")
            #expect(try raw.scalarInt64("PRAGMA user_version") == 2)
        }
    }

    @Test func unknownSchemaVersionIsRefused() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            do {
                let storage = try openStorage(path)
                storage.close()
            }
            let raw = try SQLiteConnection(path: path)
            try raw.exec("PRAGMA user_version = 99")
            raw.close()
            let error = storageError { _ = try openStorage(path) }
            #expect(error?.isUnavailable == true)
            #expect(error?.message.contains("schema version 99") == true)
        }
    }
}
