import Foundation
import Raft
import RaftSQLite
import Testing

@Suite struct StorageLogTests {
    @Test func conflictingSuffixIsTruncated() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let storage = try openStorage(path)
            try storage.persist(PersistBatch(entries: makeEntries(1...10, term: 1)))
            // A new leader overwrites 6...10 with a shorter suffix of term 2.
            let replacement = makeEntries(6...8, term: 2)
            try storage.persist(PersistBatch(entries: replacement))
            storage.close()
            let state = try openStorage(path).load()
            #expect(state.entries == makeEntries(1...5, term: 1) + replacement)
        }
    }

    @Test func overwritingTheWholeLogWorks() throws {
        try withTemporaryDirectory { directory in
            let storage = try openStorage(databasePath(in: directory))
            try storage.persist(PersistBatch(entries: makeEntries(1...4, term: 1)))
            try storage.persist(PersistBatch(entries: makeEntries(1...2, term: 5)))
            #expect(try storage.load().entries == makeEntries(1...2, term: 5))
        }
    }

    @Test func gapIsRejectedAndPoisons() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let storage = try openStorage(path)
            try storage.persist(PersistBatch(entries: makeEntries(1...3, term: 1)))
            let error = storageError { try storage.persist(PersistBatch(entries: makeEntries(5...6, term: 1))) }
            #expect(error?.isWriteFailed == true)
            #expect(error?.message.contains("gap") == true)
            #expect(storageError { try storage.persist(PersistBatch(entries: makeEntries(4...4, term: 1))) }?.isUnavailable == true)
            storage.close()
            #expect(try openStorage(path).load().entries == makeEntries(1...3, term: 1))
        }
    }

    @Test func nonContiguousBatchIsRejected() throws {
        try withTemporaryDirectory { directory in
            let storage = try openStorage(databasePath(in: directory))
            var entries = makeEntries(1...3, term: 1)
            entries[2].index = 7
            let error = storageError { try storage.persist(PersistBatch(entries: entries)) }
            #expect(error?.isWriteFailed == true)
            #expect(error?.message.contains("not contiguous") == true)
        }
    }

    @Test func firstEntryMustStartAtOne() throws {
        try withTemporaryDirectory { directory in
            let storage = try openStorage(databasePath(in: directory))
            let error = storageError { try storage.persist(PersistBatch(entries: makeEntries(2...3, term: 1))) }
            #expect(error?.isWriteFailed == true)
        }
    }

    @Test func hardStateAloneIsPersisted() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let storage = try openStorage(path)
            try storage.persist(PersistBatch(hardState: HardState(term: 4, vote: 2, commit: 0)))
            try storage.persist(PersistBatch(hardState: HardState(term: 5, vote: 0, commit: 0)))
            storage.close()
            #expect(try openStorage(path).load().hardState == HardState(term: 5, vote: 0, commit: 0))
        }
    }

    @Test func indicesBeyondInt64AreRejectedNotTrapped() throws {
        try withTemporaryDirectory { directory in
            let storage = try openStorage(databasePath(in: directory))
            let entries = [Entry(term: 1, index: UInt64.max), Entry(term: 1, index: 0)]
            let error = storageError { try storage.persist(PersistBatch(entries: entries)) }
            #expect(error?.isWriteFailed == true)
            #expect(error?.message.contains("exceeds the supported maximum") == true)
            let snapshotError = storageError {
                try openStorage(databasePath(in: directory)).persist(
                    PersistBatch(snapshot: Snapshot(metadata: SnapshotMetadata(index: UInt64.max, term: 1))))
            }
            #expect(snapshotError?.isWriteFailed == true)
        }
    }
}
