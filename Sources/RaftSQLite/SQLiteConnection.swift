import CSQLite

/// A thin, synchronous wrapper around one `sqlite3*` connection.
///
/// Not thread-safe: use a connection (and its statements) from one thread or task at a time.
/// The handle is closed by ``close()`` or, at the latest, when the object is deinitialized.
public final class SQLiteConnection {
    /// How a connection opens its database file.
    public enum OpenMode: Sendable {
        /// Read and write; create the file if it does not exist.
        case readWriteCreate
        /// Read and write an existing file.
        case readWrite
        /// Read only.
        case readOnly

        var flags: Int32 {
            switch self {
            case .readWriteCreate: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
            case .readWrite: SQLITE_OPEN_READWRITE
            case .readOnly: SQLITE_OPEN_READONLY
            }
        }
    }

    /// The locking behaviour of ``begin(_:)`` (SQLite's `BEGIN DEFERRED|IMMEDIATE|EXCLUSIVE`).
    public enum TransactionMode: Sendable {
        /// Take locks on first use.
        case deferred
        /// Take the write lock now (fails with `SQLITE_BUSY` if another writer holds it).
        case immediate
        /// Take an exclusive lock now (in WAL mode the same as `immediate`).
        case exclusive

        var sql: String {
            switch self {
            case .deferred: "BEGIN DEFERRED"
            case .immediate: "BEGIN IMMEDIATE"
            case .exclusive: "BEGIN EXCLUSIVE"
            }
        }
    }

    private var handle: OpaquePointer?
    private var statementCache: [String: SQLiteStatement] = [:]

    /// The path the connection was opened with.
    public let path: String

    /// Opens (and, with `.readWriteCreate`, creates) the database at `path`.
    ///
    /// Extended result codes are enabled, so ``SQLiteError/code`` carries e.g. `SQLITE_IOERR_FSYNC`.
    /// - Throws: ``SQLiteError`` if the file cannot be opened.
    public init(path: String, mode: OpenMode = .readWriteCreate) throws(SQLiteError) {
        self.path = path
        var db: OpaquePointer?
        let flags = mode.flags | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let error = SQLiteError.from(db, code: rc, context: "open \(path)")
            sqlite3_close_v2(db)
            throw error
        }
        sqlite3_extended_result_codes(db, 1)
        handle = db
    }

    deinit {
        close()
    }

    /// Whether the connection is still open.
    public var isOpen: Bool { handle != nil }

    /// Finalizes the cached statements and closes the connection. Idempotent.
    ///
    /// Statements prepared with ``prepare(_:)`` and still alive keep SQLite's handle as a
    /// "zombie" until they are deinitialized, but refuse to run (they throw `SQLITE_MISUSE`).
    public func close() {
        for statement in statementCache.values {
            statement.finalize()
        }
        statementCache.removeAll()
        if let handle {
            sqlite3_close_v2(handle)
        }
        handle = nil
    }

    /// The raw handle, for the wrapper's own statements.
    func rawHandle(_ context: String) throws(SQLiteError) -> OpaquePointer {
        guard let handle else { throw .closed(context) }
        return handle
    }

    /// Sets how long a statement waits for a lock held by another connection before failing
    /// with `SQLITE_BUSY`. `0` fails immediately.
    public func setBusyTimeout(milliseconds: Int32) throws(SQLiteError) {
        let db = try rawHandle("busy_timeout")
        let rc = sqlite3_busy_timeout(db, milliseconds)
        guard rc == SQLITE_OK else { throw .from(db, code: rc, context: "busy_timeout") }
    }

    /// Bounds this connection's page cache to `kibibytes` KiB (`PRAGMA cache_size` with a
    /// negative value, which SQLite reads as KiB rather than pages).
    public func setCacheSize(kibibytes: Int32) throws(SQLiteError) {
        try exec("PRAGMA cache_size = -\(max(1, kibibytes))")
    }

    /// Runs one or more SQL statements that return no rows of interest (`sqlite3_exec`).
    public func exec(_ sql: String) throws(SQLiteError) {
        let db = try rawHandle(sql)
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &errorMessage)
        if rc != SQLITE_OK {
            let message: String
            if let errorMessage {
                message = String(cString: errorMessage)
            } else {
                message = String(cString: sqlite3_errstr(rc))
            }
            sqlite3_free(errorMessage)
            throw SQLiteError(code: sqlite3_extended_errcode(db), message: message, context: sql)
        }
    }

    /// Compiles one SQL statement. The caller owns the result; it is finalized on deinit.
    public func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        let db = try rawHandle(sql)
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else {
            sqlite3_finalize(statement)
            if rc == SQLITE_OK {
                throw SQLiteError(code: SQLITE_MISUSE, message: "no SQL statement in text", context: sql)
            }
            throw .from(db, code: rc, context: "prepare \(sql)")
        }
        return SQLiteStatement(handle: statement, connection: self, sql: sql)
    }

    /// Returns a prepared statement for `sql`, compiling it on first use and reusing it after.
    ///
    /// The statement is reset (and its bindings cleared) before it is returned. It is finalized
    /// by ``close()``.
    public func cachedStatement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let cached = statementCache[sql] {
            cached.reset()
            return cached
        }
        let statement = try prepare(sql)
        statementCache[sql] = statement
        return statement
    }

    /// Runs a query expected to yield at most one row and returns its first column as an
    /// integer, or `nil` if there is no row or the value is `NULL`.
    public func scalarInt64(_ sql: String) throws(SQLiteError) -> Int64? {
        let statement = try cachedStatement(sql)
        defer { statement.reset() }
        guard try statement.step(), statement.columnType(at: 0) != .null else { return nil }
        return statement.int64(at: 0)
    }

    /// Runs a query expected to yield at most one row and returns its first column as text,
    /// or `nil` if there is no row or the value is `NULL` (handy for `PRAGMA`s).
    public func scalarText(_ sql: String) throws(SQLiteError) -> String? {
        let statement = try cachedStatement(sql)
        defer { statement.reset() }
        guard try statement.step(), statement.columnType(at: 0) != .null else { return nil }
        return statement.text(at: 0)
    }

    /// Whether a transaction is open (SQLite is not in autocommit mode).
    public var isInTransaction: Bool {
        guard let handle else { return false }
        return sqlite3_get_autocommit(handle) == 0
    }

    /// Starts a transaction.
    public func begin(_ mode: TransactionMode = .deferred) throws(SQLiteError) {
        try exec(mode.sql)
    }

    /// Commits the open transaction. On failure the transaction may still be open: roll back.
    public func commit() throws(SQLiteError) {
        try exec("COMMIT")
    }

    /// Rolls back the open transaction.
    public func rollback() throws(SQLiteError) {
        try exec("ROLLBACK")
    }

    /// Rolls back if a transaction is open, ignoring errors (cleanup after another failure).
    public func rollbackIfNeeded() {
        guard isInTransaction else { return }
        try? exec("ROLLBACK")
    }

    /// Runs `body` inside a transaction: commits if it returns, rolls back if it (or the
    /// commit) throws.
    public func transaction<T>(
        _ mode: TransactionMode = .deferred,
        _ body: () throws(SQLiteError) -> T
    ) throws(SQLiteError) -> T {
        try begin(mode)
        do {
            let result = try body()
            try commit()
            return result
        } catch {
            rollbackIfNeeded()
            throw error
        }
    }

    /// Number of rows changed by the most recent `INSERT`, `UPDATE` or `DELETE`.
    public var changes: Int {
        guard let handle else { return 0 }
        return Int(sqlite3_changes(handle))
    }
}
