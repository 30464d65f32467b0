import Raft

/// The read and verify steps of ``SQLiteRaftStorage/load()``, run inside a read transaction.
/// SQLite failures are ``RaftStorageError/unavailable(_:)``; failed checks are
/// ``RaftStorageError/corrupted(_:)`` naming the row and the check.
struct StorageReader {
    let db: SQLiteConnection

    private func sql<T>(_ what: String, _ body: () throws(SQLiteError) -> T) throws(RaftStorageError) -> T {
        do {
            return try body()
        } catch {
            throw .unavailable("load: \(what): \(error)")
        }
    }

    /// Requires column `column` of `statement` to have `type`, else reports corruption.
    private func expect(
        _ statement: SQLiteStatement, _ column: Int32, _ type: SQLiteColumnType, _ what: String
    ) throws(RaftStorageError) {
        let actual = statement.columnType(at: column)
        guard actual == type else {
            throw .corrupted("\(what): column \(column) has type \(actual), expected \(type)")
        }
    }

    /// The stored hard state, or the zero value if none was ever written.
    func readHardState() throws(RaftStorageError) -> HardState {
        let statement = try sql("prepare hard state") { () throws(SQLiteError) in
            try db.cachedStatement("SELECT term, vote, commit_index, crc FROM hard_state WHERE id = 1")
        }
        defer { statement.reset() }
        guard try sql("read hard state", { () throws(SQLiteError) in try statement.step() }) else {
            return HardState()
        }
        for column in Int32(0)...3 {
            try expect(statement, column, .integer, "hard state")
        }
        let hardState = HardState(
            term: UInt64(bitPattern: statement.int64(at: 0)),
            vote: UInt64(bitPattern: statement.int64(at: 1)),
            commit: UInt64(bitPattern: statement.int64(at: 2))
        )
        let stored = statement.int64(at: 3)
        let computed = RecordChecksum.hardState(hardState)
        guard stored == Int64(computed) else {
            throw .corrupted("hard state: checksum mismatch (stored \(hex(stored)), computed \(hex(Int64(computed))))")
        }
        return hardState
    }

    /// The stored snapshot, or an empty one (index 0) if none was ever saved. A row that
    /// records a snapshot file is read from `files` and verified against the row.
    func readSnapshot(files: SnapshotFiles?) throws(RaftStorageError) -> Snapshot {
        let statement = try sql("prepare snapshot") { () throws(SQLiteError) in
            try db.cachedStatement("SELECT idx, term, voters, learners, data, crc, in_file FROM snapshot WHERE id = 1")
        }
        defer { statement.reset() }
        guard try sql("read snapshot", { () throws(SQLiteError) in try statement.step() }) else {
            return Snapshot()
        }
        let types: [SQLiteColumnType] = [.integer, .integer, .blob, .blob, .blob, .integer, .integer]
        for (column, type) in types.enumerated() {
            try expect(statement, Int32(column), type, "snapshot")
        }
        let inFile = statement.int64(at: 6)
        let index = UInt64(bitPattern: statement.int64(at: 0))
        let term = UInt64(bitPattern: statement.int64(at: 1))
        let voterBytes = statement.blob(at: 2)
        let learnerBytes = statement.blob(at: 3)
        let data = statement.blob(at: 4)
        let stored = statement.int64(at: 5)
        let computed = RecordChecksum.snapshot(index: index, term: term, voters: voterBytes,
                                               learners: learnerBytes, data: data)
        guard stored == Int64(computed) else {
            throw .corrupted(
                "snapshot at index \(index): checksum mismatch (stored \(hex(stored)), computed \(hex(Int64(computed))))"
            )
        }
        guard let voters = NodeSetCoding.decode(voterBytes), let learners = NodeSetCoding.decode(learnerBytes) else {
            throw .corrupted("snapshot at index \(index): membership blob length is not a multiple of 8")
        }
        guard index > 0, index <= UInt64(Int64.max) else {
            throw .corrupted("snapshot: invalid index \(statement.int64(at: 0))")
        }
        let metadata = SnapshotMetadata(index: index, term: term, conf: ConfState(voters: voters, learners: learners))
        switch inFile {
        case 0:
            return Snapshot(metadata: metadata, data: data)
        case 1:
            guard let reference = SnapshotFileReference(decoding: data) else {
                throw .corrupted("snapshot at index \(index): the file reference is malformed")
            }
            guard let files else {
                throw .corrupted("snapshot at index \(index): recorded in file \(reference.name), but this storage has no snapshot directory")
            }
            return Snapshot(metadata: metadata, data: try files.read(reference, index: index))
        default:
            throw .corrupted("snapshot at index \(index): unknown in_file value \(inFile)")
        }
    }

    /// All stored entries, verified: each checksum and kind, first index = `snapshotIndex + 1`,
    /// no gaps.
    func readEntries(after snapshotIndex: UInt64) throws(RaftStorageError) -> [Entry] {
        let statement = try sql("prepare entries") { () throws(SQLiteError) in
            try db.cachedStatement("SELECT idx, term, kind, data, crc FROM log_entries ORDER BY idx")
        }
        defer { statement.reset() }
        var entries: [Entry] = []
        var expectedIndex = snapshotIndex + 1
        while try sql("read entries", { () throws(SQLiteError) in try statement.step() }) {
            let rowIndex = statement.int64(at: 0)
            let label = "log entry \(rowIndex)"
            let types: [SQLiteColumnType] = [.integer, .integer, .integer, .blob, .integer]
            for (column, type) in types.enumerated() {
                try expect(statement, Int32(column), type, label)
            }
            let index = UInt64(bitPattern: rowIndex)
            guard index == expectedIndex else {
                if entries.isEmpty {
                    throw .corrupted(
                        "log does not follow the snapshot: first entry has index \(rowIndex), expected \(expectedIndex) (snapshot index \(snapshotIndex))"
                    )
                }
                throw .corrupted(
                    "log gap: entry \(expectedIndex) is missing (entry \(expectedIndex - 1) is followed by \(rowIndex))"
                )
            }
            let term = UInt64(bitPattern: statement.int64(at: 1))
            let rawKind = statement.int64(at: 2)
            let data = statement.blob(at: 3)
            let stored = statement.int64(at: 4)
            guard let kindByte = UInt8(exactly: rawKind), let kind = EntryKind(rawValue: kindByte) else {
                throw .corrupted("\(label): unknown entry kind \(rawKind)")
            }
            let computed = RecordChecksum.entry(index: index, term: term, kind: kindByte, data: data)
            guard stored == Int64(computed) else {
                throw .corrupted(
                    "\(label): checksum mismatch (stored \(hex(stored)), computed \(hex(Int64(computed))), term \(term), \(data.count) data bytes)"
                )
            }
            entries.append(Entry(term: term, index: index, kind: kind, data: data))
            expectedIndex += 1
        }
        return entries
    }

    private func hex(_ value: Int64) -> String {
        "0x" + String(UInt64(bitPattern: value), radix: 16)
    }
}
