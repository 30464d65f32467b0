import Foundation
import Raft
import RaftSQLite
import Synchronization
import Testing

@Suite struct StorageObserverTests {
    @Test("the observer hears each committed write with its commit and transaction times, and a failed write once")
    func observerSeesCommitsAndTheFailure() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let seen = Mutex((commits: [Duration](), totals: [Duration](), failures: 0))
            let observer = SQLiteRaftStorageObserver(
                committed: { commit, total in seen.withLock { $0.commits.append(commit); $0.totals.append(total) } },
                failed: { seen.withLock { $0.failures += 1 } })
            var options = SQLiteRaftStorageOptions()
            options.busyTimeoutMilliseconds = 0
            let storage = try SQLiteRaftStorage(path: path, options: options, observer: observer)
            try storage.persist(PersistBatch(hardState: HardState(term: 1, vote: 1), entries: makeEntries(1...3, term: 1)))
            try storage.persist(PersistBatch(entries: makeEntries(4...4, term: 1)))
            let afterCommits = seen.withLock { $0 }
            #expect(afterCommits.commits.count == 2)
            #expect(zip(afterCommits.commits, afterCommits.totals).allSatisfy { commit, total in commit > .zero && commit <= total })
            #expect(afterCommits.failures == 0)

            // Another connection holds the write lock: BEGIN IMMEDIATE fails.
            let blocker = try SQLiteConnection(path: path)
            try blocker.begin(.immediate)
            #expect(storageError { try storage.persist(PersistBatch(entries: makeEntries(5...5, term: 1))) } != nil)
            try blocker.rollback()
            blocker.close()
            #expect(seen.withLock { ($0.commits.count, $0.failures) } == (2, 1))
            storage.close()
        }
    }

    @Test("a batch that only moves the commit index is written without a flush, and later writes are flushed again")
    func commitOnlyBatchIsNotFlushed() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let durableCommits = Mutex(0)
            let observer = SQLiteRaftStorageObserver(committed: { _, _ in durableCommits.withLock { $0 += 1 } }, failed: {})
            let storage = try SQLiteRaftStorage(path: path, observer: observer)
            try storage.persist(PersistBatch(hardState: HardState(term: 1, vote: 1), entries: makeEntries(1...3, term: 1)))
            try storage.persist(PersistBatch(hardState: HardState(term: 1, vote: 1, commit: 3), mustSync: false))
            #expect(durableCommits.withLock { $0 } == 1, "the commit-only batch must not count as a durable commit")
            let connection = try SQLiteConnection(path: path)
            #expect(try connection.scalarInt64("PRAGMA synchronous") == 2, "a new connection starts FULL")
            connection.close()
            try storage.persist(PersistBatch(entries: makeEntries(4...4, term: 1)))
            #expect(durableCommits.withLock { $0 } == 2)
            storage.close()

            // The unflushed write is there after a clean close (only a machine crash may lose it).
            let reopened = try SQLiteRaftStorage(path: path)
            let state = try reopened.load()
            #expect(state.hardState == HardState(term: 1, vote: 1, commit: 3))
            #expect(state.entries.map(\.index) == [1, 2, 3, 4])
            reopened.close()
        }
    }
}
