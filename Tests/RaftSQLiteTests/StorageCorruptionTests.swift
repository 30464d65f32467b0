import Foundation
import Raft
import RaftSQLite
import Testing

/// Damages rows with raw SQL (bypassing the checksums) and checks `load()` names the damage.
@Suite struct StorageCorruptionTests {
    /// Creates a storage with a snapshot at 2, entries 3...10 and a hard state, then runs
    /// `damage` on a raw connection and returns the error `load()` throws on a fresh instance.
    private func loadError(after damage: (SQLiteConnection) throws -> Void) throws -> RaftStorageError? {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            do {
                let storage = try openStorage(path)
                try storage.persist(PersistBatch(
                    hardState: HardState(term: 1, vote: 1, commit: 8),
                    snapshot: Snapshot(metadata: SnapshotMetadata(index: 2, term: 1, conf: ConfState(voters: [1])), data: [1, 2]),
                    entries: makeEntries(3...10, term: 1)
                ))
                storage.close()
            }
            let raw = try SQLiteConnection(path: path)
            try damage(raw)
            raw.close()
            let storage = try openStorage(path)
            return storageError { _ = try storage.load() }
        }
    }

    @Test func flippedDataByteIsReported() throws {
        let error = try loadError { raw in
            let select = try raw.prepare("SELECT data FROM log_entries WHERE idx = 5")
            #expect(try select.step())
            var data = select.blob(at: 0)
            select.finalize()
            data[3] ^= 0x40
            let update = try raw.prepare("UPDATE log_entries SET data = ?1 WHERE idx = 5")
            try update.bind(blob: data, at: 1)
            try update.run()
            #expect(raw.changes == 1)
        }
        #expect(error?.isCorrupted == true)
        #expect(error?.message.contains("log entry 5") == true)
        #expect(error?.message.contains("checksum mismatch") == true)
    }

    @Test func changedTermIsReported() throws {
        let error = try loadError { raw in try raw.exec("UPDATE log_entries SET term = 7 WHERE idx = 9") }
        #expect(error?.isCorrupted == true)
        #expect(error?.message.contains("log entry 9: checksum mismatch") == true)
    }

    @Test func missingMiddleRowIsAGap() throws {
        let error = try loadError { raw in try raw.exec("DELETE FROM log_entries WHERE idx = 6") }
        #expect(error?.isCorrupted == true)
        #expect(error?.message.contains("entry 6 is missing") == true)
    }

    @Test func missingFirstRowIsReported() throws {
        let error = try loadError { raw in try raw.exec("DELETE FROM log_entries WHERE idx = 3") }
        #expect(error?.isCorrupted == true)
        #expect(error?.message.contains("first entry has index 4, expected 3") == true)
    }

    @Test func unknownKindIsReported() throws {
        let error = try loadError { raw in try raw.exec("UPDATE log_entries SET kind = 9 WHERE idx = 4") }
        #expect(error?.isCorrupted == true)
        #expect(error?.message.contains("log entry 4: unknown entry kind 9") == true)
    }

    @Test func wrongColumnTypeIsReported() throws {
        let error = try loadError { raw in try raw.exec("UPDATE log_entries SET data = 'text' WHERE idx = 7") }
        #expect(error?.isCorrupted == true)
        #expect(error?.message.contains("log entry 7") == true)
    }

    @Test func damagedSnapshotIsReported() throws {
        let error = try loadError { raw in try raw.exec("UPDATE snapshot SET data = X'0103'") }
        #expect(error?.isCorrupted == true)
        #expect(error?.message.contains("snapshot at index 2: checksum mismatch") == true)
    }

    @Test func damagedHardStateIsReported() throws {
        let error = try loadError { raw in try raw.exec("UPDATE hard_state SET vote = 2") }
        #expect(error?.isCorrupted == true)
        #expect(error?.message.contains("hard state: checksum mismatch") == true)
    }

    @Test func undamagedStorageLoads() throws {
        let error = try loadError { _ in }
        #expect(error == nil)
    }
}
