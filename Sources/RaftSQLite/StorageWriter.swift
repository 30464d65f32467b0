import Raft

/// The write steps of ``SQLiteRaftStorage``, run inside an open `BEGIN IMMEDIATE` transaction.
/// Every failure is reported as ``RaftStorageError/writeFailed(_:)``; the caller rolls back.
struct StorageWriter {
    let db: SQLiteConnection

    /// Runs SQLite work, mapping its error to `writeFailed` with `what` as context.
    private func sql<T>(_ what: String, _ body: () throws(SQLiteError) -> T) throws(RaftStorageError) -> T {
        do {
            return try body()
        } catch {
            throw .writeFailed("\(what): \(error)")
        }
    }

    /// Converts a log index to SQLite's signed integer, refusing values that would not sort.
    private func sqlIndex(_ index: UInt64, _ what: String) throws(RaftStorageError) -> Int64 {
        guard index <= UInt64(Int64.max) else {
            throw .writeFailed("\(what): index \(index) exceeds the supported maximum \(Int64.max)")
        }
        return Int64(index)
    }

    // MARK: Queries

    /// Index of the stored snapshot, `0` if none.
    func storedSnapshotIndex() throws(RaftStorageError) -> UInt64 {
        let value = try sql("read snapshot index") { () throws(SQLiteError) in
            try db.scalarInt64("SELECT idx FROM snapshot WHERE id = 1")
        }
        return UInt64(bitPattern: value ?? 0)
    }

    /// Highest stored log index, or `nil` if the log table is empty.
    func storedLastIndex() throws(RaftStorageError) -> UInt64? {
        let value = try sql("read last index") { () throws(SQLiteError) in
            try db.scalarInt64("SELECT max(idx) FROM log_entries")
        }
        return value.map { UInt64(bitPattern: $0) }
    }

    /// Term of the stored entry at `index`, or `nil` if there is none.
    func storedTerm(at index: UInt64) throws(RaftStorageError) -> UInt64? {
        let key = try sqlIndex(index, "read term")
        return try sql("read term at \(index)") { () throws(SQLiteError) -> UInt64? in
            let statement = try db.cachedStatement("SELECT term FROM log_entries WHERE idx = ?1")
            defer { statement.reset() }
            try statement.bind(key, at: 1)
            guard try statement.step() else { return nil }
            return UInt64(bitPattern: statement.int64(at: 0))
        }
    }

    // MARK: Steps

    /// Installs a snapshot received from the leader: replaces the snapshot row and discards the
    /// log it covers. If the log has the entry at the snapshot index with the snapshot's term,
    /// the entries after it are kept (they are consistent with the snapshot); otherwise the
    /// whole log is discarded.
    func installSnapshot(_ snapshot: Snapshot) throws(RaftStorageError) {
        let meta = snapshot.metadata
        guard meta.index > 0 else {
            throw .writeFailed("install snapshot: snapshot index is 0 (an empty snapshot cannot be installed)")
        }
        let current = try storedSnapshotIndex()
        guard meta.index >= current else {
            throw .writeFailed("install snapshot: index \(meta.index) is older than the stored snapshot at \(current)")
        }
        let key = try sqlIndex(meta.index, "install snapshot")
        if let term = try storedTerm(at: meta.index), term == meta.term {
            try deleteEntries(through: key)
        } else {
            try sql("install snapshot: clear log") { () throws(SQLiteError) in
                try db.cachedStatement("DELETE FROM log_entries").run()
            }
        }
        try saveSnapshot(snapshot)
    }

    /// Appends `entries`, first truncating any stored suffix they overwrite.
    func append(_ entries: [Entry]) throws(RaftStorageError) {
        guard let first = entries.first, let last = entries.last else { return }
        // Checked first so the contiguity arithmetic below cannot overflow.
        guard first.index <= UInt64(Int64.max) - UInt64(entries.count) else {
            throw .writeFailed("append: index \(first.index) + \(entries.count) entries exceeds the supported maximum \(Int64.max)")
        }
        for (offset, entry) in entries.enumerated() where entry.index != first.index + UInt64(offset) {
            throw .writeFailed(
                "append: batch is not contiguous: entry #\(offset) has index \(entry.index), expected \(first.index + UInt64(offset))"
            )
        }
        let snapshotIndex = try storedSnapshotIndex()
        let lastIndex = try storedLastIndex() ?? snapshotIndex
        guard first.index > snapshotIndex else {
            throw .writeFailed(
                "append: first entry index \(first.index) is covered by the snapshot at index \(snapshotIndex)"
            )
        }
        guard first.index <= lastIndex + 1 else {
            throw .writeFailed(
                "append: gap: first entry index \(first.index) but the stored log ends at \(lastIndex) (expected at most \(lastIndex + 1))"
            )
        }
        if first.index <= lastIndex {
            let from = Int64(first.index)
            try sql("append: truncate conflicting suffix from \(first.index)") { () throws(SQLiteError) in
                let statement = try db.cachedStatement("DELETE FROM log_entries WHERE idx >= ?1")
                try statement.bind(from, at: 1)
                try statement.run()
            }
        }
        try sql("append: insert entries \(first.index)...\(last.index)") { () throws(SQLiteError) in
            let statement = try db.cachedStatement(
                "INSERT INTO log_entries (idx, term, kind, data, crc) VALUES (?1, ?2, ?3, ?4, ?5)"
            )
            for entry in entries {
                statement.reset()
                let crc = RecordChecksum.entry(index: entry.index, term: entry.term,
                                               kind: entry.kind.rawValue, data: entry.data)
                try statement.bind(Int64(entry.index), at: 1)
                try statement.bind(Int64(bitPattern: entry.term), at: 2)
                try statement.bind(Int64(entry.kind.rawValue), at: 3)
                try statement.bind(blob: entry.data, at: 4)
                try statement.bind(Int64(crc), at: 5)
                try statement.run()
            }
            statement.reset()
        }
    }

    /// Replaces the hard state row.
    func writeHardState(_ hardState: HardState) throws(RaftStorageError) {
        try sql("write hard state") { () throws(SQLiteError) in
            let statement = try db.cachedStatement(
                "INSERT OR REPLACE INTO hard_state (id, term, vote, commit_index, crc) VALUES (1, ?1, ?2, ?3, ?4)"
            )
            defer { statement.reset() }
            try statement.bind(Int64(bitPattern: hardState.term), at: 1)
            try statement.bind(Int64(bitPattern: hardState.vote), at: 2)
            try statement.bind(Int64(bitPattern: hardState.commit), at: 3)
            try statement.bind(Int64(RecordChecksum.hardState(hardState)), at: 4)
            try statement.run()
        }
    }

    /// Saves a snapshot taken locally and deletes the entries up to its index. With `file`, the
    /// row records that file (the bytes were staged by ``SnapshotFiles``) instead of holding
    /// `snapshot.data`.
    func compact(to snapshot: Snapshot, file: SnapshotFileReference? = nil) throws(RaftStorageError) {
        let meta = snapshot.metadata
        guard meta.index > 0 else {
            throw .writeFailed("compact: snapshot index is 0")
        }
        let current = try storedSnapshotIndex()
        guard meta.index >= current else {
            throw .writeFailed("compact: index \(meta.index) is older than the stored snapshot at \(current)")
        }
        let lastIndex = try storedLastIndex() ?? current
        guard meta.index <= lastIndex else {
            throw .writeFailed("compact: index \(meta.index) is beyond the last log index \(lastIndex)")
        }
        if let term = try storedTerm(at: meta.index), term != meta.term {
            throw .writeFailed("compact: snapshot term \(meta.term) differs from the log's term \(term) at index \(meta.index)")
        }
        try saveSnapshot(snapshot, file: file)
        try deleteEntries(through: try sqlIndex(meta.index, "compact"))
    }

    /// The name of the snapshot file the stored row records, if it records one.
    func storedSnapshotFile() throws(RaftStorageError) -> String? {
        try storedSnapshotFileReference()?.reference.name
    }

    /// The index and file reference of the stored snapshot, if it is kept in a file.
    func storedSnapshotFileReference() throws(RaftStorageError) -> (index: UInt64, reference: SnapshotFileReference)? {
        let row = try sql("read snapshot file reference") { () throws(SQLiteError) -> (Int64, [UInt8])? in
            let statement = try db.cachedStatement("SELECT idx, data FROM snapshot WHERE id = 1 AND in_file = 1")
            defer { statement.reset() }
            guard try statement.step() else { return nil }
            return (statement.int64(at: 0), statement.blob(at: 1))
        }
        guard let row, row.0 > 0, let reference = SnapshotFileReference(decoding: row.1) else { return nil }
        return (UInt64(row.0), reference)
    }

    // MARK: Helpers

    private func deleteEntries(through index: Int64) throws(RaftStorageError) {
        try sql("delete entries through \(index)") { () throws(SQLiteError) in
            let statement = try db.cachedStatement("DELETE FROM log_entries WHERE idx <= ?1")
            defer { statement.reset() }
            try statement.bind(index, at: 1)
            try statement.run()
        }
    }

    private func saveSnapshot(_ snapshot: Snapshot, file: SnapshotFileReference? = nil) throws(RaftStorageError) {
        let meta = snapshot.metadata
        let data = file?.encoded ?? snapshot.data
        let key = try sqlIndex(meta.index, "save snapshot")
        let voters = NodeSetCoding.encode(meta.conf.voters)
        let learners = NodeSetCoding.encode(meta.conf.learners)
        let crc = RecordChecksum.snapshot(index: meta.index, term: meta.term,
                                          voters: voters, learners: learners, data: data)
        try sql("save snapshot at \(meta.index)") { () throws(SQLiteError) in
            let statement = try db.cachedStatement(
                "INSERT OR REPLACE INTO snapshot (id, idx, term, voters, learners, data, crc, in_file) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            )
            defer { statement.reset() }
            try statement.bind(key, at: 1)
            try statement.bind(Int64(bitPattern: meta.term), at: 2)
            try statement.bind(blob: voters, at: 3)
            try statement.bind(blob: learners, at: 4)
            try statement.bind(blob: data, at: 5)
            try statement.bind(Int64(crc), at: 6)
            try statement.bind(Int64(file == nil ? 0 : 1), at: 7)
            try statement.run()
        }
    }
}
