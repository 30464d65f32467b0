import Foundation
import Raft
import RaftSQLite
import Testing

@Suite struct StorageSnapshotTests {
    private func snapshot(_ index: UInt64, term: UInt64) -> Snapshot {
        Snapshot(metadata: SnapshotMetadata(index: index, term: term, conf: ConfState(voters: [1, 2, 3])),
                 data: Array("snap-\(index)".utf8))
    }

    @Test func installedSnapshotWithMatchingEntryKeepsLaterEntries() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let storage = try openStorage(path)
            try storage.persist(PersistBatch(entries: makeEntries(1...10, term: 1)))
            try storage.persist(PersistBatch(snapshot: snapshot(6, term: 1)))
            storage.close()
            let state = try openStorage(path).load()
            #expect(state.snapshot == snapshot(6, term: 1))
            #expect(state.entries == makeEntries(7...10, term: 1))
        }
    }

    @Test func installedSnapshotWithConflictingTermDiscardsWholeLog() throws {
        try withTemporaryDirectory { directory in
            let storage = try openStorage(databasePath(in: directory))
            try storage.persist(PersistBatch(entries: makeEntries(1...10, term: 1)))
            try storage.persist(PersistBatch(snapshot: snapshot(6, term: 2)))
            let state = try storage.load()
            #expect(state.snapshot == snapshot(6, term: 2))
            #expect(state.entries.isEmpty)
        }
    }

    @Test func installedSnapshotBeyondLogDiscardsWholeLogAndAcceptsFollowingEntries() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let storage = try openStorage(path)
            try storage.persist(PersistBatch(entries: makeEntries(1...3, term: 1)))
            try storage.persist(PersistBatch(snapshot: snapshot(50, term: 4), entries: makeEntries(51...52, term: 4)))
            try storage.persist(PersistBatch(entries: makeEntries(53...53, term: 4)))
            storage.close()
            let state = try openStorage(path).load()
            #expect(state.snapshot == snapshot(50, term: 4))
            #expect(state.entries == makeEntries(51...53, term: 4))
        }
    }

    @Test func staleSnapshotIsRejected() throws {
        try withTemporaryDirectory { directory in
            let storage = try openStorage(databasePath(in: directory))
            try storage.persist(PersistBatch(snapshot: snapshot(20, term: 2)))
            let error = storageError { try storage.persist(PersistBatch(snapshot: snapshot(10, term: 2))) }
            #expect(error?.isWriteFailed == true)
            #expect(error?.message.contains("older") == true)
        }
    }

    @Test func entriesCoveredBySnapshotAreRejected() throws {
        try withTemporaryDirectory { directory in
            let storage = try openStorage(databasePath(in: directory))
            try storage.persist(PersistBatch(snapshot: snapshot(20, term: 2)))
            let error = storageError { try storage.persist(PersistBatch(entries: makeEntries(20...21, term: 2))) }
            #expect(error?.isWriteFailed == true)
            #expect(error?.message.contains("covered by the snapshot") == true)
        }
    }

    @Test func compactionSavesSnapshotAndDropsPrefix() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let storage = try openStorage(path)
            try storage.persist(PersistBatch(hardState: HardState(term: 1, vote: 1, commit: 10),
                                             entries: makeEntries(1...10, term: 1)))
            try storage.compact(to: snapshot(4, term: 1))
            try storage.compact(to: snapshot(7, term: 1))
            try storage.persist(PersistBatch(entries: makeEntries(11...12, term: 1)))
            storage.close()
            let state = try openStorage(path).load()
            #expect(state.snapshot == snapshot(7, term: 1))
            #expect(state.entries == makeEntries(8...12, term: 1))
            #expect(state.hardState.commit == 10)
        }
    }

    @Test func compactionToLastIndexLeavesEmptyLogThatAcceptsAppends() throws {
        try withTemporaryDirectory { directory in
            let storage = try openStorage(databasePath(in: directory))
            try storage.persist(PersistBatch(entries: makeEntries(1...5, term: 1)))
            try storage.compact(to: snapshot(5, term: 1))
            #expect(try storage.load().entries.isEmpty)
            try storage.persist(PersistBatch(entries: makeEntries(6...6, term: 1)))
            #expect(try storage.load().entries == makeEntries(6...6, term: 1))
        }
    }

    @Test func invalidCompactionsAreRejected() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            do {
                let storage = try openStorage(path)
                try storage.persist(PersistBatch(entries: makeEntries(1...5, term: 1)))
                let beyond = storageError { try storage.compact(to: snapshot(9, term: 1)) }
                #expect(beyond?.message.contains("beyond the last log index") == true)
                #expect(storageError { try storage.compact(to: snapshot(3, term: 1)) }?.isUnavailable == true)
            }
            do {
                let storage = try openStorage(path)
                let wrongTerm = storageError { try storage.compact(to: snapshot(3, term: 9)) }
                #expect(wrongTerm?.message.contains("differs") == true)
            }
            #expect(try openStorage(path).load().entries == makeEntries(1...5, term: 1))
        }
    }
}
