import Foundation
import Raft
@testable import RaftSQLite
import Testing

/// Snapshots staged as files (``SnapshotFiles``) and recorded by `compact(to:staged:)`.
@Suite struct SnapshotFileTests {
    private func snapshot(_ index: UInt64, term: UInt64 = 1, size: Int = 3_000) -> Snapshot {
        Snapshot(metadata: SnapshotMetadata(index: index, term: term, conf: ConfState(voters: [1, 2, 3])),
                 data: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(index)) })
    }

    private func snapshotFiles(_ path: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path + ".snapshots").sorted()
    }

    /// The files once the background removal of replaced ones is done (bounded wait).
    private func settledSnapshotFiles(_ path: String, expecting expected: [String]) throws -> [String] {
        let deadline = ContinuousClock.now + .seconds(10)
        while try snapshotFiles(path) != expected, ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        return try snapshotFiles(path)
    }

    /// Stages and records `snap` the way the lease store does.
    private func compactViaFile(_ storage: SQLiteRaftStorage, _ snap: Snapshot) throws {
        let stager = try #require(storage.snapshotStager)
        let staged = try stager.stage(index: snap.metadata.index, data: snap.data)
        try storage.compact(to: snap, staged: staged)
    }

    @Test("the bytes of a staged snapshot, and after a reopen of the recorded one, read back verified; nothing when there is no file or it is damaged")
    func snapshotBytesReadBackFromTheFile() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let storage = try openStorage(path)
            #expect(storage.recordedSnapshotReader == nil, "no snapshot recorded yet")
            try storage.persist(PersistBatch(entries: makeEntries(1...20, term: 1)))
            let stager = try #require(storage.snapshotStager)
            let staged = try stager.stage(index: 12, data: snapshot(12).data)
            #expect(stager.reader(for: staged)() == snapshot(12).data)
            // The store records it without the bytes (they stay in the file).
            try storage.compact(to: Snapshot(metadata: snapshot(12).metadata), staged: staged)
            storage.close()

            let reopened = try openStorage(path)
            let reader = try #require(reopened.recordedSnapshotReader)
            #expect(reader() == snapshot(12).data)
            #expect(try reopened.load().snapshot == snapshot(12), "the record points at the full bytes")
            // A damaged file reads back as nothing (the core then sends nothing).
            let file = URL(fileURLWithPath: path + ".snapshots/" + SnapshotFiles.name(index: 12))
            var bytes = try Data(contentsOf: file)
            bytes[bytes.count / 2] ^= 0xFF
            try bytes.write(to: file)
            #expect(reader() == nil)
            reopened.close()

            // A snapshot received from a leader is kept in its row: no file to read back, so
            // the core keeps its bytes.
            let follower = try openStorage(directory.appendingPathComponent("follower.db").path)
            try follower.persist(PersistBatch(snapshot: snapshot(30)))
            #expect(follower.recordedSnapshotReader == nil)
            follower.close()
        }
    }

    @Test func stagedSnapshotIsRecordedCompactsTheLogAndLoadsBack() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let storage = try openStorage(path)
            try storage.persist(PersistBatch(entries: makeEntries(1...20, term: 1)))
            try compactViaFile(storage, snapshot(12))
            storage.close()
            let state = try openStorage(path).load()
            #expect(state.snapshot == snapshot(12))
            #expect(state.entries == makeEntries(13...20, term: 1))
            #expect(try snapshotFiles(path) == [SnapshotFiles.name(index: 12)])
            // The row holds a reference, not the bytes.
            let raw = try SQLiteConnection(path: path)
            #expect(try raw.scalarInt64("SELECT in_file FROM snapshot") == 1)
            #expect(try raw.scalarInt64("SELECT length(data) FROM snapshot").map { $0 < 100 } == true)
        }
    }

    @Test func newerSnapshotFileReplacesTheOlderOne() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let storage = try openStorage(path)
            try storage.persist(PersistBatch(entries: makeEntries(1...30, term: 1)))
            try compactViaFile(storage, snapshot(10))
            try compactViaFile(storage, snapshot(25))
            // The replaced file left its name at once; it is removed in the background.
            #expect(!FileManager.default.fileExists(atPath: path + ".snapshots/" + SnapshotFiles.name(index: 10)))
            #expect(try storage.load().snapshot == snapshot(25))
            #expect(try settledSnapshotFiles(path, expecting: [SnapshotFiles.name(index: 25)]) == [SnapshotFiles.name(index: 25)])
        }
    }

    @Test("a retired snapshot file is shrunk step by step and then unlinked")
    func retiredFileIsRemovedGradually() throws {
        try withTemporaryDirectory { directory in
            let file = directory.appendingPathComponent("snapshot-1.snap.retired").path
            #expect(FileManager.default.createFile(atPath: file, contents: nil))
            let handle = try #require(FileHandle(forWritingAtPath: file))
            try handle.truncate(atOffset: UInt64(3 * SnapshotFiles.shrinkStep + 12_345))  // sparse
            try handle.close()
            SnapshotFiles.removeGradually(file)
            #expect(!FileManager.default.fileExists(atPath: file))
        }
    }

    @Test func stagedButUnrecordedSnapshotIsIgnoredAndSweptOnOpen() throws {
        // A crash between staging and recording: the old snapshot and the whole log remain.
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let storage = try openStorage(path)
            try storage.persist(PersistBatch(entries: makeEntries(1...30, term: 1)))
            try compactViaFile(storage, snapshot(10))
            _ = try #require(storage.snapshotStager).stage(index: 25, data: snapshot(25).data)
            // And a temporary file of an interrupted staging.
            try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path + ".snapshots/" + SnapshotFiles.name(index: 28) + ".tmp"))
            // And a replaced file whose background removal a crash interrupted.
            try Data([4, 5]).write(to: URL(fileURLWithPath: path + ".snapshots/" + SnapshotFiles.name(index: 5) + SnapshotFiles.retiredSuffix))
            storage.close()
            let reopened = try openStorage(path)
            let state = try reopened.load()
            #expect(state.snapshot == snapshot(10))
            #expect(state.entries == makeEntries(11...30, term: 1))
            #expect(try snapshotFiles(path) == [SnapshotFiles.name(index: 10)])
        }
    }

    @Test func damagedSnapshotFileIsReportedAsCorruption() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let storage = try openStorage(path)
            try storage.persist(PersistBatch(entries: makeEntries(1...20, term: 1)))
            try compactViaFile(storage, snapshot(12))
            storage.close()
            let file = URL(fileURLWithPath: path + ".snapshots/" + SnapshotFiles.name(index: 12))
            var bytes = try Data(contentsOf: file)
            bytes[100] ^= 0xFF
            try bytes.write(to: file)
            let error = storageError { _ = try openStorage(path).load() }
            #expect(error?.isCorrupted == true)
            #expect(error?.message.contains("checksum") == true)
        }
    }

    @Test func missingSnapshotFileIsReportedAsCorruption() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let storage = try openStorage(path)
            try storage.persist(PersistBatch(entries: makeEntries(1...20, term: 1)))
            try compactViaFile(storage, snapshot(12))
            storage.close()
            try FileManager.default.removeItem(atPath: path + ".snapshots/" + SnapshotFiles.name(index: 12))
            #expect(storageError { _ = try openStorage(path).load() }?.isCorrupted == true)
        }
    }

    @Test func receivedSnapshotReplacesARecordedFile() throws {
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let storage = try openStorage(path)
            try storage.persist(PersistBatch(entries: makeEntries(1...20, term: 1)))
            try compactViaFile(storage, snapshot(12))
            try storage.persist(PersistBatch(snapshot: snapshot(40, term: 2)))
            #expect(!FileManager.default.fileExists(atPath: path + ".snapshots/" + SnapshotFiles.name(index: 12)))
            #expect(try settledSnapshotFiles(path, expecting: []).isEmpty)
            storage.close()
            #expect(try openStorage(path).load().snapshot == snapshot(40, term: 2))
        }
    }

    @Test func versionOneDatabaseWithInlineSnapshotStillLoads() throws {
        // A data dir written before snapshot files: schema version 1, bytes inside the row.
        try withTemporaryDirectory { directory in
            let path = databasePath(in: directory)
            let raw = try SQLiteConnection(path: path)
            try raw.exec(StorageSchema.version1)
            let snap = snapshot(7)
            let voters = NodeSetCoding.encode(snap.metadata.conf.voters)
            let crc = RecordChecksum.snapshot(index: 7, term: 1, voters: voters, learners: [], data: snap.data)
            let statement = try raw.cachedStatement(
                "INSERT INTO snapshot (id, idx, term, voters, learners, data, crc) VALUES (1, 7, 1, ?1, ?2, ?3, ?4)")
            try statement.bind(blob: voters, at: 1)
            try statement.bind(blob: [], at: 2)
            try statement.bind(blob: snap.data, at: 3)
            try statement.bind(Int64(crc), at: 4)
            try statement.run()
            statement.reset()
            raw.close()
            let storage = try openStorage(path)
            #expect(try storage.load().snapshot == snap)
            let check = try SQLiteConnection(path: path)
            #expect(try check.scalarInt64("PRAGMA user_version") == 2)
        }
    }

    @Test func stagedSnapshotThatDoesNotMatchIsRefused() throws {
        try withTemporaryDirectory { directory in
            let storage = try openStorage(databasePath(in: directory))
            try storage.persist(PersistBatch(entries: makeEntries(1...20, term: 1)))
            let staged = try #require(storage.snapshotStager).stage(index: 11, data: snapshot(11).data)
            #expect(storageError { try storage.compact(to: snapshot(12), staged: staged) }?.isWriteFailed == true)
        }
    }
}
