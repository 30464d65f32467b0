import CSQLite

/// The storage class of a result column (`sqlite3_column_type`).
public enum SQLiteColumnType: Sendable, Equatable {
    /// A signed 64-bit integer.
    case integer
    /// An IEEE double.
    case float
    /// UTF-8 text.
    case text
    /// Raw bytes.
    case blob
    /// SQL `NULL` (also reported for a statement that is finalized).
    case null
}

/// A compiled SQL statement (`sqlite3_stmt*`) of a ``SQLiteConnection``.
///
/// Parameter and column indices follow SQLite: parameters are 1-based, columns 0-based.
/// Column accessors are valid only after ``step()`` returned `true`.
public final class SQLiteStatement {
    private var handle: OpaquePointer?
    private let connection: SQLiteConnection
    /// The SQL text the statement was compiled from.
    public let sql: String

    init(handle: OpaquePointer, connection: SQLiteConnection, sql: String) {
        self.handle = handle
        self.connection = connection
        self.sql = sql
    }

    deinit {
        finalize()
    }

    /// Releases the compiled statement. Idempotent; later use throws `SQLITE_MISUSE`.
    public func finalize() {
        if let handle {
            sqlite3_finalize(handle)
        }
        handle = nil
    }

    private func live(_ operation: String) throws(SQLiteError) -> OpaquePointer {
        guard let handle, connection.isOpen else { throw .closed("\(operation) \(sql)") }
        return handle
    }

    private func check(_ rc: Int32, _ operation: String) throws(SQLiteError) {
        guard rc == SQLITE_OK else {
            throw SQLiteError(
                code: rc,
                message: String(cString: sqlite3_errstr(rc)),
                context: "\(operation) \(sql)"
            )
        }
    }

    /// Binds a 64-bit integer to the 1-based parameter `index`.
    public func bind(_ value: Int64, at index: Int32) throws(SQLiteError) {
        let statement = try live("bind")
        try check(sqlite3_bind_int64(statement, index, value), "bind int64 #\(index)")
    }

    /// Binds a blob (copied by SQLite) to the 1-based parameter `index`. An empty array binds
    /// a zero-length blob, not `NULL`.
    public func bind(blob: [UInt8], at index: Int32) throws(SQLiteError) {
        let statement = try live("bind")
        guard blob.count <= Int(Int32.max) else {
            throw SQLiteError(code: SQLITE_TOOBIG, message: "blob of \(blob.count) bytes", context: sql)
        }
        let rc: Int32
        if blob.isEmpty {
            rc = sqlite3_bind_zeroblob(statement, index, 0)
        } else {
            rc = blob.withUnsafeBytes { bytes in
                sqlite3_bind_blob(statement, index, bytes.baseAddress, Int32(bytes.count), sqliteTransient)
            }
        }
        try check(rc, "bind blob #\(index)")
    }

    /// Binds UTF-8 text (copied by SQLite) to the 1-based parameter `index`.
    public func bind(text: String, at index: Int32) throws(SQLiteError) {
        let statement = try live("bind")
        var text = text
        let rc = text.withUTF8 { utf8 in
            sqlite3_bind_text(statement, index, UnsafeRawPointer(utf8.baseAddress)?.assumingMemoryBound(to: CChar.self),
                              Int32(clamping: utf8.count), sqliteTransient)
        }
        try check(rc, "bind text #\(index)")
    }

    /// Binds `NULL` to the 1-based parameter `index`.
    public func bindNull(at index: Int32) throws(SQLiteError) {
        let statement = try live("bind")
        try check(sqlite3_bind_null(statement, index), "bind null #\(index)")
    }

    /// Advances the statement. Returns `true` if a row is available, `false` when done.
    public func step() throws(SQLiteError) -> Bool {
        let statement = try live("step")
        let rc = sqlite3_step(statement)
        switch rc {
        case SQLITE_ROW:
            return true
        case SQLITE_DONE:
            return false
        default:
            let db = try connection.rawHandle("step \(sql)")
            throw SQLiteError.from(db, code: sqlite3_extended_errcode(db), context: "step \(sql)")
        }
    }

    /// Steps the statement to completion, ignoring any rows (for `INSERT`/`UPDATE`/`DELETE`).
    public func run() throws(SQLiteError) {
        while try step() {}
    }

    /// Resets the statement so it can run again and clears its bindings. Errors of the previous
    /// run (already reported by ``step()``) are ignored.
    public func reset() {
        guard let handle else { return }
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// The storage class of column `index` in the current row.
    public func columnType(at index: Int32) -> SQLiteColumnType {
        guard let handle else { return .null }
        switch sqlite3_column_type(handle, index) {
        case SQLITE_INTEGER: return .integer
        case SQLITE_FLOAT: return .float
        case SQLITE_TEXT: return .text
        case SQLITE_BLOB: return .blob
        default: return .null
        }
    }

    /// Column `index` of the current row as a 64-bit integer (`0` for `NULL`).
    public func int64(at index: Int32) -> Int64 {
        guard let handle else { return 0 }
        return sqlite3_column_int64(handle, index)
    }

    /// Column `index` of the current row as bytes (empty for `NULL` or a zero-length blob).
    public func blob(at index: Int32) -> [UInt8] {
        guard let handle else { return [] }
        let pointer = sqlite3_column_blob(handle, index)
        let count = Int(sqlite3_column_bytes(handle, index))
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// Column `index` of the current row as text (empty for `NULL`).
    public func text(at index: Int32) -> String {
        guard let handle else { return "" }
        let pointer = sqlite3_column_text(handle, index)
        let count = Int(sqlite3_column_bytes(handle, index))
        guard let pointer, count > 0 else { return "" }
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }
}

/// `SQLITE_TRANSIENT` (not imported into Swift): tells SQLite to copy bound data immediately.
let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
