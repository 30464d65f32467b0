import Testing
@testable import Raft

@Suite("MemoryStorage")
struct MemoryStorageTests {
    func entries(_ range: ClosedRange<UInt64>, term: UInt64) -> [Entry] {
        range.map { Entry(term: term, index: $0, data: [UInt8(truncatingIfNeeded: $0)]) }
    }

    @Test("append, then truncate a conflicting suffix")
    func truncation() throws {
        let s = MemoryStorage()
        try s.persist(PersistBatch(hardState: HardState(term: 1, vote: 1, commit: 0), entries: entries(1...5, term: 1)))
        try s.persist(PersistBatch(entries: entries(3...4, term: 2)))
        let state = try s.load()
        #expect(state.entries.map(\.index) == [1, 2, 3, 4])
        #expect(state.entries.map(\.term) == [1, 1, 2, 2])
        #expect(state.hardState == HardState(term: 1, vote: 1, commit: 0))
        #expect(s.persistCount == 2)
    }

    @Test("gaps and non-contiguous batches are refused and write nothing")
    func gaps() throws {
        let s = MemoryStorage()
        try s.persist(PersistBatch(entries: entries(1...2, term: 1)))
        #expect(throws: RaftStorageError.self) {
            try s.persist(PersistBatch(hardState: HardState(term: 9), entries: entries(4...4, term: 1)))
        }
        #expect(try s.load().hardState.term == 0, "atomic: the hard state of a failed batch is not written")
        #expect(try s.load().entries.count == 2)
    }

    @Test("installing a snapshot discards a conflicting log, keeps a matching suffix")
    func snapshotInstall() throws {
        let s = MemoryStorage()
        try s.persist(PersistBatch(entries: entries(1...6, term: 1)))
        // Matching entry at 4: keep 5...6.
        try s.persist(PersistBatch(snapshot: Snapshot(metadata: SnapshotMetadata(index: 4, term: 1), data: [1])))
        #expect(try s.load().entries.map(\.index) == [5, 6])
        // Conflicting: discard everything, then append after it.
        try s.persist(PersistBatch(
            snapshot: Snapshot(metadata: SnapshotMetadata(index: 8, term: 3), data: [2]),
            entries: entries(9...9, term: 3)
        ))
        let state = try s.load()
        #expect(state.snapshot.metadata.index == 8)
        #expect(state.entries.map(\.index) == [9])
    }

    @Test("compaction drops the covered prefix and checks the term")
    func compaction() throws {
        let s = MemoryStorage()
        try s.persist(PersistBatch(entries: entries(1...5, term: 2)))
        #expect(throws: RaftStorageError.self) { try s.compact(to: Snapshot(metadata: SnapshotMetadata(index: 3, term: 1))) }
        try s.compact(to: Snapshot(metadata: SnapshotMetadata(index: 3, term: 2), data: [3]))
        let state = try s.load()
        #expect(state.snapshot.metadata.index == 3)
        #expect(state.entries.map(\.index) == [4, 5])
        #expect(throws: RaftStorageError.self) { try s.persist(PersistBatch(entries: entries(2...2, term: 2))) }
    }

    @Test("fault injection: a failed persist poisons the storage until reopened")
    func faultInjection() throws {
        let s = MemoryStorage()
        try s.persist(PersistBatch(entries: entries(1...1, term: 1)))
        s.failPersists = true
        #expect(throws: RaftStorageError.writeFailed("injected write failure")) {
            try s.persist(PersistBatch(entries: entries(2...2, term: 1)))
        }
        s.failPersists = false
        #expect(s.isPoisoned)
        #expect(throws: RaftStorageError.self) { try s.persist(PersistBatch(entries: entries(2...2, term: 1))) }
        #expect(try s.load().entries.count == 1, "nothing of the failed batch was written")
        s.reopen()
        try s.persist(PersistBatch(entries: entries(2...2, term: 1)))
        #expect(try s.load().entries.count == 2)
    }
}
