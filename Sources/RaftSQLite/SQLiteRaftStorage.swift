import Raft

/// A ``RaftStorage`` backed by one SQLite database file in WAL mode.
///
/// - Durability: every ``persist(_:)`` and ``compact(to:)`` is one `BEGIN IMMEDIATE … COMMIT`
///   transaction; with the default `synchronous=FULL` its commit is one fsync of the WAL, so a
///   whole ready-set (hard state, snapshot, any number of entries) costs one fsync (group commit).
///   A batch that only moves the commit index (``PersistBatch/mustSync`` false) is committed
///   with `synchronous=NORMAL`, without its own fsync.
/// - Integrity: every row carries a CRC-32; ``load()`` verifies checksums and log contiguity and
///   throws ``RaftStorageError/corrupted(_:)`` instead of returning a truncated log.
/// - Failure: after any error from ``persist(_:)`` or ``compact(to:)`` (I/O, lock, commit or an
///   invalid batch) the storage is *poisoned*: later writes throw
///   ``RaftStorageError/unavailable(_:)``. The node must stop and restart from ``load()`` on a
///   fresh instance.
///
/// Concurrency: like the protocol requires, an instance is used by one driver at a time and is
/// not thread-safe. It is deliberately not `Sendable`; a driver owns it (e.g. inside an actor)
/// and may hand it over with `sending`.
public final class SQLiteRaftStorage: RaftStorage {
    private enum State {
        case open(SQLiteConnection)
        case poisoned(SQLiteConnection, reason: String)
        case closed
    }

    private var state: State
    /// The database file.
    public let path: String
    /// The options the storage was opened with.
    public let options: SQLiteRaftStorageOptions
    /// Where locally taken snapshots are staged (`<path>.snapshots/`); `nil` for an in-memory
    /// database, whose snapshots stay inside it.
    let files: SnapshotFiles?
    /// With `synchronous = NORMAL` a commit may be undone by a power loss, so the file of a
    /// replaced snapshot is kept one more generation (the row it would fall back to names it).
    private var fileAwaitingRemoval: String?
    /// Told of every write transaction's timing and of a failure.
    private let observer: SQLiteRaftStorageObserver?

    /// Opens (creating if needed) the storage at `path`: WAL journal, `synchronous` from
    /// `options` (FULL by default), schema created or checked via `PRAGMA user_version`.
    ///
    /// - Parameter observer: told how long each write transaction and its commit took, and of
    ///   a failed write (metrics).
    /// - Throws: ``RaftStorageError/unavailable(_:)`` if the file cannot be opened or configured,
    ///   or has an unknown schema version.
    public init(path: String, options: SQLiteRaftStorageOptions = SQLiteRaftStorageOptions(),
                observer: SQLiteRaftStorageObserver? = nil) throws(RaftStorageError) {
        self.path = path
        self.options = options
        self.observer = observer
        let isFile = !path.isEmpty && path != ":memory:" && !path.hasPrefix("file:")
        self.files = isFile ? SnapshotFiles(databasePath: path) : nil
        let db: SQLiteConnection
        do {
            db = try SQLiteConnection(path: path)
            try db.setBusyTimeout(milliseconds: options.busyTimeoutMilliseconds)
            try db.setCacheSize(kibibytes: options.cacheSizeKiB)
            let journal = try db.scalarText("PRAGMA journal_mode = WAL")
            guard journal?.lowercased() == "wal" else {
                throw SQLiteError(code: -1, message: "journal_mode is \(journal ?? "nil"), wanted wal",
                                  context: "PRAGMA journal_mode = WAL")
            }
            try db.exec("PRAGMA synchronous = \(options.synchronous.pragmaValue)")
            let synchronous = try db.scalarInt64("PRAGMA synchronous")
            let expected: Int64 = options.synchronous == .full ? 2 : 1
            guard synchronous == expected else {
                throw SQLiteError(code: -1, message: "synchronous is \(synchronous ?? -1), wanted \(expected)",
                                  context: "PRAGMA synchronous")
            }
        } catch {
            throw .unavailable("cannot open raft storage at \(path): \(error)")
        }
        do {
            try StorageSchema.migrate(db)
        } catch {
            db.close()
            throw .unavailable("cannot open raft storage at \(path): \(error)")
        }
        if let files {
            do throws(RaftStorageError) {
                try files.createDirectory()
                // Staged files no row records are leftovers of a crash (or of a replaced
                // snapshot whose removal was interrupted): nothing stages yet, so sweep.
                files.removeAll(except: try StorageWriter(db: db).storedSnapshotFile())
            } catch {
                db.close()
                throw .unavailable("cannot open raft storage at \(path): \(error)")
            }
        }
        state = .open(db)
    }

    deinit {
        close()
    }

    /// Closes the database. Later calls throw ``RaftStorageError/unavailable(_:)``. Idempotent.
    public func close() {
        switch state {
        case .open(let db), .poisoned(let db, _):
            db.close()
        case .closed:
            break
        }
        state = .closed
    }

    /// Why the storage refuses writes, or `nil` while it accepts them.
    public var poisonReason: String? {
        switch state {
        case .open: nil
        case .poisoned(_, let reason): reason
        case .closed: "storage is closed"
        }
    }

    // MARK: - RaftStorage

    /// Reads hard state, snapshot and log in one read transaction and verifies them.
    ///
    /// Allowed on a poisoned storage (it only reads). Throws ``RaftStorageError/corrupted(_:)``
    /// naming the row and the failed check (checksum, kind, column type, contiguity).
    public func load() throws(RaftStorageError) -> PersistedState {
        let db: SQLiteConnection
        switch state {
        case .open(let connection), .poisoned(let connection, _):
            db = connection
        case .closed:
            throw .unavailable("storage at \(path) is closed")
        }
        do {
            try db.begin(.deferred)
        } catch {
            throw .unavailable("load: cannot begin read transaction: \(error)")
        }
        defer { db.rollbackIfNeeded() }
        let reader = StorageReader(db: db)
        let hardState = try reader.readHardState()
        let snapshot = try reader.readSnapshot(files: files)
        let entries = try reader.readEntries(after: snapshot.metadata.index)
        return PersistedState(hardState: hardState, snapshot: snapshot, entries: entries)
    }

    /// Writes `batch` in one immediate transaction (one fsync): snapshot, then conflict
    /// truncation and new entries, then hard state. An empty batch writes nothing.
    ///
    /// Rules checked (violations are programmer errors, reported as
    /// ``RaftStorageError/writeFailed(_:)`` and poisoning the storage):
    /// - a snapshot must have index > 0 and not be older than the stored one;
    /// - entries must have consecutive indices, the first one after the snapshot index and at
    ///   most the stored last index + 1 (overwriting a suffix is allowed, a gap is not);
    /// - indices must fit in `Int64`.
    public func persist(_ batch: PersistBatch) throws(RaftStorageError) {
        let db = try writableConnection()
        if batch.isEmpty { return }
        let replacedFile = batch.snapshot == nil ? nil : try recordedFile(db)
        // A commit-index-only batch is written without its fsync (WAL order keeps it before
        // every later commit, which the next durable commit flushes with it).
        let flush = batch.mustSync || options.synchronous != .full
        if !flush { try setSynchronous(db, "NORMAL") }
        defer { if !flush { try? setSynchronous(db, "FULL") } }
        try writeTransaction(db, operation: "persist", observed: flush) { writer throws(RaftStorageError) in
            if let snapshot = batch.snapshot {
                try writer.installSnapshot(snapshot)
            }
            if !batch.entries.isEmpty {
                try writer.append(batch.entries)
            }
            if let hardState = batch.hardState {
                try writer.writeHardState(hardState)
            }
        }
        // A received snapshot is stored in the row: the file of the one it replaced may go.
        if let replacedFile { retire(replacedFile) }
    }

    /// Saves a locally taken snapshot and deletes the entries it covers, in one transaction.
    ///
    /// The snapshot must not be older than the stored one and its index must not exceed the
    /// last log index; if the log holds the entry at that index, its term must match.
    /// Violations throw ``RaftStorageError/writeFailed(_:)`` and poison the storage.
    public func compact(to snapshot: Snapshot) throws(RaftStorageError) {
        let db = try writableConnection()
        let replacedFile = try recordedFile(db)
        try writeTransaction(db, operation: "compact") { writer throws(RaftStorageError) in
            try writer.compact(to: snapshot)
        }
        if let replacedFile { retire(replacedFile) }
    }

    /// The stager of this storage's snapshot files (`nil` for an in-memory database).
    public var snapshotStager: (any SnapshotStager)? { files }

    /// Records the snapshot file `staged` (written by ``snapshotStager``) for `snapshot` and
    /// deletes the log entries it covers, in one short transaction; then removes the file of the
    /// snapshot it replaced. `snapshot.data` is not written again, and may be empty (the staged file holds the bytes).
    ///
    /// Crash safety: the file is complete and durable before this starts, and the previous
    /// snapshot's file is removed only after the commit, so a crash at any point leaves either
    /// the previous snapshot and the whole log or the new snapshot and the compacted log (a
    /// staged file no row records is removed when the storage opens again).
    public func compact(to snapshot: Snapshot, staged: StagedSnapshot) throws(RaftStorageError) {
        let db = try writableConnection()
        guard files != nil else {
            throw poison(db, "compact: a staged snapshot was given to a storage without snapshot files")
        }
        guard staged.index == snapshot.metadata.index, snapshot.data.isEmpty || UInt64(snapshot.data.count) == staged.size else {
            throw poison(db, "compact: staged snapshot \(staged.name) (index \(staged.index), \(staged.size) bytes) does not match the snapshot at \(snapshot.metadata.index) (\(snapshot.data.count) bytes)")
        }
        let replacedFile = try recordedFile(db)
        try writeTransaction(db, operation: "compact") { writer throws(RaftStorageError) in
            try writer.compact(to: snapshot, file: SnapshotFileReference(staged))
        }
        if let replacedFile, replacedFile != staged.name { retire(replacedFile) }
    }

    /// Reads the recorded snapshot back from its file, verified as ``load()`` verifies it; nil
    /// when the recorded snapshot is not in a file (none yet, an in-memory database, or one
    /// received from a leader, which is kept in its row).
    public var recordedSnapshotReader: (@Sendable () -> [UInt8]?)? {
        guard let files, case .open(let db) = state,
              let recorded = try? StorageWriter(db: db).storedSnapshotFileReference() else { return nil }
        return files.reader(for: recorded.reference, index: recorded.index)
    }

    /// Removes the file of a replaced snapshot once no durable row can name it again.
    private func retire(_ name: String) {
        guard let files else { return }
        if options.synchronous == .full {
            files.retire(named: name)
        } else {
            if let older = fileAwaitingRemoval { files.retire(named: older) }
            fileAwaitingRemoval = name
        }
    }

    private func recordedFile(_ db: SQLiteConnection) throws(RaftStorageError) -> String? {
        guard files != nil else { return nil }
        do {
            return try StorageWriter(db: db).storedSnapshotFile()
        } catch {
            throw poison(db, "cannot read the recorded snapshot file: \(error)")
        }
    }

    // MARK: - Write plumbing

    private func writableConnection() throws(RaftStorageError) -> SQLiteConnection {
        switch state {
        case .open(let db):
            return db
        case .poisoned(_, let reason):
            throw .unavailable("storage at \(path) is poisoned by an earlier failure: \(reason)")
        case .closed:
            throw .unavailable("storage at \(path) is closed")
        }
    }

    /// Sets `PRAGMA synchronous` between transactions; a failure poisons the storage (it must
    /// never go on committing less durably than it was opened for). Does nothing once the
    /// storage is poisoned or closed (it writes nothing more).
    private func setSynchronous(_ db: SQLiteConnection, _ value: String) throws(RaftStorageError) {
        guard case .open = state else { return }
        do {
            try db.exec("PRAGMA synchronous = \(value)")
        } catch {
            throw poison(db, "PRAGMA synchronous = \(value) failed: \(error)")
        }
    }

    /// Runs `body` between `BEGIN IMMEDIATE` and `COMMIT`; on any failure rolls back, poisons
    /// the storage and throws ``RaftStorageError/writeFailed(_:)``.
    ///
    /// - Parameter observed: whether the ``observer`` hears of the commit (its timings describe
    ///   durable commits; a commit-index-only write without fsync is not one).
    private func writeTransaction(
        _ db: SQLiteConnection,
        operation: String,
        observed: Bool = true,
        _ body: (StorageWriter) throws(RaftStorageError) -> Void
    ) throws(RaftStorageError) {
        let start = ContinuousClock.now
        do {
            try db.begin(.immediate)
        } catch {
            throw poison(db, "\(operation): BEGIN IMMEDIATE failed: \(error)")
        }
        do {
            try body(StorageWriter(db: db))
        } catch {
            let message: String
            switch error {
            case .writeFailed(let text), .corrupted(let text), .unavailable(let text):
                message = text
            }
            db.rollbackIfNeeded()
            throw poison(db, "\(operation): \(message)")
        }
        let commitStart = ContinuousClock.now
        do {
            try db.commit()
        } catch {
            db.rollbackIfNeeded()
            throw poison(db, "\(operation): COMMIT failed (batch not durable): \(error)")
        }
        if let observer, observed {
            let end = ContinuousClock.now
            observer.committed(end - commitStart, end - start)
        }
    }

    private func poison(_ db: SQLiteConnection, _ reason: String) -> RaftStorageError {
        state = .poisoned(db, reason: reason)
        observer?.failed()
        return .writeFailed(reason)
    }
}
